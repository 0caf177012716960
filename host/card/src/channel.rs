//! The APDU channel: logical commands in, logical responses out.
//!
//! [`Channel`] is the only place in simkit that handles the transmission-level status words
//! and length rules of ISO/IEC 7816-4, whatever the backend:
//!
//! - **`61xx`**: sends GET RESPONSE (CLA of the command without the chaining bit, Le = `xx`)
//!   until the status is something else, and concatenates the data;
//! - **`6Cxx`**: re-issues the command once with Le = `xx` (jCardSim and T=1 cards never send
//!   it, T=0 cards do);
//! - **Le**: a response with more data than the caller's Ne is an error
//!   ([`CardError::ResponseTooLong`]), GET RESPONSE parts and `6Cxx` re-issues included; without
//!   an Le field no data is allowed (jCardSim does not enforce Le, so the host must);
//! - **chaining**: when extended length is switched off (a reader or card profile without it),
//!   commands are encoded short and data over 255 bytes is sent as a command chain; an Ne above
//!   256 is then asked as 256 and the rest comes through `61xx`.
//!
//! [`Channel::set_raw`] switches all of that off, for conformance tests that must see `61xx`
//! themselves. A trace hook sees every exchange on the wire, including the ones the channel
//! adds. The channel must not know any applet: names of commands come from the caller.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use simkit_core::apdu::{
    CHAINING_BIT, Command, LengthEncoding, Response, chain, command::MAX_EXTENDED_DATA,
    command::MAX_SHORT_DATA, command::MAX_SHORT_LE, get_response, le_from_short,
};
use simkit_core::hexutil::to_hex_spaced;
use simkit_core::status::Sw;

use crate::error::CardError;
use crate::transport::Card;

/// Most GET RESPONSE commands sent for one command: 256 × 256 bytes is the most a card can
/// have for an extended Ne, so a card still answering `61xx` after this many is broken.
pub const MAX_GET_RESPONSES: usize = 1024;

/// Why an exchange was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// The caller's command (or the last piece of its chain).
    Command,
    /// A piece of a command chain before the last one.
    ChainPiece,
    /// GET RESPONSE after `61xx`.
    GetResponse,
    /// The command re-issued with the exact Le after `6Cxx`.
    Reissue,
}

/// One command/response pair as it went over the wire, shown to the trace hook.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// Why it was sent.
    pub kind: ExchangeKind,
    /// The command APDU bytes.
    pub command: &'a [u8],
    /// The response APDU bytes (data ‖ SW1 SW2).
    pub response: &'a [u8],
    /// Time from sending to receiving.
    pub elapsed: Duration,
}

impl fmt::Display for Exchange<'_> {
    /// `> 80 10 00 00 31` and `< … 90 00` on two lines, GET RESPONSE etc. marked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.kind {
            ExchangeKind::Command => "",
            ExchangeKind::ChainPiece => " (chain)",
            ExchangeKind::GetResponse => " (get response)",
            ExchangeKind::Reissue => " (re-issued)",
        };
        write!(
            f,
            "> {}{mark}\n< {}",
            to_hex_spaced(self.command),
            to_hex_spaced(self.response)
        )
    }
}

/// An owned [`Exchange`], as kept by a [`TraceRecorder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedExchange {
    /// Why it was sent.
    pub kind: ExchangeKind,
    /// The command APDU bytes.
    pub command: Vec<u8>,
    /// The response APDU bytes.
    pub response: Vec<u8>,
    /// Time from sending to receiving.
    pub elapsed: Duration,
}

impl RecordedExchange {
    /// Borrows it as an [`Exchange`].
    pub fn as_exchange(&self) -> Exchange<'_> {
        Exchange {
            kind: self.kind,
            command: &self.command,
            response: &self.response,
            elapsed: self.elapsed,
        }
    }
}

/// A trace hook that keeps every exchange; clones share the same record, so keep one and give
/// [`hook`](TraceRecorder::hook) to the channel.
#[derive(Debug, Clone, Default)]
pub struct TraceRecorder {
    log: Arc<Mutex<Vec<RecordedExchange>>>,
}

impl TraceRecorder {
    /// An empty recorder.
    pub fn new() -> TraceRecorder {
        TraceRecorder::default()
    }

