//! A scripted [`Card`] for tests of the layers above the transport: a list of
//! (expected command bytes, response bytes) pairs, apdu-dispatch style.
//!
//! The mock answers the `i`-th command with the `i`-th response if the command is the expected
//! one. A command that differs, or one past the end of the script, fails with a transport
//! error carrying a [`MockError`]; [`ScriptedCard::finish`] then reports it, and also reports
//! steps never reached. The mock must not interpret APDUs: it is a tape.

use std::collections::VecDeque;
use std::fmt;
use std::io;

use simkit_core::hexutil::{HexError, parse_hex, to_hex};
use thiserror::Error;

use crate::error::CardError;
use crate::transport::{Atr, Card, SimulatorControl};

/// What went wrong in a scripted conversation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MockError {
    /// Command `index` (from 0) was not the scripted one.
    #[error("command {index}: expected {}, got {}", to_hex(expected), to_hex(got))]
    Mismatch {
        /// Its position in the script.
        index: usize,
        /// The scripted command.
        expected: Vec<u8>,
        /// The command sent.
        got: Vec<u8>,
    },
    /// More commands were sent than scripted.
    #[error("command {index} ({}) is past the end of the script", to_hex(got))]
    PastEnd {
        /// Its position.
        index: usize,
        /// The command sent.
        got: Vec<u8>,
    },
    /// The conversation ended with scripted steps left.
    #[error(
        "{left} scripted commands were never sent, the next being {}",
        to_hex(next)
    )]
    Unfinished {
        /// How many steps are left.
        left: usize,
        /// The next expected command.
        next: Vec<u8>,
    },
}

enum Reply {
    Bytes(Vec<u8>),
    PowerLost,
}

struct Step {
    expect: Vec<u8>,
    reply: Reply,
}

/// A card that follows a script. It also implements [`SimulatorControl`] with fixed answers,
/// so code that tears or powers a card can be driven too.
pub struct ScriptedCard {
    steps: VecDeque<Step>,
    sent: Vec<Vec<u8>>,
    error: Option<MockError>,
    atr: Atr,
    begun: usize,
    ended: usize,
    resets: usize,
    tears: Vec<u32>,
    write_count: u32,
}

impl ScriptedCard {
    /// A card expecting the given (command, response) pairs, both as hex text (spaces allowed
    /// between bytes).
    ///
    /// # Panics
    /// On a pair that is not hex: the script is test code, and a typo in it is a bug in the test.
    /// Use [`try_new`](Self::try_new) to get an error instead.
    #[allow(clippy::panic)]
    pub fn new<I, A, B>(pairs: I) -> ScriptedCard
    where
        I: IntoIterator<Item = (A, B)>,
        A: AsRef<str>,
        B: AsRef<str>,
    {
        match Self::try_new(pairs) {
            Ok(card) => card,
            Err(e) => panic!("bad hex in a mock script: {e}"),
        }
    }

    /// As [`new`](Self::new), returning an error for text that is not hex.
    ///
    /// # Errors
    /// The first [`HexError`].
    pub fn try_new<I, A, B>(pairs: I) -> Result<ScriptedCard, HexError>
    where
        I: IntoIterator<Item = (A, B)>,
        A: AsRef<str>,
        B: AsRef<str>,
    {
        let mut card = ScriptedCard::empty();
        for (c, r) in pairs {
            card = card.then_bytes(parse_hex(c.as_ref())?, parse_hex(r.as_ref())?);
        }
        Ok(card)
    }

    /// A card with an empty script and ATR `3B 00`.
    pub fn empty() -> ScriptedCard {
        ScriptedCard {
            steps: VecDeque::new(),
            sent: Vec::new(),
            error: None,
            atr: Atr::new([0x3B, 0x00]),
            begun: 0,
            ended: 0,
            resets: 0,
            tears: Vec::new(),
            write_count: 0,
        }
    }

    /// Appends a step given as bytes.
    #[must_use]
    pub fn then_bytes(mut self, command: impl Into<Vec<u8>>, response: impl Into<Vec<u8>>) -> Self {
        self.steps.push_back(Step {
            expect: command.into(),
            reply: Reply::Bytes(response.into()),
        });
        self
    }

