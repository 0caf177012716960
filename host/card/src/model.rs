//! A card without a simulator: [`ModelCard`] answers command APDUs with `simkit-core`'s pure
//! reference model of the credit-module applet ([`simkit_core::credit::applet::process`]), which
//! answers byte for byte what a conforming applet answers.
//!
//! It lets everything above the transport — clients, the CLI, the conformance runner — run with
//! no JVM, and it is the "in-memory" card of `simkit demo --in-memory`. It models one applet and
//! no platform: SELECT of another AID answers `6A82`, and there is no tearing.

use simkit_core::apdu::Command;
use simkit_core::credit::applet::process;
use simkit_core::credit::module::Module;

use crate::error::CardError;
use crate::transport::{Atr, Card};

/// A credit-module card backed by the reference model.
#[derive(Debug)]
pub struct ModelCard {
    module: Module,
    atr: Atr,
}

impl ModelCard {
    /// A freshly installed credit module (personalisation state).
    pub fn new() -> ModelCard {
        ModelCard {
            module: Module::new(),
            atr: Atr::new(MODEL_ATR.to_vec()),
        }
    }

    /// The model's state, for inspection.
    pub fn module(&self) -> &Module {
        &self.module
    }
}

impl Default for ModelCard {
    fn default() -> ModelCard {
        ModelCard::new()
    }
}

/// The ATR the model answers: a minimal direct-convention ATR with no historical bytes.
const MODEL_ATR: [u8; 2] = [0x3B, 0x00];

impl Card for ModelCard {
    /// Parses the command (a malformed one is [`CardError::Apdu`]) and answers it; state changes
    /// are the applet's.
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let cmd = Command::parse(apdu)?;
        Ok(process(&mut self.module, &cmd).to_bytes())
    }

    /// A warm reset: persistent state stays (the model has no transient state to lose).
    fn reset(&mut self) -> Result<Atr, CardError> {
        Ok(self.atr.clone())
    }

    fn atr(&self) -> &Atr {
        &self.atr
    }
}

#[cfg(test)]
mod tests {
    use simkit_core::credit::commands;

    use super::*;
    use crate::Channel;
    use crate::credit::CreditClient;

    #[test]
    fn answers_like_the_applet() {
        let mut ch = Channel::new(ModelCard::new());
        let mut c = CreditClient::new(&mut ch);
        c.select().unwrap();
        let s = c.status().unwrap();
        assert_eq!(s.balance, 0);
        let err = c.initiate_reload(100).unwrap_err();
        assert!(err.to_string().contains("6985"), "{err}");
        let raw = ch.card_mut().transmit_raw(&[0x80, 0x10, 0x00]).unwrap_err();
        assert!(matches!(raw, CardError::Apdu(_)), "{raw}");
        let other = ch
            .card_mut()
            .transmit_raw(
                &commands::get_status()
                    .to_bytes(simkit_core::apdu::LengthEncoding::Auto)
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(other.len(), 49 + 2);
    }
}
