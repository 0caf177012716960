//! Card access for simkit: everything between the pure protocol core and a card.
//!
//! Layers, each depending only on the one below it:
//!
//! - [`transport`]: the [`Card`] trait (send raw bytes, reset, exclusive transactions in
//!   pcsc-rust's borrowing style) and the optional [`SimulatorControl`] trait for
//!   simulator-only operations (tearing, write counts, power);
//! - [`channel`]: [`Channel`], the one place where `61xx` (GET RESPONSE), `6Cxx` (re-issue with
//!   the exact Le), command chaining for readers without extended length, and the Le check on
//!   responses are handled, with an optional trace of every exchange;
//! - backends: [`jcardsim`] (the project's card host over a loopback socket) and [`pcsc`] (a
//!   reader of the platform's PC/SC service, e.g. pcscd with the simulator behind vpcd);
//!   [`uri`] turns a `--card` string into an opened backend; [`mock`] is a scripted card for
//!   tests of the layers above;
//! - typed applet clients: [`credit`] (the credit module).
//!
//! This crate must not hold protocol rules: byte layouts, status-word meanings and the credit
//! module's state machine live in `simkit-core`. It sends, receives, checks lengths and turns
//! status words into [`CardError`]s that keep them.
//!
//! Every layer runs without a reader; here the credit-module client over a scripted card:
//!
//! ```
//! use simkit_card::{Channel, credit::CreditClient, mock::ScriptedCard};
//!
//! let card = ScriptedCard::new([
//!     ("00A4040009 F053494D4B49540101", "9000"), // SELECT
//!     ("805E0000", "9C0D"),                      // LOCK before personalisation
//! ]);
//! let mut channel = Channel::new(card);
//! let mut credit = CreditClient::new(&mut channel);
//! credit.select()?;
//! let err = credit.lock().unwrap_err();
//! assert_eq!(err.to_string(), "LOCK: 9C0D personalisation incomplete");
//! # Ok::<(), simkit_card::credit::CreditClientError>(())
//! ```
//!
//! The same against a simulated card (what the CLI's `--card` option does):
//!
//! ```no_run
//! use simkit_card::{CardUri, Channel, credit::CreditClient};
//!
//! let uri: CardUri = "jcardsim".parse()?; // or jcardsim://127.0.0.1:40123/0, pcsc:READER
//! let mut channel = Channel::new(uri.open()?); // starts a card host; stops it on drop
//! let status = CreditClient::new(&mut channel).status()?;
//! println!("{status}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod backup;
pub mod channel;
pub mod credit;
mod error;
pub mod jcardsim;
pub mod mock;
pub mod model;
pub mod pcsc;
pub mod transport;
pub mod uri;

pub use channel::{Channel, Exchange, ExchangeKind, RecordedExchange, TraceRecorder};
pub use error::CardError;
pub use jcardsim::{
    AppletSpec, CardHostConfig, CardHostProcess, CardSpec, HostProtocolError, JcardsimCard,
    JcardsimError, StartupFailure,
};
pub use pcsc::{PcscCard, PcscError};
pub use transport::{Atr, Card, Disposition, SimulatorControl, Transaction};
pub use uri::{AnyCard, CardUri};
