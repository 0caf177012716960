//! The jCardSim backend's own errors, [`JcardsimError`], and the build hint
//! [`JAR_BUILD_COMMAND`] its "jar not found" message carries.
//!
//! This module depends on nothing of this crate; [`CardError`](crate::CardError) wraps it with
//! `#[from]` (transparently: the user reads the same text). It must not import the card error
//! back (no cycle inside `simkit-card`).

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use thiserror::Error;

/// How to build the card host jar, from the workspace root.
pub const JAR_BUILD_COMMAND: &str = "mvn -B -q -f applets/pom.xml package -DskipTests";

/// Everything the jCardSim card host itself can get wrong (beyond the socket's I/O errors,
/// which stay [`CardError::Transport`](crate::CardError::Transport), and the host's refusals,
/// which stay [`CardError::CardHost`](crate::CardError::CardHost)).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JcardsimError {
    /// The card host's answer broke the socket protocol.
    #[error("card host protocol violation: {0}")]
    HostProtocol(#[from] HostProtocolError),

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
    use crate::CardError;

    #[test]
    fn jar_not_found_names_the_build_command() {
        let e = CardError::from(JcardsimError::JarNotFound {
            searched: vec![PathBuf::from("/a/b.jar"), PathBuf::from("/c.jar")],
        });
        let s = e.to_string();
        assert!(s.contains("/a/b.jar, /c.jar"), "{s}");
        assert!(
            s.contains("mvn -B -q -f applets/pom.xml package -DskipTests"),
            "{s}"
        );
    }

    #[test]
    fn startup_error_shows_stderr_tail() {
        let e = CardError::from(JcardsimError::Startup {
            reason: StartupFailure::TimedOut(Duration::from_secs(3)),
            stderr_tail: "boom\n".into(),
        });
        let s = e.to_string();
        assert!(s.starts_with("card host did not start: no port announced within 3s"));
        assert!(s.ends_with("---\nboom"), "{s}");
    }
}
