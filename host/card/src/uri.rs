//! Card URIs: the value of the CLI's `--card` option, and opening the card it names.
//!
//! | URI | card |
//! |---|---|
//! | `jcardsim` | a new card host started for this process, one card with [`DEFAULT_APPLETS`] |
//! | `jcardsim://HOST:PORT[/INDEX]` | card `INDEX` (default 0) of a card host already running |
//! | `pcsc:READER[?mode=shared\|exclusive]` | the card in a PC/SC reader |
//!
//! `READER` is a reader's full name (`pcsc:Virtual PCD 00 00`), a case-insensitive substring
//! matching exactly one reader (`pcsc:vpcd`... `pcsc:acr39`), or, when all digits, the reader's
//! index in the service's list (`pcsc:0`, numbered as `simkit readers` shows them). A wrong name
//! fails listing the readers there are. `?mode=` sets the share mode: `shared` (default; other
//! applications may use the card between our PC/SC transactions) or `exclusive` (nobody else
//! may connect while we are). Under `tools/pcsc-sim.sh` the simulated card is
//! `pcsc:$SIMKIT_PCSC_READER`.
//!
//! This module parses and dispatches; the backends do the work.

use std::fmt;
use std::str::FromStr;

use simkit_core::backup::commands::AID as BACKUP_STORE_AID;
use simkit_core::credit::commands::APPLET_AID as CREDIT_MODULE_AID;

use crate::error::CardError;
use crate::jcardsim::{AppletSpec, CardHostConfig, CardSpec, JcardsimCard};
use crate::pcsc::{PcscCard, ReaderSelector, ShareMode};
use crate::transport::{Atr, Card, Disposition, SimulatorControl};

/// The applets on the card of a plain `jcardsim` URI: (AID, class name). Every class must be
/// in the card host jar (or an `--applet-jar`), or the host does not start. The backup store is
/// installed with empty install data (spec §2.2 defaults: 64 KiB, 128 records, 5 / 3 tries).
pub const DEFAULT_APPLETS: &[(&[u8], &str)] = &[
    (&CREDIT_MODULE_AID, "dev.simkit.credit.CreditModule"),
    (&BACKUP_STORE_AID, "dev.simkit.backup.BackupStore"),
];

/// The card of a plain `jcardsim` URI: [`DEFAULT_APPLETS`], no install parameters.
pub fn default_card() -> CardSpec {
    CardSpec::new(
        DEFAULT_APPLETS
            .iter()
            .map(|(aid, class)| AppletSpec::new(aid.to_vec(), *class)),
    )
}

/// Where a card is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CardUri {
    /// `jcardsim`: start a card host with one [`default_card`].
    Jcardsim,
    /// `jcardsim://HOST:PORT[/INDEX]`: a card of a running card host.
    JcardsimAt {
        /// Host name or address (IPv6 in brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Card index (0 when absent).
        index: u8,
    },
    /// `pcsc:READER[?mode=…]`: a PC/SC reader by name, name substring or index.
    Pcsc {
        /// The reader, e.g. `Virtual PCD 00 00` or index 0.
        reader: ReaderSelector,
        /// Shared (default) or exclusive.
        share: ShareMode,
    },
}

impl FromStr for CardUri {
    type Err = CardError;

