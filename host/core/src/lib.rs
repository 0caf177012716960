//! Pure protocol core of simkit.
//!
//! This crate owns every byte layout and every rule of the simkit protocols: ISO 7816-4 APDUs and
//! status words, TLV, the crypto profiles of the credit module (MACs, key derivation, key check
//! values), the credit-module messages and the two protocol state machines (module side and server
//! policy), and the backup-store data model (manifest, transfer plan, incremental diff).
//!
//! It must not do I/O: no files, no sockets, no clocks, no async, no PC/SC. Everything here is a
//! function of its inputs, so every layer above it (card access, conformance runner, server, CLI)
//! can be tested without a reader, and the Java applets are checked against the same bytes through
//! the vector files in `applet-spec/vectors/`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod apdu;
pub mod backup;
pub mod credit;
pub mod crypto;
pub mod hexutil;
pub mod status;
pub mod tlv;
pub mod vectors;
