//! The transport traits: what a card backend must offer.
//!
//! [`Card`] moves raw APDU bytes and nothing else: it must not interpret status words, fetch
//! GET RESPONSE or check Le (that is [`Channel`](crate::Channel)'s job, done in one place for
//! every backend). [`SimulatorControl`] is the optional extra of simulated cards.
//!
//! Exclusive access follows pcsc-rust: [`Card::transaction`] borrows the card mutably and
//! returns a [`Transaction`] guard, so nothing else can use the handle until the guard is
//! ended or dropped. Backends without a sharing problem (the jCardSim card host serialises
//! each card already) keep the default no-op begin/end.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::error::CardError;
use simkit_core::hexutil::to_hex;

/// An answer to reset: the bytes a card sends when powered on or reset.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Atr(Vec<u8>);

impl Atr {
    /// Wraps ATR bytes as received.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Atr {
        Atr(bytes.into())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Atr {
    /// Upper-case hex without spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for Atr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Atr({self})")
    }
}

/// What to do with the card when a transaction ends (pcsc-rust's `Disposition`, the two cases
/// simkit needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Disposition {
    /// Leave the card as it is: selected applet and session state survive.
    #[default]
    Leave,
    /// Warm-reset the card: no applet selected, transient memory cleared.
    Reset,
}

/// A card reached through some reader: the transport layer.
///
/// Implementations send bytes exactly as given and return bytes exactly as received. Every
/// method may block on I/O.
pub trait Card {
    /// Sends one command APDU and returns the response APDU (data ‖ SW1 SW2).
    ///
    /// Side effects: whatever the command does on the card. Nothing is added: no GET RESPONSE,
    /// no retry. On a simulated card with an armed tear this is the command the tear applies
    /// to ([`CardError::PowerLost`]).
    ///
    /// # Errors
    /// [`CardError::Transport`] when the connection fails, backend-specific errors
    /// ([`CardError::PowerLost`], [`CardError::PoweredOff`], [`CardError::CardHost`]).
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError>;

    /// Sends `apdus` in order and returns their responses in order, as if each were sent with
    /// [`transmit_raw`](Card::transmit_raw) — which is what the default does, one after the
    /// other. A backend that can keep several commands in flight (the jCardSim card host)
    /// overrides it to pay the round trip once per batch instead of once per APDU.
    ///
    /// Every APDU is sent whatever the card answers to the earlier ones: only callers whose
    /// commands do not depend on earlier responses may use it (and must check every status
    /// word). Like `transmit_raw` it interprets nothing.
    ///
    /// # Errors
    /// The first error of any APDU; later APDUs of the batch may have been processed by then.
    fn transmit_batch(&mut self, apdus: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CardError> {
        apdus.iter().map(|a| self.transmit_raw(a)).collect()
    }

    /// Warm-resets the card and returns its ATR (which [`atr`](Card::atr) then also returns).
    ///
    /// Side effects: the selected applet is deselected without its `deselect()` running,
    /// `CLEAR_ON_RESET` and `CLEAR_ON_DESELECT` memory is cleared, an open Java Card
    /// transaction is rolled back; a powered-off simulated card is powered on. Persistent
    /// applet state is untouched.
    ///
    /// # Errors
    /// As for [`transmit_raw`](Card::transmit_raw).
    fn reset(&mut self) -> Result<Atr, CardError>;

    /// The ATR received at connection or at the last reset or power-on. No I/O.
    fn atr(&self) -> &Atr;

    /// Starts exclusive access (PC/SC `SCardBeginTransaction`). Prefer
    /// [`transaction`](Card::transaction), which ends it for you.
    ///
    /// The default does nothing, for backends where one handle already has the card to itself.
    ///
    /// # Errors
    /// Backend-specific (e.g. the reader is gone).
    fn begin_transaction(&mut self) -> Result<(), CardError> {
        Ok(())
    }

    /// Ends exclusive access. The default does nothing for [`Disposition::Leave`] and calls
    /// [`reset`](Card::reset) for [`Disposition::Reset`].
    ///
    /// # Errors
    /// Backend-specific; for [`Disposition::Reset`], as for [`reset`](Card::reset).
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), CardError> {
        match disposition {
            Disposition::Leave => Ok(()),
            Disposition::Reset => self.reset().map(drop),
        }
    }