    fn from_str(s: &str) -> Result<CardUri, CardError> {
        let bad = |reason| CardError::InvalidUri {
            uri: s.to_owned(),
            reason,
        };
        if s == "jcardsim" {
            return Ok(CardUri::Jcardsim);
        }
        if let Some(rest) = s.strip_prefix("jcardsim://") {
            let (hostport, index) = match rest.split_once('/') {
                Some((hp, "")) => (hp, 0),
                Some((hp, i)) => (
                    hp,
                    i.parse::<u8>()
                        .map_err(|_| bad("card index must be a number 0..=255"))?,
                ),
                None => (rest, 0),
            };
            let (host, port) = hostport
                .rsplit_once(':')
                .ok_or(bad("expected jcardsim://HOST:PORT[/INDEX]"))?;
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or(bad("port must be a number 1..=65535"))?;
            if host.is_empty() {
                return Err(bad("host is empty"));
            }
            return Ok(CardUri::JcardsimAt {
                host: host.to_owned(),
                port,
                index,
            });
        }
        if let Some(rest) = s.strip_prefix("pcsc:") {
            let (reader, share) = match rest.rsplit_once("?mode=") {
                Some((r, "shared")) => (r, ShareMode::Shared),
                Some((r, "exclusive")) => (r, ShareMode::Exclusive),
                Some(_) => return Err(bad("mode must be shared or exclusive")),
                None => (rest, ShareMode::Shared),
            };
            if reader.is_empty() {
                return Err(bad("reader name is empty"));
            }
            let Ok(reader) = reader.parse::<ReaderSelector>();
            return Ok(CardUri::Pcsc { reader, share });
        }
        Err(bad(
            "expected jcardsim, jcardsim://HOST:PORT[/INDEX] or pcsc:READER",
        ))
    }
}

impl fmt::Display for CardUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardUri::Jcardsim => f.write_str("jcardsim"),
            CardUri::JcardsimAt { host, port, index } => {
                write!(f, "jcardsim://{host}:{port}/{index}")
            }
            CardUri::Pcsc {
                reader,
                share: ShareMode::Shared,
            } => write!(f, "pcsc:{reader}"),
            CardUri::Pcsc { reader, share } => write!(f, "pcsc:{reader}?mode={share}"),
        }
    }
}

impl CardUri {
    /// Opens the card with default settings. For `jcardsim` this starts a card host (see
    /// [`open_with`](Self::open_with)), which stops when the returned card is dropped.
    ///
    /// # Errors
    /// As for [`open_with`](Self::open_with).
    pub fn open(&self) -> Result<AnyCard, CardError> {
        self.open_with(CardHostConfig::default())
    }

    /// Opens the card. For `jcardsim`, `config` starts the host (its `cards` are replaced by
    /// one [`default_card`] when empty); the other URIs ignore it.
    ///
    /// # Errors
    /// The backend's errors ([`CardError::Pcsc`] for `pcsc:`).
    pub fn open_with(&self, mut config: CardHostConfig) -> Result<AnyCard, CardError> {
        match self {
            CardUri::Jcardsim => {
                if config.cards.is_empty() {
                    config.cards.push(default_card());
                }
                Ok(AnyCard::Jcardsim(JcardsimCard::spawn(config)?))
            }
            CardUri::JcardsimAt { host, port, index } => {
                Ok(AnyCard::Jcardsim(JcardsimCard::attach(
                    (host.trim_start_matches('[').trim_end_matches(']'), *port),
                    *index,
                )?))
            }
            CardUri::Pcsc { reader, share } => {
                Ok(AnyCard::Pcsc(Box::new(PcscCard::connect(reader, *share)?)))
            }
        }
    }
}

/// A card opened from a [`CardUri`], whatever the backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyCard {
    /// A jCardSim card.
    Jcardsim(JcardsimCard),
    /// A card in a PC/SC reader (boxed: it holds a transmit buffer).
    Pcsc(Box<PcscCard>),
}

impl AnyCard {
    /// The simulator controls, if the card may be simulated. For PC/SC that is always `Some`:
    /// whether the reader is a simkit simulator shows when a control is used
    /// ([`PcscError::NotSimulator`](crate::PcscError::NotSimulator) on real hardware).
    pub fn simulator(&mut self) -> Option<&mut dyn SimulatorControl> {
        match self {
            AnyCard::Jcardsim(c) => Some(c),
            AnyCard::Pcsc(c) => Some(&mut **c),
        }
    }
}