    /// A hook for [`Channel::set_trace`] that appends to this recorder.
    pub fn hook(&self) -> TraceHook {
        let log = Arc::clone(&self.log);
        Box::new(move |x: &Exchange<'_>| {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(RecordedExchange {
                    kind: x.kind,
                    command: x.command.to_vec(),
                    response: x.response.to_vec(),
                    elapsed: x.elapsed,
                });
        })
    }

    /// A copy of the exchanges recorded so far.
    pub fn exchanges(&self) -> Vec<RecordedExchange> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes the exchanges recorded so far, leaving the record empty.
    pub fn take(&self) -> Vec<RecordedExchange> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A trace hook: called after every exchange on the wire.
pub type TraceHook = Box<dyn FnMut(&Exchange<'_>) + Send>;

/// A card with the ISO 7816-4 transmission rules on top; see the [module docs](self).
pub struct Channel<C> {
    card: C,
    extended_length: bool,
    raw: bool,
    trace: Option<TraceHook>,
    wire: Vec<u8>,
}

impl<C: Card> Channel<C> {
    /// A channel over `card` with extended length on, raw mode off and no trace.
    pub fn new(card: C) -> Channel<C> {
        Channel {
            card,
            extended_length: true,
            raw: false,
            trace: None,
            wire: Vec::with_capacity(64),
        }
    }

    /// Whether to use extended length fields when a command needs them (default on). Off:
    /// everything is encoded short, long data is chained, Ne above 256 is asked as 256.
    pub fn set_extended_length(&mut self, on: bool) -> &mut Self {
        self.extended_length = on;
        self
    }

    /// Raw mode: one command APDU per [`transmit`](Self::transmit), no GET RESPONSE, no
    /// `6Cxx` re-issue, no chaining, no Le check. For conformance tests that check those.
    pub fn set_raw(&mut self, on: bool) -> &mut Self {
        self.raw = on;
        self
    }

    /// Whether raw mode is on.
    pub fn is_raw(&self) -> bool {
        self.raw
    }

    /// Installs a hook called after every exchange (replacing any), e.g.
    /// [`TraceRecorder::hook`] or a closure printing [`Exchange`]'s `Display`.
    pub fn set_trace(&mut self, hook: TraceHook) -> &mut Self {
        self.trace = Some(hook);
        self
    }

    /// Removes the trace hook.
    pub fn clear_trace(&mut self) -> &mut Self {
        self.trace = None;
        self
    }

    /// The card.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// The card, e.g. to reset it or to arm a tear.
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// Gives the card back.
    pub fn into_inner(self) -> C {
        self.card
    }

    /// Sends a command and returns the complete response, whatever its status word.
    ///
    /// Handles `61xx`, `6Cxx`, chaining and the Le check as described in the
    /// [module docs](self), unless raw mode is on.
    ///
    /// # Errors
    /// Transport errors of the card, [`CardError::Apdu`] for a command that cannot be encoded
    /// or a response shorter than two bytes, [`CardError::ResponseTooLong`],
    /// [`CardError::GetResponseLimit`].
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response, CardError> {
        if self.raw {
            return self.exchange(cmd, ExchangeKind::Command);
        }
        let first = self.send_chained(cmd, ExchangeKind::Command)?;
        self.complete(cmd, first)
    }

    /// The follow-ups of `cmd` after its first answer: the re-issue after `6Cxx`, GET RESPONSE
    /// after `61xx`, and the Le check.
    fn complete(&mut self, cmd: &Command, first: Response) -> Result<Response, CardError> {
        let mut resp = match first {
            Response {
                sw: Sw::WrongLe(n), ..
            } => self.send_chained(&cmd.with_le(le_from_short(n)), ExchangeKind::Reissue)?,
            resp => resp,
        };
        // The caller's Ne is the limit, also after a 6Cxx re-issue with a larger Le.
        let limit = cmd.le.unwrap_or(0);
        let mut count = 0;
        while let Sw::MoreAvailable(n) = resp.sw {
            check_len(limit, resp.data.len())?;
            if count == MAX_GET_RESPONSES {
                return Err(CardError::GetResponseLimit { count });
            }
            count += 1;
            let gr = get_response(cmd.cla & !CHAINING_BIT, n);
            let mut more = self.exchange(&gr, ExchangeKind::GetResponse)?;
            if let Sw::WrongLe(exact) = more.sw {
                more = self.exchange(&gr.with_le(le_from_short(exact)), ExchangeKind::Reissue)?;
            }
            resp.data.extend_from_slice(&more.data);
            resp.sw = more.sw;
        }
        check_len(limit, resp.data.len())?;
        Ok(resp)
    }

    /// Sends a command and returns its data if the card answered `9000`.
    ///
    /// `name` names the command in the error: a `6982` to `APPLY GRANT` displays as
    /// `APPLY GRANT: 6982 security status not satisfied`.
    ///
    /// # Errors
    /// [`CardError::Status`] for any status word but `9000` (warnings included), and every
    /// error of [`transmit`](Self::transmit).
    pub fn transmit_ok(&mut self, name: &'static str, cmd: &Command) -> Result<Vec<u8>, CardError> {
        let resp = self.transmit(cmd)?;
        match resp.sw {
            Sw::Success => Ok(resp.data),
            sw => Err(CardError::Status { sw, command: name }),
        }
    }

    /// Sends several commands and returns their complete responses in order, whatever their
    /// status words: the result is what calling [`transmit`](Self::transmit) on each would give,
    /// but commands that need no follow-up are handed to [`Card::transmit_batch`] together, so
    /// a backend that pipelines (the jCardSim card host) pays one round trip per batch.
    ///
    /// Which commands are pipelined: those that **fit in one APDU**. A command **with Le** ends
    /// its group: it may be answered `61xx` / `6Cxx`, and GET RESPONSE or the re-issue must
    /// follow it at once, before any later command reaches the card — so it goes last, and its
    /// follow-ups (as [`transmit`](Self::transmit) does them) before the next group. A command
    /// too long for one APDU is sent on its own, after the commands before it were answered:
    ///
    /// - the pieces of a chain depend on each other's `9000`: if the card refused one, it would
    ///   read the next piece as a fresh command (a WRITE DATA whose first data bytes become its
    ///   offset), so a chain is sent piece by piece, stopping at the first refusal.
    ///
    /// A `61xx` / `6Cxx` answer to a pipelined command (which expected no data) is returned as
    /// it came, for the caller to report as a status word. In raw mode nothing is special:
    /// every command goes through the batch as one APDU.
    ///
    /// Every command is sent whatever the card answered to the earlier ones: use it only for
    /// commands that do not depend on earlier answers, and check every status word.
    ///
    /// # Errors
    /// The first transport or encoding error ends the call (later commands of a pipelined group
    /// may have been processed); the errors of [`transmit`](Self::transmit).
    pub fn transmit_batch(&mut self, cmds: &[Command]) -> Result<Vec<Response>, CardError> {
        let mut out = Vec::with_capacity(cmds.len());
        let max = if self.extended_length {
            MAX_EXTENDED_DATA
        } else {
            MAX_SHORT_DATA
        };
        let mut group: Vec<Vec<u8>> = Vec::new();
        let encoding = if self.extended_length {
            LengthEncoding::Auto
        } else {
            LengthEncoding::Short
        };
        for cmd in cmds {
            if self.raw || (cmd.le.is_none() && cmd.data.len() <= max) {
                group.push(cmd.to_bytes(encoding)?);
            } else if cmd.data.len() <= max {
                group.push(cmd.to_bytes(encoding)?);
                self.flush_group(&mut group, &mut out)?;
                if let Some(first) = out.pop() {
                    out.push(self.complete(cmd, first)?);
                }
            } else {
                self.flush_group(&mut group, &mut out)?;
                out.push(self.transmit(cmd)?);
            }
        }
        self.flush_group(&mut group, &mut out)?;
        Ok(out)
    }

    /// Sends a pipelined group through [`Card::transmit_batch`], traces it and empties it.
    fn flush_group(
        &mut self,
        group: &mut Vec<Vec<u8>>,
        out: &mut Vec<Response>,
    ) -> Result<(), CardError> {
        if group.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let answers = self.card.transmit_batch(group)?;
        // The batch is timed as a whole; each exchange gets its share.
        let each = start.elapsed() / u32::try_from(group.len()).unwrap_or(u32::MAX);
        for (command, bytes) in group.iter().zip(&answers) {
            if let Some(hook) = self.trace.as_mut() {
                hook(&Exchange {
                    kind: ExchangeKind::Command,
                    command,
                    response: bytes,
                    elapsed: each,
                });
            }
            out.push(Response::parse(bytes)?);
        }
        if answers.len() != group.len() {
            // A backend that answers fewer APDUs than it was given is broken.
            return Err(CardError::Transport(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the card answered fewer APDUs than the batch held",
            )));
        }
        group.clear();
        Ok(())
    }

    /// Sends `cmd`, as a chain when it is too long for one APDU; returns the last response,
    /// or the first non-`9000` answer to a piece (the card refused the chain).
    fn send_chained(&mut self, cmd: &Command, kind: ExchangeKind) -> Result<Response, CardError> {
        let max = if self.extended_length {
            MAX_EXTENDED_DATA
        } else {
            MAX_SHORT_DATA
        };
        if cmd.data.len() <= max {
            return self.exchange(cmd, kind);
        }
        let pieces = chain(cmd, max)?;
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            if i == last {
                return self.exchange(piece, kind);
            }
            let resp = self.exchange(piece, ExchangeKind::ChainPiece)?;
            if resp.sw != Sw::Success {
                return Ok(resp);
            }
        }
        // `chain` never returns an empty list; this is the answer if it ever did.
        Err(CardError::Apdu(simkit_core::apdu::ApduError::EmptyChain))
    }

    /// One APDU on the wire, traced.
    fn exchange(&mut self, cmd: &Command, kind: ExchangeKind) -> Result<Response, CardError> {
        self.wire.clear();
        if self.extended_length {
            cmd.write_into(LengthEncoding::Auto, &mut self.wire)?;
        } else if cmd.le.is_some_and(|le| le > MAX_SHORT_LE) && !self.raw {
            // The rest of a long answer comes through 61xx; the Le check uses the original Ne.
            cmd.with_le(MAX_SHORT_LE)
                .write_into(LengthEncoding::Short, &mut self.wire)?;
        } else {
            cmd.write_into(LengthEncoding::Short, &mut self.wire)?;
        }
        let start = Instant::now();
        let bytes = self.card.transmit_raw(&self.wire)?;
        let elapsed = start.elapsed();
        if let Some(hook) = self.trace.as_mut() {
            hook(&Exchange {
                kind,
                command: &self.wire,
                response: &bytes,
                elapsed,
            });
        }
        Ok(Response::parse(&bytes)?)
    }
}

