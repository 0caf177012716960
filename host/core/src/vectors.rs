//! Module `vectors` (being written).
