//! The one error type of card access, [`CardError`].
//!
//! Status words are kept as [`Sw`] (whose `Display` carries the ISO or applet meaning), I/O
//! errors keep their source, and the only variant carrying free text is
//! [`CardError::CardHost`], which holds the card host's own message.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use simkit_core::apdu::ApduError;
use simkit_core::credit::message::MessageError;
use simkit_core::credit::module::StatusError;
use simkit_core::status::Sw;
use thiserror::Error;

use crate::jcardsim::JAR_BUILD_COMMAND;
use crate::pcsc::PcscError;

/// Everything that can go wrong between the host and a card.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardError {
    /// The connection to the card (socket, reader) failed.
    #[error("card transport: {0}")]
    Transport(#[from] io::Error),

    /// The simulator's armed tear fired during the command: power was cut after the k-th
    /// persistent write. The card has been reset and is ready for the next command.
    #[error("card power lost during the command (armed tear fired); the card was reset")]
    PowerLost,

    /// A command was sent to a card that is powered off (until power on or reset).
    #[error("card is powered off")]
    PoweredOff,

    /// The card host refused a request (status 2); the message is the host's own.
    #[error("card host: {0}")]
    CardHost(String),

    /// The card host's answer broke the socket protocol.
    #[error("card host protocol violation: {0}")]
    HostProtocol(#[from] HostProtocolError),

    /// A command could not be encoded, or a response was shorter than its status word.
    #[error("APDU: {0}")]
    Apdu(#[from] ApduError),

    /// The card answered a status word other than `9000`.
    #[error("{command}: {sw}")]
    Status {
        /// What the card answered.
        sw: Sw,
        /// The command's name, e.g. `APPLY GRANT`.
        command: &'static str,
    },

    /// The card sent more response data than the caller's Le allowed (`le` 0: the command had
    /// no Le field, so no data was expected).
    #[error("response of {got} data bytes exceeds Le {le}")]
    ResponseTooLong {
        /// The Ne of the caller's command (0 without an Le field).
        le: u32,
        /// How many data bytes came back, GET RESPONSE parts included.
        got: usize,
    },

    /// The card kept answering `61xx`.
    #[error("card still answered 61xx after {count} GET RESPONSE commands")]
    GetResponseLimit {
        /// How many GET RESPONSE commands were sent.
        count: usize,
    },

    /// A response whose length the applet specification does not allow.
    #[error("{command}: expected {expected} response bytes, got {got}")]
    UnexpectedResponse {
        /// The command's name.
        command: &'static str,
        /// What the specification allows, e.g. `"31"` or `"0..=64"`.
        expected: &'static str,
        /// The length received.
        got: usize,
    },

    /// A response of the right length that the core codecs reject.
    #[error("{command}: malformed response: {source}")]
    MalformedResponse {
        /// The command's name.
        command: &'static str,
        /// What the codec found.
        #[source]
        source: ResponseFormatError,
    },

    /// The card host jar is not where it was looked for.
    #[error(
        "card host jar not found (looked at: {}); build it with `{}` in the workspace root, or set SIMKIT_CARD_HOST_JAR",
        display_paths(searched),
        JAR_BUILD_COMMAND
    )]
    JarNotFound {
        /// Every path tried, in order.
        searched: Vec<PathBuf>,
    },

    /// The card host process could not be started at all.
    #[error("could not start {}: {source}", program.display())]
    Spawn {
        /// The program (java).
        program: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The card host started but did not come up.
    #[error("card host did not start: {reason}{}", stderr_section(stderr_tail))]
    Startup {
        /// What happened.
        reason: StartupFailure,
        /// The end of the host's stderr (empty when stderr was not captured).
        stderr_tail: String,
    },

    /// An applet that cannot be given to the card host.
    #[error("applet {class:?}: {reason}")]
    InvalidApplet {
        /// The class name given.
        class: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// A card index the card host does not have.
    #[error("card host has no card {index} (it has {count})")]
    NoSuchCard {
        /// The index asked for.
        index: u8,
        /// How many cards the host has.
        count: usize,
    },

    /// A `--card` string that is not a card URI.
    #[error("invalid card URI {uri:?}: {reason}")]
    InvalidUri {
        /// The string given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The PC/SC service, a reader, or the simulator behind it failed (no pcscd, no such
    /// reader, no card, sharing violation, not a simkit simulator, …).
    #[error(transparent)]
    Pcsc(#[from] PcscError),
}

/// How the card host's answer broke the protocol of `applets/card-host/README.md`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HostProtocolError {
    /// A response frame length of 0 or above the 1 MiB limit.
    #[error("response frame length {0} is outside 1..=1048576")]
    FrameLength(u32),
    /// A status byte outside 0..=3.
    #[error("unknown response status {0}")]
    UnknownStatus(u8),
    /// An OK payload of the wrong size for its opcode.
    #[error("{op} answered {got} payload bytes, expected {expected}")]
    PayloadLength {
        /// The opcode's name.
        op: &'static str,
        /// What the protocol says.
        expected: &'static str,
        /// What came.
        got: usize,
    },
    /// A LIST_CARDS answer that is not UTF-8 lines of the documented shape.
    #[error("LIST_CARDS line {line} is not `<index> <on|off> <on|off> [AID=class]*`")]
    CardList {
        /// Line number, from 1.
        line: usize,
    },
    /// A port file whose content is not a port number.
    #[error("port file does not hold a port number")]
    PortFile,
}

/// Why the card host did not come up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartupFailure {
    /// The process exited before announcing its port (1: startup failure such as an applet
    /// that does not install; 2: bad arguments).
    #[error("it exited with {0} before listening")]
    Exited(ExitStatus),
    /// No port file within the startup timeout; the process was killed.
    #[error("no port announced within {0:?}; killed it")]
    TimedOut(Duration),
    /// The port file was written but does not hold a port.
    #[error("{0}")]
    BadPortFile(HostProtocolError),
}

/// Which core codec rejected a response, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResponseFormatError {
    /// A credit-module message (request, completion ack).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A GET STATUS or GET FRAUD LOG response.
    #[error(transparent)]
    Status(#[from] StatusError),
}

impl CardError {
    /// The status word, if the card answered one other than `9000`.
    pub fn sw(&self) -> Option<Sw> {
        match self {
            CardError::Status { sw, .. } => Some(*sw),
            _ => None,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn stderr_section(tail: &str) -> String {
    let tail = tail.trim_end();
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n--- card host stderr (last lines) ---\n{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_display_carries_meaning() {
        let e = CardError::Status {
            sw: Sw::from_u16(0x6982),
            command: "APPLY GRANT",
        };
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 6982 security status not satisfied"
        );
        assert_eq!(e.sw(), Some(Sw::SecurityStatusNotSatisfied));
        let e = CardError::Status {
            sw: Sw::from_u16(0x9C04),
            command: "APPLY GRANT",
        };
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 9C04 grant already applied; nothing changed"
        );
    }

    #[test]
    fn jar_not_found_names_the_build_command() {
        let e = CardError::JarNotFound {
            searched: vec![PathBuf::from("/a/b.jar"), PathBuf::from("/c.jar")],
        };
        let s = e.to_string();
        assert!(s.contains("/a/b.jar, /c.jar"), "{s}");
        assert!(
            s.contains("mvn -B -q -f applets/pom.xml package -DskipTests"),
            "{s}"
        );
    }

    #[test]
    fn startup_error_shows_stderr_tail() {
        let e = CardError::Startup {
            reason: StartupFailure::TimedOut(Duration::from_secs(3)),
            stderr_tail: "boom\n".into(),
        };
        let s = e.to_string();
        assert!(s.starts_with("card host did not start: no port announced within 3s"));
        assert!(s.ends_with("---\nboom"), "{s}");
    }
}
