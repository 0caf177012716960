//! Module `tlv` (being written).
