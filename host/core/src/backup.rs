//! Module `backup` (being written).