impl Card for AnyCard {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        match self {
            AnyCard::Jcardsim(c) => c.transmit_raw(apdu),
            AnyCard::Pcsc(c) => c.transmit_raw(apdu),
        }
    }
    /// The jCardSim backend pipelines a batch; PC/SC sends one command at a time.
    fn transmit_batch(&mut self, apdus: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CardError> {
        match self {
            AnyCard::Jcardsim(c) => c.transmit_batch(apdus),
            AnyCard::Pcsc(c) => c.transmit_batch(apdus),
        }
    }
    fn reset(&mut self) -> Result<Atr, CardError> {
        match self {
            AnyCard::Jcardsim(c) => c.reset(),
            AnyCard::Pcsc(c) => c.reset(),
        }
    }
    fn atr(&self) -> &Atr {
        match self {
            AnyCard::Jcardsim(c) => c.atr(),
            AnyCard::Pcsc(c) => c.atr(),
        }
    }
    fn begin_transaction(&mut self) -> Result<(), CardError> {
        match self {
            AnyCard::Jcardsim(c) => c.begin_transaction(),
            AnyCard::Pcsc(c) => c.begin_transaction(),
        }
    }
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), CardError> {
        match self {
            AnyCard::Jcardsim(c) => c.end_transaction(disposition),
            AnyCard::Pcsc(c) => c.end_transaction(disposition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkit_core::backup::commands::AID as BACKUP_STORE_AID;

    #[test]
    fn parse_and_display() {
        let cases: &[(&str, CardUri, &str)] = &[
            ("jcardsim", CardUri::Jcardsim, "jcardsim"),
            (
                "jcardsim://127.0.0.1:4000",
                CardUri::JcardsimAt {
                    host: "127.0.0.1".into(),
                    port: 4000,
                    index: 0,
                },
                "jcardsim://127.0.0.1:4000/0",
            ),
            (
                "jcardsim://localhost:4000/3",
                CardUri::JcardsimAt {
                    host: "localhost".into(),
                    port: 4000,
                    index: 3,
                },
                "jcardsim://localhost:4000/3",
            ),
            (
                "jcardsim://[::1]:4000/",
                CardUri::JcardsimAt {
                    host: "[::1]".into(),
                    port: 4000,
                    index: 0,
                },
                "jcardsim://[::1]:4000/0",
            ),
            (
                "pcsc:Virtual PCD 00 00",
                CardUri::Pcsc {
                    reader: ReaderSelector::Name("Virtual PCD 00 00".into()),
                    share: ShareMode::Shared,
                },
                "pcsc:Virtual PCD 00 00",
            ),
            (
                "pcsc:1?mode=exclusive",
                CardUri::Pcsc {
                    reader: ReaderSelector::Index(1),
                    share: ShareMode::Exclusive,
                },
                "pcsc:1?mode=exclusive",
            ),
            (
                "pcsc:vpcd?mode=shared",
                CardUri::Pcsc {
                    reader: ReaderSelector::Name("vpcd".into()),
                    share: ShareMode::Shared,
                },
                "pcsc:vpcd",
            ),
        ];
        for (text, uri, shown) in cases {
            let parsed: CardUri = text.parse().unwrap();
            assert_eq!(&parsed, uri, "{text}");
            assert_eq!(parsed.to_string(), *shown);
            assert_eq!(shown.parse::<CardUri>().unwrap(), parsed);
        }
    }

    #[test]
    fn parse_errors() {
        for (text, reason) in [
            ("", "expected jcardsim"),
            ("jcardsim:", "expected jcardsim"),
            ("jcardsim://host", "expected jcardsim://HOST:PORT"),
            ("jcardsim://host:x", "port must be"),
            ("jcardsim://host:0", "port must be"),
            ("jcardsim://host:70000", "port must be"),
            ("jcardsim://:4000", "host is empty"),
            ("jcardsim://h:4000/256", "card index"),
            ("pcsc:", "reader name is empty"),
            ("pcsc:?mode=shared", "reader name is empty"),
            ("pcsc:r?mode=private", "mode must be shared or exclusive"),
        ] {
            let e = text.parse::<CardUri>().unwrap_err();
            assert!(e.to_string().contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn default_applets() {
        let card = default_card();
        assert_eq!(
            card.applets[0].aid,
            [0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0x01, 0x01]
        );
        assert_eq!(card.applets[0].class, "dev.simkit.credit.CreditModule");
        assert_eq!(BACKUP_STORE_AID[7..], [0x02, 0x01]);
    }
}
