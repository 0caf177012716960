//! Where the cards for a run come from: a [`CardPool`] hands each test its card.
//!
//! - [`JcardsimPool`]: the bundled simulator; one card host per worker with many copies of the
//!   default card, so every test gets a factory-fresh card without starting a JVM per test.
//! - [`SingleCardPool`]: one card opened from a [`CardUri`] (a running `simkit sim` card, a
//!   PC/SC reader) used by every test in turn; when the profile has the `fresh` capability it
//!   factory-resets the card before each test (only a simkit simulator can: the card host's
//!   socket, or its PC/SC reader pseudo-APDUs of `applet-spec/simulator.md`).

use std::sync::Arc;

use simkit_card::jcardsim::CardHostConfig;
use simkit_card::uri::default_card;
use simkit_card::{AnyCard, CardError, CardHostProcess, CardUri, Channel};

use crate::profile::CardProfile;
use crate::runner::{ScriptCard, channel_for};

/// A source of cards for tests, owned by one worker thread.
pub trait CardPool {
    /// The card for the next test.
    ///
    /// # Errors
    /// The card (or its host) cannot be opened.
    fn next_card(&mut self) -> Result<&mut dyn ScriptCard, CardError>;
}

/// Fresh simulated cards from card hosts this pool starts (and stops when dropped).
pub struct JcardsimPool {
    config: CardHostConfig,
    profile: CardProfile,
    per_host: u8,
    host: Option<Arc<CardHostProcess>>,
    next: u16,
    current: Option<Channel<AnyCard>>,
}

impl JcardsimPool {
    /// A pool whose hosts hold `per_host` cards each (1..=255; a new host starts when they are
    /// used up). `config.cards` is replaced by copies of the default card.
    pub fn new(config: CardHostConfig, profile: CardProfile, per_host: usize) -> JcardsimPool {
        JcardsimPool {
            config,
            profile,
            per_host: u8::try_from(per_host.clamp(1, 255)).unwrap_or(255),
            host: None,
            next: 0,
            current: None,
        }
    }
}

impl CardPool for JcardsimPool {
    fn next_card(&mut self) -> Result<&mut dyn ScriptCard, CardError> {
        self.current = None;
        if self.host.is_none() || self.next >= u16::from(self.per_host) {
            self.host = None;
            let mut cfg = self.config.clone();
            cfg.cards = vec![default_card()];
            cfg.copies = u32::from(self.per_host);
            self.host = Some(CardHostProcess::spawn(cfg)?);
            self.next = 0;
        }
        let index = u8::try_from(self.next).unwrap_or(u8::MAX);
        self.next += 1;
        let card = match &self.host {
            Some(h) => h.card(index)?,
            None => return Err(CardError::CardHost("card host not started".into())),
        };
        let ch = self
            .current
            .insert(channel_for(AnyCard::Jcardsim(card), &self.profile));
        Ok(ch)
    }
}

/// One card for every test.
pub struct SingleCardPool {
    uri: CardUri,
    profile: CardProfile,
    current: Option<Channel<AnyCard>>,
}

impl SingleCardPool {
    /// Opens `uri` on first use.
    pub fn new(uri: CardUri, profile: CardProfile) -> SingleCardPool {
        SingleCardPool {
            uri,
            profile,
            current: None,
        }
    }
}

impl CardPool for SingleCardPool {
    fn next_card(&mut self) -> Result<&mut dyn ScriptCard, CardError> {
        let mut ch = match self.current.take() {
            Some(ch) => ch,
            None => channel_for(self.uri.open()?, &self.profile),
        };
        // A simkit simulator behind the URI (`simkit sim`, or the card host behind a PC/SC
        // reader) can be factory-reset: with the `fresh` capability every test starts from a
        // new card, as with `jcardsim`.
        if self.profile.has("fresh") {
            if let Some(sim) = ch.card_mut().simulator() {
                sim.factory_reset()?;
            }
        }
        Ok(self.current.insert(ch))
    }
}
