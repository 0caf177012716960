//! Module `hexutil` (being written).
