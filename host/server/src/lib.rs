//! simkit's reload grant signer: simkit-core's server policy ([`simkit_core::credit::server`])
//! over a SQLite or PostgreSQL [`store::Store`], behind an HTTP API ([`api::router`]).
//!
//! The policy is simkit-core's; this crate adds only storage, the built-in ledger debit,
//! key custody and transport. See `applet-spec/server-api.md` for the HTTP API.

pub mod api;
pub mod authority;
pub mod client;
pub mod keys;
pub mod metrics;
pub mod pkcs11;
pub mod store;

pub use api::{AppState, router};
pub use authority::{
    Authority, DebitAnswer, DebitKey, DebitRequest, FinancialAuthority, Webhook, WebhookConfig,
};
pub use client::{ClientError, SignerClient};
pub use keys::{KeyError, KeySource, ModuleKey, ModuleMacKeys, SoftwareKey};
pub use pkcs11::{Pkcs11Config, Pkcs11Key, SlotChoice};
pub use store::{Answer, PgOptions, Store, StoreError};