    /// Appends a step whose command fails with [`CardError::PowerLost`].
    #[must_use]
    pub fn then_power_lost(mut self, command: impl Into<Vec<u8>>) -> Self {
        self.steps.push_back(Step {
            expect: command.into(),
            reply: Reply::PowerLost,
        });
        self
    }

    /// Sets what [`SimulatorControl::write_count`] answers.
    #[must_use]
    pub fn with_write_count(mut self, n: u32) -> Self {
        self.write_count = n;
        self
    }

    /// Every command sent so far, in order.
    pub fn sent(&self) -> &[Vec<u8>] {
        &self.sent
    }

    /// (transactions begun, transactions ended).
    pub fn transactions(&self) -> (usize, usize) {
        (self.begun, self.ended)
    }

    /// How many resets (including transaction ends with reset and power-ons).
    pub fn resets(&self) -> usize {
        self.resets
    }

    /// The `k` of every [`SimulatorControl::tear_at`] call.
    pub fn tears(&self) -> &[u32] {
        &self.tears
    }

    /// Checks that the conversation went exactly as scripted.
    ///
    /// # Errors
    /// The first mismatch, or [`MockError::Unfinished`].
    pub fn finish(&self) -> Result<(), MockError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.steps.front() {
            Some(next) => Err(MockError::Unfinished {
                left: self.steps.len(),
                next: next.expect.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: MockError) -> CardError {
        if self.error.is_none() {
            self.error = Some(e.clone());
        }
        CardError::Transport(io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl fmt::Debug for ScriptedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedCard")
            .field("left", &self.steps.len())
            .field("sent", &self.sent.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Card for ScriptedCard {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let index = self.sent.len();
        self.sent.push(apdu.to_vec());
        let Some(step) = self.steps.pop_front() else {
            return Err(self.fail(MockError::PastEnd {
                index,
                got: apdu.to_vec(),
            }));
        };
        if step.expect != apdu {
            let e = MockError::Mismatch {
                index,
                expected: step.expect.clone(),
                got: apdu.to_vec(),
            };
            self.steps.push_front(step);
            return Err(self.fail(e));
        }
        match step.reply {
            Reply::Bytes(b) => Ok(b),
            Reply::PowerLost => Err(CardError::PowerLost),
        }
    }

    fn reset(&mut self) -> Result<Atr, CardError> {
        self.resets += 1;
        Ok(self.atr.clone())
    }

    fn atr(&self) -> &Atr {
        &self.atr
    }

    fn begin_transaction(&mut self) -> Result<(), CardError> {
        self.begun += 1;
        Ok(())
    }

    fn end_transaction(&mut self, disposition: crate::Disposition) -> Result<(), CardError> {
        self.ended += 1;
        if disposition == crate::Disposition::Reset {
            self.reset()?;
        }
        Ok(())
    }
}

impl SimulatorControl for ScriptedCard {
    fn tear_at(&mut self, k: u32) -> Result<(), CardError> {
        self.tears.push(k);
        Ok(())
    }

    fn write_count(&mut self) -> Result<u32, CardError> {
        Ok(self.write_count)
    }

    fn power_off(&mut self) -> Result<(), CardError> {
        Ok(())
    }

    fn power_on(&mut self) -> Result<Atr, CardError> {
        self.reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_script_and_reports_deviations() {
        let mut card = ScriptedCard::new([("00 01 00 00", "90 00"), ("00020000", "6A82")]);
        assert_eq!(card.transmit_raw(&[0, 1, 0, 0]).unwrap(), [0x90, 0]);
        assert!(card.finish().is_err());
        let e = card.transmit_raw(&[0, 3, 0, 0]).unwrap_err();
        assert!(
            e.to_string().contains("expected 00020000, got 00030000"),
            "{e}"
        );
        assert_eq!(
            card.finish().unwrap_err(),
            MockError::Mismatch {
                index: 1,
                expected: vec![0, 2, 0, 0],
                got: vec![0, 3, 0, 0]
            }
        );
        let mut card = ScriptedCard::empty();
        assert!(card.transmit_raw(&[0, 1, 0, 0]).is_err());
        assert!(matches!(
            card.finish(),
            Err(MockError::PastEnd { index: 0, .. })
        ));
        assert!(ScriptedCard::try_new([("0G", "9000")]).is_err());
    }
}