    /// Begins an exclusive transaction, borrowing the card until the returned guard is ended
    /// with [`Transaction::end`] or dropped (which ends it with [`Disposition::Leave`]).
    ///
    /// ```
    /// # use simkit_card::{Card, Channel, Disposition, mock::ScriptedCard};
    /// # use simkit_core::apdu::Command;
    /// # let mut card = ScriptedCard::new([("00A4040002F001", "9000")]);
    /// let mut tx = card.transaction()?;
    /// let mut ch = Channel::new(&mut *tx); // the card is only usable through `tx` now
    /// ch.transmit_ok("SELECT", &Command::new(0x00, 0xA4, 0x04, 0x00).data([0xF0, 0x01]))?;
    /// drop(ch);
    /// tx.end(Disposition::Leave)?;
    /// # Ok::<(), simkit_card::CardError>(())
    /// ```
    ///
    /// # Errors
    /// As for [`begin_transaction`](Card::begin_transaction).
    fn transaction(&mut self) -> Result<Transaction<'_, Self>, CardError>
    where
        Self: Sized,
    {
        Transaction::begin(self)
    }
}

/// Exclusive access to a card, held by borrowing it (pcsc-rust's `Transaction<'tx>`).
///
/// Dereferences to the card. Dropping the guard ends the transaction with
/// [`Disposition::Leave`] and ignores errors; call [`end`](Transaction::end) to see them or to
/// reset the card.
#[must_use = "the transaction ends when the guard is dropped"]
pub struct Transaction<'a, C: Card + ?Sized> {
    card: &'a mut C,
    ended: bool,
}

impl<'a, C: Card + ?Sized> Transaction<'a, C> {
    /// Begins a transaction on `card` (also for unsized cards such as `dyn Card`).
    ///
    /// # Errors
    /// As for [`Card::begin_transaction`].
    pub fn begin(card: &'a mut C) -> Result<Self, CardError> {
        card.begin_transaction()?;
        Ok(Transaction { card, ended: false })
    }

    /// Ends the transaction, reporting errors.
    ///
    /// # Errors
    /// As for [`Card::end_transaction`].
    pub fn end(mut self, disposition: Disposition) -> Result<(), CardError> {
        self.ended = true;
        self.card.end_transaction(disposition)
    }
}

impl<C: Card + ?Sized> Drop for Transaction<'_, C> {
    fn drop(&mut self) {
        if !self.ended {
            // Nothing to report to in drop; `end` is the way to see this error.
            let _ = self.card.end_transaction(Disposition::Leave);
        }
    }
}

impl<C: Card + ?Sized> Deref for Transaction<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.card
    }
}

impl<C: Card + ?Sized> DerefMut for Transaction<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.card
    }
}

impl<C: Card + ?Sized> fmt::Debug for Transaction<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("atr", self.card.atr())
            .finish_non_exhaustive()
    }
}

/// Operations only a simulated card has. Each acts on the one card the handle addresses.
pub trait SimulatorControl {
    /// Arms a tear: power is cut right after the `k`-th persistent write of the **next**
    /// command sent (that command then fails with [`CardError::PowerLost`], its open Java Card
    /// transaction is rolled back and the card is reset, ready for the next command).
    /// `k = 0` disarms. An armed tear is consumed by the next command whether or not it makes
    /// `k` writes.
    ///
    /// # Errors
    /// [`CardError::CardHost`] for `k ≥ 2³¹`; transport errors.
    fn tear_at(&mut self, k: u32) -> Result<(), CardError>;

