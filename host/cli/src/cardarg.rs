//! The `--card` option of every command that talks to a card, and opening it.
//!
//! Each card command (demo, personalise, credit, backup, test) flattens [`CardArg`]; the option
//! is `global` there, so it may stand anywhere after the command's name, before or after a
//! subcommand (`simkit credit --card X status`, `simkit credit status --card X`). Commands that
//! talk to no card (mac, sim, serve, …) do not have it: clap refuses `--card` there, and their
//! help does not list it.
//!
//! `jcardsim` (the default) starts the bundled card host with a fresh simulated card that lives
//! as long as the command; `jcardsim://HOST:PORT[/INDEX]` attaches to a card host that is already
//! running (`simkit sim` starts one), so a card keeps its state across commands.

use anyhow::{Context, Result};
use simkit_card::{AnyCard, CardUri, Channel};

/// Environment variable that sets the default of `--card`.
pub(crate) const CARD_ENV: &str = "SIMKIT_CARD";

/// The card option of the card commands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CardArg {
    /// The card: `jcardsim` (a fresh simulated card for this command; for `test`, one per test
    /// file), `jcardsim://HOST:PORT[/N]` (card N of a running `simkit sim`), or `pcsc:READER`
    /// (a reader's name, a unique part of it, or its index in `simkit readers`).
    #[arg(
        long,
        global = true,
        env = CARD_ENV,
        default_value = "jcardsim",
        value_name = "CARD"
    )]
    pub(crate) card: String,
}

impl CardArg {
    /// Opens the card and wraps it in a channel (GET RESPONSE, 6Cxx and Le handled there).
    pub(crate) fn open(&self) -> Result<(Channel<AnyCard>, CardUri)> {
        let uri: CardUri = self
            .card
            .parse()
            .with_context(|| format!("--card {}", self.card))?;
        let card = uri.open().with_context(|| format!("opening card {uri}"))?;
        let mut channel = Channel::new(card);
        // `simkit test --record FILE -- COMMAND` sets this to capture the session as a script.
        if let Some(path) = std::env::var_os(simkit_conformance::record::RECORD_ENV) {
            let what: Vec<String> = std::env::args().skip(1).collect();
            let hook = simkit_conformance::record::file_hook(path.as_ref(), &what.join(" "))
                .with_context(|| format!("creating the recording {}", path.to_string_lossy()))?;
            channel.set_trace(hook);
        }
        Ok((channel, uri))
    }

    /// A note for the user when the card disappears with the command.
    pub(crate) fn ephemeral_note(uri: &CardUri) -> Option<&'static str> {
        matches!(uri, CardUri::Jcardsim).then_some(
            "note: --card jcardsim used a fresh simulated card that ends with this command; \
             start one that stays with `simkit sim` and pass its jcardsim://… URI",
        )
    }
}
