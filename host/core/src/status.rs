//! Module `status` (being written).
