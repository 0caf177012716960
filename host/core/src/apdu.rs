//! Module `apdu` (being written).