fn check_len(le: u32, got: usize) -> Result<(), CardError> {
    if got > le as usize {
        Err(CardError::ResponseTooLong { le, got })
    } else {
        Ok(())
    }
}

impl<C: Card + fmt::Debug> fmt::Debug for Channel<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("card", &self.card)
            .field("extended_length", &self.extended_length)
            .field("raw", &self.raw)
            .field("trace", &self.trace.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::ScriptedCard;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    fn hex(b: &[u8]) -> String {
        simkit_core::hexutil::to_hex(b)
    }

    /// A card that records how [`Card::transmit_batch`] was called (sizes of the batches).
    struct Batching {
        inner: ScriptedCard,
        batches: Vec<usize>,
    }

    impl Card for Batching {
        fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
            self.inner.transmit_raw(apdu)
        }
        fn transmit_batch(&mut self, apdus: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CardError> {
            self.batches.push(apdus.len());
            apdus.iter().map(|a| self.inner.transmit_raw(a)).collect()
        }
        fn reset(&mut self) -> Result<crate::transport::Atr, CardError> {
            self.inner.reset()
        }
        fn atr(&self) -> &crate::transport::Atr {
            self.inner.atr()
        }
    }

    /// One-APDU commands go together, a command with Le (answered 61xx here) last in its group
    /// with GET RESPONSE right after it; a chain is sent on its own and stopped at the refused
    /// piece.
    #[test]
    fn batch_pipelines_only_commands_without_follow_up() {
        let long = data(300);
        let p1 = format!("90E80000 FF {}", hex(&long[..255]));
        let card = ScriptedCard::new([
            ("80E80000 01 01", "9000"),
            ("80E80000 01 02", "6A80"),
            ("80CA0000 00", "AA 6101"),
            ("80C00000 01", "BB 9000"),
            ("80E80000 01 03", "9000"),
            (p1.as_str(), "9D04"),
            ("80E80000 01 04", "6101"),
        ]);
        let mut ch = Channel::new(Batching {
            inner: card,
            batches: Vec::new(),
        });
        ch.set_extended_length(false);
        let recorder = TraceRecorder::new();
        ch.set_trace(recorder.hook());
        let put = |b: u8| Command::new(0x80, 0xE8, 0, 0).data([b]);
        let cmds = [
            put(1),
            put(2),
            Command::new(0x80, 0xCA, 0, 0).le(256),
            put(3),
            Command::new(0x80, 0xE8, 0, 0).data(long),
            put(4),
        ];
        let r = ch.transmit_batch(&cmds).unwrap();
        let sws: Vec<u16> = r.iter().map(|x| x.sw.to_u16()).collect();
        assert_eq!(sws, [0x9000, 0x6A80, 0x9000, 0x9000, 0x9D04, 0x6101]);
        assert_eq!(r[2].data, [0xAA, 0xBB]);
        // The refused first piece ended the chain: its second piece was never sent.
        assert_eq!(ch.card().batches, [3, 1, 1]);
        ch.card().inner.finish().unwrap();
        assert_eq!(recorder.exchanges().len(), 7);
    }

    /// A command with Le answered 6Cxx in a pipeline is re-issued with the exact Le before the
    /// next group goes, and the caller sees the complete answer.
    #[test]
    fn batch_reissues_a_pipelined_command_answered_6cxx() {
        let card = ScriptedCard::new([
            ("80E80000 01 01", "9000"),
            ("80CA0000 00", "6C05"),
            ("80CA0000 05", "0102030405 9000"),
            ("80E80000 01 02", "9000"),
        ]);
        let mut ch = Channel::new(Batching {
            inner: card,
            batches: Vec::new(),
        });
        let put = |b: u8| Command::new(0x80, 0xE8, 0, 0).data([b]);
        let r = ch
            .transmit_batch(&[put(1), Command::new(0x80, 0xCA, 0, 0).le(256), put(2)])
            .unwrap();
        assert_eq!(r[1].data, [1, 2, 3, 4, 5]);
        assert_eq!(r[1].sw, Sw::Success);
        assert_eq!(ch.card().batches, [2, 1]);
        ch.card().inner.finish().unwrap();
    }

    #[test]
    fn batch_in_raw_mode_sends_everything_together() {
        let mut ch = Channel::new(Batching {
            inner: ScriptedCard::new([("80CA0000 00", "AA 6101"), ("80E80000 01 01", "9000")]),
            batches: Vec::new(),
        });
        ch.set_raw(true);
        let r = ch
            .transmit_batch(&[
                Command::new(0x80, 0xCA, 0, 0).le(256),
                Command::new(0x80, 0xE8, 0, 0).data([1]),
            ])
            .unwrap();
        assert_eq!(r[0].sw, Sw::MoreAvailable(1));
        assert_eq!(ch.card().batches, [2]);
        ch.card().inner.finish().unwrap();
    }

    #[test]
    fn plain_9000() {
        let mut ch = Channel::new(ScriptedCard::new([("80100000 31", "0102 9000")]));
        let r = ch
            .transmit(&Command::new(0x80, 0x10, 0, 0).le(0x31))
            .unwrap();
        assert_eq!((r.data, r.sw), (vec![1, 2], Sw::Success));
        ch.card().finish().unwrap();
    }

    #[test]
    fn one_get_response() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 00", "AABB 6103"),
            ("80C00000 03", "CCDDEE 9000"),
        ]));
        let r = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(256))
            .unwrap();
        assert_eq!(r.data, [0xAA, 0xBB, 0xCC, 0xDD, 0xEE]);
        assert_eq!(r.sw, Sw::Success);
        ch.card().finish().unwrap();
    }

    #[test]
    fn several_get_responses_and_6100_means_256() {
        let part = data(256);
        let tail = data(10);
        let first = format!("{}6100", hex(&part));
        let second = format!("{}6100", hex(&part));
        let third = format!("{}9000", hex(&tail));
        let mut ch = Channel::new(ScriptedCard::new([
            ("00CB0000 000000", first.as_str()),
            ("00C00000 00", second.as_str()),
            ("00C00000 00", third.as_str()),
        ]));
        let recorder = TraceRecorder::new();
        ch.set_trace(recorder.hook());
        let r = ch
            .transmit(&Command::new(0x00, 0xCB, 0, 0).le(65536))
            .unwrap();
        assert_eq!(r.data.len(), 522);
        assert_eq!(r.data[..256], part[..]);
        assert_eq!(r.data[512..], tail[..]);
        ch.card().finish().unwrap();
        let kinds: Vec<_> = recorder.take().into_iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                ExchangeKind::Command,
                ExchangeKind::GetResponse,
                ExchangeKind::GetResponse
            ]
        );
        assert!(recorder.exchanges().is_empty());
    }

    #[test]
    fn get_response_keeps_logical_channel_and_drops_chaining_bit() {
        // A chained last piece has no chaining bit anyway; a CLA with channel bits keeps them.
        let mut ch = Channel::new(ScriptedCard::new([
            ("83CA0000 00", "01 6101"),
            ("83C00000 01", "02 9000"),
        ]));
        let r = ch
            .transmit(&Command::new(0x83, 0xCA, 0, 0).le(256))
            .unwrap();
        assert_eq!(r.data, [1, 2]);
    }

    #[test]
    fn final_status_after_get_response_is_kept() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 00", "01 6101"),
            ("80C00000 01", "02 6282"),
        ]));
        let r = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(256))
            .unwrap();
        assert_eq!((r.data, r.sw), (vec![1, 2], Sw::EndOfFile));
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 00", "01 6101"),
            ("80C00000 01", "02 6282"),
        ]));
        let e = ch
            .transmit_ok("GET DATA", &Command::new(0x80, 0xCA, 0, 0).le(256))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "GET DATA: 6282 end of file or record reached before reading Ne bytes"
        );
    }

    #[test]
    fn wrong_le_reissues_with_exact_le() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 10", "6C04"),
            ("80CA0000 04", "01020304 9000"),
        ]));
        let recorder = TraceRecorder::new();
        ch.set_trace(recorder.hook());
        let r = ch.transmit(&Command::new(0x80, 0xCA, 0, 0).le(16)).unwrap();
        assert_eq!((r.data, r.sw), (vec![1, 2, 3, 4], Sw::Success));
        assert_eq!(recorder.exchanges()[1].kind, ExchangeKind::Reissue);
        ch.card().finish().unwrap();
    }

    #[test]
    fn wrong_le_only_once_and_6c00_means_256() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 10", "6C00"),
            ("80CA0000 00", "6C05"),
        ]));
        let e = ch
            .transmit_ok("GET DATA", &Command::new(0x80, 0xCA, 0, 0).le(16))
            .unwrap_err();
        assert_eq!(e.sw(), Some(Sw::WrongLe(5)));
        ch.card().finish().unwrap();
    }

    #[test]
    fn wrong_le_then_61xx() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 08", "6C03"),
            ("80CA0000 03", "0102 6101"),
            ("80C00000 01", "03 9000"),
        ]));
        let r = ch.transmit(&Command::new(0x80, 0xCA, 0, 0).le(8)).unwrap();
        assert_eq!(r.data, [1, 2, 3]);
        // The caller's Ne stays the limit after the re-issue.
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 01", "6C03"),
            ("80CA0000 03", "010203 9000"),
        ]));
        let e = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(1))
            .unwrap_err();
        assert!(
            matches!(e, CardError::ResponseTooLong { le: 1, got: 3 }),
            "{e}"
        );
    }

    #[test]
    fn wrong_le_on_get_response() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 00", "01 6105"),
            ("80C00000 05", "6C02"),
            ("80C00000 02", "0203 9000"),
        ]));
        let r = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(256))
            .unwrap();
        assert_eq!(r.data, [1, 2, 3]);
        ch.card().finish().unwrap();
    }

    #[test]
    fn le_violation_detected() {
        let mut ch = Channel::new(ScriptedCard::new([("80100000 02", "010203 9000")]));
        let e = ch
            .transmit(&Command::new(0x80, 0x10, 0, 0).le(2))
            .unwrap_err();
        assert!(
            matches!(e, CardError::ResponseTooLong { le: 2, got: 3 }),
            "{e}"
        );
        // Without an Le field no data may come back.
        let mut ch = Channel::new(ScriptedCard::new([("805E0000", "00 9000")]));
        let e = ch.transmit(&Command::new(0x80, 0x5E, 0, 0)).unwrap_err();
        assert!(
            matches!(e, CardError::ResponseTooLong { le: 0, got: 1 }),
            "{e}"
        );
        assert_eq!(e.to_string(), "response of 1 data bytes exceeds Le 0");
        // Across GET RESPONSE parts, stopping as soon as the limit is passed.
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 04", "010203 6102"),
            ("80C00000 02", "0405 9000"),
        ]));
        let e = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(4))
            .unwrap_err();
        assert!(
            matches!(e, CardError::ResponseTooLong { le: 4, got: 5 }),
            "{e}"
        );
        let mut ch = Channel::new(ScriptedCard::new([("80CA0000 02", "010203 6102")]));
        let e = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(2))
            .unwrap_err();
        assert!(
            matches!(e, CardError::ResponseTooLong { le: 2, got: 3 }),
            "{e}"
        );
        ch.card().finish().unwrap();
        // Exactly Le is fine; so is less.
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 02", "0102 9000"),
            ("80CA0000 02", "01 9000"),
        ]));
        ch.transmit(&Command::new(0x80, 0xCA, 0, 0).le(2)).unwrap();
        ch.transmit(&Command::new(0x80, 0xCA, 0, 0).le(2)).unwrap();
    }

    #[test]
    fn endless_61xx_is_stopped() {
        let mut card = ScriptedCard::new([("80CA0000 000000", "6100")]);
        for _ in 0..MAX_GET_RESPONSES {
            card = card.then_bytes([0x80, 0xC0, 0, 0, 0], [0x61, 0x00]);
        }
        let mut ch = Channel::new(card);
        let e = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(65536))
            .unwrap_err();
        assert!(
            matches!(
                e,
                CardError::GetResponseLimit {
                    count: MAX_GET_RESPONSES
                }
            ),
            "{e}"
        );
        ch.card().finish().unwrap();
    }

    #[test]
    fn raw_mode_passes_61xx_and_6cxx_through() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80CA0000 00", "AABB 6103"),
            ("80CA0000 10", "6C04"),
            ("80CA0000 01", "010203 9000"),
        ]));
        ch.set_raw(true);
        assert!(ch.is_raw());
        let r = ch
            .transmit(&Command::new(0x80, 0xCA, 0, 0).le(256))
            .unwrap();
        assert_eq!((r.data, r.sw), (vec![0xAA, 0xBB], Sw::MoreAvailable(3)));
        let r = ch.transmit(&Command::new(0x80, 0xCA, 0, 0).le(16)).unwrap();
        assert_eq!(r.sw, Sw::WrongLe(4));
        // No Le check either.
        let r = ch.transmit(&Command::new(0x80, 0xCA, 0, 0).le(1)).unwrap();
        assert_eq!(r.data.len(), 3);
        ch.card().finish().unwrap();
        // transmit_ok in raw mode reports 61xx as a status.
        let mut ch = Channel::new(ScriptedCard::new([("80CA0000 00", "AA 6101")]));
        ch.set_raw(true);
        let e = ch
            .transmit_ok("GET DATA", &Command::new(0x80, 0xCA, 0, 0).le(256))
            .unwrap_err();
        assert_eq!(e.to_string(), "GET DATA: 6101 1 bytes still available");
    }

    #[test]
    fn status_errors_carry_the_meaning() {
        let mut ch = Channel::new(ScriptedCard::new([
            ("80220000 02 AABB 28", "6982"),
            ("80220000 02 AABB 28", "9C04"),
        ]));
        let cmd = Command::new(0x80, 0x22, 0, 0).data([0xAA, 0xBB]).le(40);
        let e = ch.transmit_ok("APPLY GRANT", &cmd).unwrap_err();
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 6982 security status not satisfied"
        );
        assert!(matches!(
            e,
            CardError::Status {
                sw: Sw::SecurityStatusNotSatisfied,
                command: "APPLY GRANT"
            }
        ));
        let e = ch.transmit_ok("APPLY GRANT", &cmd).unwrap_err();
        assert_eq!(e.sw(), Some(Sw::GrantAlreadyApplied));
    }

    #[test]
    fn extended_length_used_when_on() {
        let payload = data(300);
        let expect = format!("80E80000 00012C {} 0000", hex(&payload));
        let mut ch = Channel::new(ScriptedCard::new([(expect.as_str(), "9000")]));
        ch.transmit_ok(
            "PUT",
            &Command::new(0x80, 0xE8, 0, 0)
                .data(payload.clone())
                .le(65536),
        )
        .unwrap();
        ch.card().finish().unwrap();
    }

    #[test]
    fn long_data_chained_when_extended_length_off() {
        let payload = data(600);
        let p1 = format!("90E80000 FF {}", hex(&payload[..255]));
        let p2 = format!("90E80000 FF {}", hex(&payload[255..510]));
        let p3 = format!("80E80000 5A {} 00", hex(&payload[510..]));
        let mut ch = Channel::new(ScriptedCard::new([
            (p1.as_str(), "9000"),
            (p2.as_str(), "9000"),
            (p3.as_str(), "0102 9000"),
        ]));
        ch.set_extended_length(false);
        let recorder = TraceRecorder::new();
        ch.set_trace(recorder.hook());
        let out = ch
            .transmit_ok(
                "PUT",
                &Command::new(0x80, 0xE8, 0, 0).data(payload.clone()).le(256),
            )
            .unwrap();
        assert_eq!(out, [1, 2]);
        ch.card().finish().unwrap();
        let kinds: Vec<_> = recorder.exchanges().iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                ExchangeKind::ChainPiece,
                ExchangeKind::ChainPiece,
                ExchangeKind::Command
            ]
        );
    }

    #[test]
    fn chain_refused_midway_returns_that_status() {
        let payload = data(300);
        let p1 = format!("10E80000 FF {}", hex(&payload[..255]));
        let mut ch = Channel::new(ScriptedCard::new([(p1.as_str(), "6884")]));
        ch.set_extended_length(false);
        let e = ch
            .transmit_ok("PUT", &Command::new(0x00, 0xE8, 0, 0).data(payload))
            .unwrap_err();
        assert_eq!(e.to_string(), "PUT: 6884 command chaining not supported");
        ch.card().finish().unwrap();
    }

    #[test]
    fn large_ne_without_extended_length_asks_256_then_61xx() {
        let part = data(256);
        let first = format!("{}6110", hex(&part));
        let second = format!("{}9000", hex(&data(16)));
        let mut ch = Channel::new(ScriptedCard::new([
            ("00B00000 00", first.as_str()),
            ("00C00000 10", second.as_str()),
        ]));
        ch.set_extended_length(false);
        let r = ch
            .transmit(&Command::new(0x00, 0xB0, 0, 0).le(1000))
            .unwrap();
        assert_eq!(r.data.len(), 272);
        ch.card().finish().unwrap();
    }

    #[test]
    fn raw_mode_with_short_only_refuses_what_does_not_fit() {
        let mut ch = Channel::new(ScriptedCard::empty());
        ch.set_extended_length(false).set_raw(true);
        let e = ch
            .transmit(&Command::new(0x00, 0xB0, 0, 0).le(1000))
            .unwrap_err();
        assert!(matches!(e, CardError::Apdu(_)), "{e}");
    }

    #[test]
    fn short_response_is_an_apdu_error() {
        let mut ch = Channel::new(ScriptedCard::new([("00B00000", "90")]));
        let e = ch.transmit(&Command::new(0x00, 0xB0, 0, 0)).unwrap_err();
        assert!(matches!(e, CardError::Apdu(_)), "{e}");
    }

    #[test]
    fn transport_errors_pass_through() {
        let mut ch = Channel::new(ScriptedCard::empty().then_power_lost([0x80, 0x10, 0, 0]));
        let e = ch.transmit(&Command::new(0x80, 0x10, 0, 0)).unwrap_err();
        assert!(matches!(e, CardError::PowerLost));
    }

    #[test]
    fn trace_display() {
        let x = Exchange {
            kind: ExchangeKind::GetResponse,
            command: &[0x00, 0xC0, 0, 0, 2],
            response: &[1, 2, 0x90, 0],
            elapsed: Duration::ZERO,
        };
        assert_eq!(
            x.to_string(),
            "> 00 C0 00 00 02 (get response)\n< 01 02 90 00"
        );
    }
}
