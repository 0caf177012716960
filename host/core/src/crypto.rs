//! Module `crypto` (being written).