    /// How many persistent writes the last command (or applet install) made; after a tear, `k`.
    /// No side effect.
    ///
    /// # Errors
    /// Transport errors.
    fn write_count(&mut self) -> Result<u32, CardError>;

    /// Cuts power: an open Java Card transaction is rolled back, transient memory is lost and
    /// commands fail with [`CardError::PoweredOff`] until [`power_on`](Self::power_on) or
    /// [`Card::reset`].
    ///
    /// # Errors
    /// Transport errors.
    fn power_off(&mut self) -> Result<(), CardError>;

    /// Powers the card on (a cold start; on an already powered card the same as a warm reset)
    /// and returns the ATR.
    ///
    /// # Errors
    /// Transport errors.
    fn power_on(&mut self) -> Result<Atr, CardError>;

    /// Factory reset: the card is built again from its specification — every applet installed
    /// afresh, persistent state and applet statics as on a new card, no tear armed — and
    /// powered on. Returns the ATR.
    ///
    /// The default reports that the simulator has no factory reset.
    ///
    /// # Errors
    /// [`CardError::CardHost`] when unsupported or when an applet fails to install again;
    /// transport errors.
    fn factory_reset(&mut self) -> Result<Atr, CardError> {
        Err(CardError::CardHost(
            "this simulator has no factory reset".to_owned(),
        ))
    }
}

impl<C: Card + ?Sized> Card for &mut C {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit_raw(apdu)
    }
    fn transmit_batch(&mut self, apdus: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CardError> {
        (**self).transmit_batch(apdus)
    }
    fn reset(&mut self) -> Result<Atr, CardError> {
        (**self).reset()
    }
    fn atr(&self) -> &Atr {
        (**self).atr()
    }
    fn begin_transaction(&mut self) -> Result<(), CardError> {
        (**self).begin_transaction()
    }
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), CardError> {
        (**self).end_transaction(disposition)
    }
}

impl<C: Card + ?Sized> Card for Box<C> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit_raw(apdu)
    }
    fn transmit_batch(&mut self, apdus: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CardError> {
        (**self).transmit_batch(apdus)
    }
    fn reset(&mut self) -> Result<Atr, CardError> {
        (**self).reset()
    }
    fn atr(&self) -> &Atr {
        (**self).atr()
    }
    fn begin_transaction(&mut self) -> Result<(), CardError> {
        (**self).begin_transaction()
    }
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), CardError> {
        (**self).end_transaction(disposition)
    }
}

impl<C: SimulatorControl + ?Sized> SimulatorControl for &mut C {
    fn tear_at(&mut self, k: u32) -> Result<(), CardError> {
        (**self).tear_at(k)
    }
    fn write_count(&mut self) -> Result<u32, CardError> {
        (**self).write_count()
    }
    fn power_off(&mut self) -> Result<(), CardError> {
        (**self).power_off()
    }
    fn power_on(&mut self) -> Result<Atr, CardError> {
        (**self).power_on()
    }
    fn factory_reset(&mut self) -> Result<Atr, CardError> {
        (**self).factory_reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::ScriptedCard;

    #[test]
    fn transaction_borrows_and_ends() {
        let mut card = ScriptedCard::new([("00010000", "9000")]);
        {
            let mut tx = card.transaction().unwrap();
            assert_eq!(tx.transmit_raw(&[0, 1, 0, 0]).unwrap(), [0x90, 0x00]);
            // `card` cannot be used here: `tx` borrows it.
        }
        assert_eq!(card.transactions(), (1, 1));
        let tx = card.transaction().unwrap();
        tx.end(Disposition::Reset).unwrap();
        assert_eq!(card.transactions(), (2, 2));
        assert_eq!(card.resets(), 1);
        card.finish().unwrap();
    }

    #[test]
    fn atr_display() {
        let atr = Atr::new([0x3B, 0x80, 0x01]);
        assert_eq!(atr.to_string(), "3B8001");
        assert_eq!(format!("{atr:?}"), "Atr(3B8001)");
    }
}
