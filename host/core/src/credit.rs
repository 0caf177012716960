//! Module `credit` (being written).
