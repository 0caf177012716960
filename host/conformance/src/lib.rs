//! simkit's APDU conformance runner.
//!
//! Scripts in the `.apdu` format (documented for users in `apdu-tests/README.md`) are parsed
//! ([`source`], [`expr`], [`pattern`], [`script`]), run against a card ([`runner`], over
//! `simkit_card::Channel` and `SimulatorControl`), and reported ([`report`]: text, JUnit XML,
//! JSON). [`record`] turns a traced live session into a script, and [`import`] converts
//! scriptor and apdutool scripts.
//!
//! Layering: simkit-core (crypto, messages, status words) ← simkit-card (card access) ← this
//! crate ← the CLI. This crate computes no MAC and knows no status-word meaning itself; it holds
//! no card-specific rule: what a card can do comes from its profile ([`profile`]).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod expr;
pub mod import;
pub mod pattern;
pub mod pool;
pub mod profile;
pub mod record;
pub mod report;
pub mod runner;
pub mod script;
pub mod source;
pub mod suite;

pub use profile::CardProfile;
pub use script::Script;
pub use source::{Loc, SyntaxError};
