//! The card host's socket protocol (`applets/card-host/README.md`, "Protocol"): framing,
//! opcodes and status mapping for one connection.
//!
//! This module owns the bytes on the socket and nothing else: which card a request addresses
//! and what a response means for the caller is [`super`]'s business.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::error::HostProtocolError;
use crate::error::CardError;

/// Largest frame either side may send (1 MiB).
pub(crate) const MAX_FRAME: u32 = 1 << 20;

/// Request opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    Transmit = 0x01,
    Reset = 0x02,
    PowerOff = 0x03,
    PowerOn = 0x04,
    GetAtr = 0x05,
    TearAt = 0x06,
    WriteCount = 0x07,
    ListCards = 0x08,
    Install = 0x09,
    Shutdown = 0x0A,
    FactoryReset = 0x0B,
}

impl Op {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Op::Transmit => "TRANSMIT",
            Op::Reset => "RESET",
            Op::PowerOff => "POWER_OFF",
            Op::PowerOn => "POWER_ON",
            Op::GetAtr => "GET_ATR",
            Op::TearAt => "TEAR_AT",
            Op::WriteCount => "WRITE_COUNT",
            Op::ListCards => "LIST_CARDS",
            Op::Install => "INSTALL",
            Op::Shutdown => "SHUTDOWN",
            Op::FactoryReset => "FACTORY_RESET",
        }
    }
}

const STATUS_OK: u8 = 0;
const STATUS_POWER_LOST: u8 = 1;
const STATUS_ERROR: u8 = 2;
const STATUS_POWERED_OFF: u8 = 3;

/// One connection to a card host: requests go out in one write, responses are read in order.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
}

impl Connection {
    /// Connects, with TCP_NODELAY (each request is one write that must not wait for an ACK).
    pub(crate) fn connect(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<Connection> {
        let stream = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t)?,
            None => TcpStream::connect(addr)?,
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        Ok(Connection {
            stream: BufReader::with_capacity(1 << 16, stream),
            out: Vec::with_capacity(1 << 10),
        })
    }

    /// Sends one request and returns the payload of an OK response.
    ///
    /// POWER_LOST → [`CardError::PowerLost`], POWERED_OFF → [`CardError::PoweredOff`],
    /// ERROR → [`CardError::CardHost`] with the host's message.
    pub(crate) fn request(
        &mut self,
        op: Op,
        card: u8,
        payload: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        self.send(op, card, payload)?;
        self.receive()
    }

    /// Writes one request frame without waiting for its response. The host answers requests
    /// of a connection strictly in order, so a caller may send several and then
    /// [`receive`](Self::receive) as many responses (pipelining).
    pub(crate) fn send(&mut self, op: Op, card: u8, payload: &[u8]) -> Result<(), CardError> {
        self.out.clear();
        self.queue(op, card, payload)?;
        self.flush()
    }

    /// Appends one request frame to the outgoing buffer without writing it; [`flush`](Self::flush)
    /// writes every queued frame in one system call.
    pub(crate) fn queue(&mut self, op: Op, card: u8, payload: &[u8]) -> Result<(), CardError> {
        let len = u32::try_from(payload.len() + 2)
            .ok()
            .filter(|&l| l <= MAX_FRAME)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "request larger than the card host's 1 MiB frame limit",
                )
            })?;
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out.push(op as u8);
        self.out.push(card);
        self.out.extend_from_slice(payload);
        Ok(())
    }

    /// Writes the queued frames and empties the queue.
    pub(crate) fn flush(&mut self) -> Result<(), CardError> {
        let r = self.stream.get_mut().write_all(&self.out);
        self.out.clear();
        Ok(r?)
    }

    /// Reads the next response frame: the payload of an OK response, or the error its status
    /// means (the frame is consumed either way, so the connection stays in step).
    pub(crate) fn receive(&mut self) -> Result<Vec<u8>, CardError> {
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes(head);
        if len == 0 || len > MAX_FRAME {
            return Err(HostProtocolError::FrameLength(len).into());
        }
        let mut status = [0u8; 1];
        self.stream.read_exact(&mut status)?;
        // `len` ≤ 1 MiB, so this fits any usize.
        let mut body = vec![0u8; (len - 1) as usize];
        self.stream.read_exact(&mut body)?;
        match status[0] {
            STATUS_OK => Ok(body),
            STATUS_POWER_LOST => Err(CardError::PowerLost),
            STATUS_POWERED_OFF => Err(CardError::PoweredOff),
            STATUS_ERROR => Err(CardError::CardHost(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            other => Err(HostProtocolError::UnknownStatus(other).into()),
        }
    }
}

/// One card as LIST_CARDS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// Its index.
    pub index: u8,
    /// Whether it is powered.
    pub powered: bool,
    /// Whether transactions roll back (off with `--no-rollback`).
    pub rollback: bool,
    /// Installed applets: (AID, class name).
    pub applets: Vec<(Vec<u8>, String)>,
}

/// Parses the LIST_CARDS text: `<index> <on|off> <on|off>[ <AIDHEX>=<class>]*` per line.
pub(crate) fn parse_card_list(body: &[u8]) -> Result<Vec<CardInfo>, HostProtocolError> {
    let text = std::str::from_utf8(body).map_err(|_| HostProtocolError::CardList { line: 1 })?;
    let mut cards = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || HostProtocolError::CardList { line: i + 1 };
        let mut words = line.split_whitespace();
        let index = words
            .next()
            .and_then(|w| w.parse::<u8>().ok())
            .ok_or_else(bad)?;
        let flag = |w: Option<&str>| match w {
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            _ => Err(bad()),
        };
        let powered = flag(words.next())?;
        let rollback = flag(words.next())?;
        let mut applets = Vec::new();
        for w in words {
            let (aid, class) = w.split_once('=').ok_or_else(bad)?;
            let aid = simkit_core::hexutil::parse_hex(aid).map_err(|_| bad())?;
            applets.push((aid, class.to_owned()));
        }
        cards.push(CardInfo {
            index,
            powered,
            rollback,
            applets,
        });
    }
    Ok(cards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_list() {
        let text = b"0 on on F0534D4B4954E1=dev.simkit.cardhost.testapplets.EchoApplet F0534D4B4954E2=x.Y\n1 off off\n";
        let cards = parse_card_list(text).unwrap();
        assert_eq!(cards.len(), 2);
        assert_eq!(
            cards[0].applets[0].0,
            [0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE1]
        );
        assert_eq!(cards[0].applets[1].1, "x.Y");
        assert!(cards[0].powered && cards[0].rollback);
        assert_eq!(
            cards[1],
            CardInfo {
                index: 1,
                powered: false,
                rollback: false,
                applets: vec![]
            }
        );
        assert_eq!(
            parse_card_list(b"0 on maybe\n"),
            Err(HostProtocolError::CardList { line: 1 })
        );
        assert_eq!(
            parse_card_list(b"0 on on\nx on on"),
            Err(HostProtocolError::CardList { line: 2 })
        );
        assert_eq!(
            parse_card_list(b"0 on on F0=\n").unwrap()[0].applets,
            [(vec![0xF0], String::new())]
        );
    }

    proptest::proptest! {
        #[test]
        fn card_list_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_card_list(&body);
        }

        #[test]
        fn card_list_text_never_panics(text in "([0-9]{1,3} (on|off|x) (on|off)( [0-9A-F]{0,6}=[a-z.]{0,5})*\n?){0,4}") {
            let _ = parse_card_list(text.as_bytes());
        }
    }
}
