//! Starting, watching and stopping a card host process.
//!
//! This module owns the child process: the command line, the wait for its port file, the tail
//! of its stderr, and its end (SHUTDOWN, then kill, always reaped). It must not speak to cards;
//! [`CardHostProcess::card`] hands out [`JcardsimCard`]s for that.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::error::{HostProtocolError, JcardsimError, StartupFailure};
use super::protocol::{CardInfo, Connection, Op, parse_card_list};
use super::{CardHostConfig, JcardsimCard, StderrMode, locate_jar};
use crate::error::CardError;

/// How much of the host's stderr is kept for error messages.
const STDERR_TAIL: usize = 8 * 1024;
/// How long to wait for a clean exit after SHUTDOWN before killing.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// How often to look at the port file and the child while starting.
const POLL: Duration = Duration::from_millis(5);

/// A running card host (a `java -jar simkit-card-host.jar` child process) and its cards.
///
/// Shared through an [`Arc`]: every [`JcardsimCard`] made by [`card`](Self::card) holds one,
/// so the process lives until the last handle (and the caller's `Arc`) is gone. Dropping it
/// sends SHUTDOWN, waits up to 3 s for the exit, kills the process if it is still running,
/// and always reaps it; the port file's temporary directory is removed.
#[derive(Debug)]
pub struct CardHostProcess {
    addr: SocketAddr,
    cards: Vec<CardInfo>,
    io_timeout: Option<Duration>,
    child: Mutex<Option<Child>>,
    pid: u32,
    stderr: Option<Arc<Mutex<Vec<u8>>>>,
    // Removed on drop, after the child is gone.
    _port_dir: tempfile::TempDir,
}

impl CardHostProcess {
    /// Starts a card host with `config` and waits until it answers.
    ///
    /// Runs `java [jvm_args] -jar JAR --port 0 --port-file TMP/port --quiet [--card …]
    /// [--cards N] [--applet-jar …] [--no-rollback] [extra_args]`, waits for the port file (at most
    /// `config.startup_timeout`), connects to 127.0.0.1 and lists the cards.
    ///
    /// # Errors
    /// [`JcardsimError::JarNotFound`], [`JcardsimError::InvalidApplet`], [`JcardsimError::Spawn`]
    /// (no java), [`JcardsimError::Startup`] (exited or timed out; with the end of its stderr when
    /// captured), transport errors.
    pub fn spawn(config: CardHostConfig) -> Result<Arc<CardHostProcess>, CardError> {
        let jar = match &config.jar {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => {
                return Err(JcardsimError::JarNotFound {
                    searched: vec![p.clone()],
                }
                .into());
            }
            None => locate_jar()?,
        };
        let java = config.java.clone().unwrap_or_else(default_java);
        let port_dir = tempfile::Builder::new()
            .prefix("simkit-card-host")
            .tempdir()?;
        let port_file = port_dir.path().join("port");

        let mut cmd = Command::new(&java);
        cmd.args(&config.jvm_args)
            .arg("-jar")
            .arg(&jar)
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .arg("--quiet");
        for card in &config.cards {
            cmd.arg("--card").arg(card.to_arg()?);
        }
        if config.copies != 1 {
            cmd.arg("--cards").arg(config.copies.to_string());
        }
        for jar in &config.applet_jars {
            cmd.arg("--applet-jar").arg(jar);
        }
        if config.no_rollback {
            cmd.arg("--no-rollback");
        }
        cmd.args(&config.extra_args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(match config.stderr {
            StderrMode::Capture => Stdio::piped(),
            StderrMode::Inherit => Stdio::inherit(),
            StderrMode::Discard => Stdio::null(),
        });
        let mut child = cmd.spawn().map_err(|source| JcardsimError::Spawn {
            program: java.clone(),
            source,
        })?;
        let pid = child.id();
        let (stderr, reader) = match child.stderr.take() {
            Some(pipe) => {
                let tail = Arc::new(Mutex::new(Vec::new()));
                (Some(Arc::clone(&tail)), Some(spawn_tail_reader(pipe, tail)))
            }
            None => (None, None),
        };

        let port = match wait_for_port(&mut child, &port_file, config.startup_timeout) {
            Ok(port) => port,
            Err(reason) => {
                // Reap it, and let the reader drain the pipe so the tail is complete.
                let _ = child.kill();
                let _ = child.wait();
                if let Some(r) = reader {
                    let _ = r.join();
                }
                return Err(match reason {
                    Waited::Io(e) => CardError::Transport(e),
                    Waited::Failed(reason) => JcardsimError::Startup {
                        reason,
                        stderr_tail: tail_text(stderr.as_ref()),
                    }
                    .into(),
                });
            }
        };
        // The reader thread keeps draining stderr (else the host would block on a full pipe)
        // and ends at EOF when the process exits; it is not joined.
        drop(reader);

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut process = CardHostProcess {
            addr,
            cards: Vec::new(),
            io_timeout: config.io_timeout,
            child: Mutex::new(Some(child)),
            pid,
            stderr,
            _port_dir: port_dir,
        };
        // On error `process` is dropped here, which stops the child.
        let mut conn = Connection::connect(addr, config.io_timeout)?;
        let list = conn.request(Op::ListCards, 0, &[])?;
        process.cards = parse_card_list(&list)?;
        Ok(Arc::new(process))
    }

    /// A handle on card `index` of this host, with its own connection.
    ///
    /// # Errors
    /// [`JcardsimError::NoSuchCard`], transport errors.
    pub fn card(self: &Arc<Self>, index: u8) -> Result<JcardsimCard, CardError> {
        if usize::from(index) >= self.cards.len() {
            return Err(JcardsimError::NoSuchCard {
                index,
                count: self.cards.len(),
            }
            .into());
        }
        JcardsimCard::connect(self.addr, index, self.io_timeout, Some(Arc::clone(self)))
    }

    /// The loopback address the host listens on (for `jcardsim://HOST:PORT` in another
    /// process).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The cards as listed at startup.
    pub fn cards(&self) -> &[CardInfo] {
        &self.cards
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running. No side effect beyond reaping an exited child.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The end of the host's stderr so far (empty unless [`StderrMode::Capture`]).
    pub fn stderr_tail(&self) -> String {
        tail_text(self.stderr.as_ref())
    }

    /// Stops the host now: SHUTDOWN, then kill after a grace period; reaps it. Every handle
    /// on its cards fails from then on. Called by drop; calling it twice is harmless.
    ///
    /// Returns the exit status (`None` if it was already stopped).
    ///
    /// # Errors
    /// Only from waiting for the child.
    pub fn shutdown(&self) -> Result<Option<ExitStatus>, CardError> {
        let mut guard = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut child) = guard.take() else {
            return Ok(None);
        };
        if let Ok(None) = child.try_wait() {
            // Best effort: a host that cannot be reached is killed below.
            if let Ok(mut conn) = Connection::connect(self.addr, Some(Duration::from_secs(1))) {
                let _ = conn.request(Op::Shutdown, 0, &[]);
            }
            let deadline = Instant::now() + EXIT_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(POLL);
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
        }
        Ok(Some(child.wait()?))
    }
}

impl Drop for CardHostProcess {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `$JAVA_HOME/bin/java` if it exists, else `java` from PATH.
fn default_java() -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = Path::new(&home).join("bin").join("java");
        if java.is_file() {
            return java;
        }
    }
    PathBuf::from(OsString::from("java"))
}

enum Waited {
    Io(io::Error),
    Failed(StartupFailure),
}

fn wait_for_port(child: &mut Child, port_file: &Path, timeout: Duration) -> Result<u16, Waited> {
    let deadline = Instant::now() + timeout;
    loop {
        // The host writes the file atomically (temp file + rename): it is there whole or not.
        match fs::read_to_string(port_file) {
            Ok(text) => {
                return text.trim().parse::<u16>().map_err(|_| {
                    Waited::Failed(StartupFailure::BadPortFile(HostProtocolError::PortFile))
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Waited::Io(e)),
        }
        match child.try_wait() {
            Ok(Some(status)) => return Err(Waited::Failed(StartupFailure::Exited(status))),
            Ok(None) => {}
            Err(e) => return Err(Waited::Io(e)),
        }
        if Instant::now() >= deadline {
            return Err(Waited::Failed(StartupFailure::TimedOut(timeout)));
        }
        thread::sleep(POLL);
    }
}

fn spawn_tail_reader(mut pipe: ChildStderr, tail: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            let mut t = tail.lock().unwrap_or_else(PoisonError::into_inner);
            t.extend_from_slice(chunk);
            if t.len() > 2 * STDERR_TAIL {
                let cut = t.len() - STDERR_TAIL;
                t.drain(..cut);
            }
        }
    })
}

fn tail_text(tail: Option<&Arc<Mutex<Vec<u8>>>>) -> String {
    let Some(tail) = tail else {
        return String::new();
    };
    let t = tail.lock().unwrap_or_else(PoisonError::into_inner);
    let start = t.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(t.get(start..).unwrap_or_default());
    // Start at a line boundary when the tail was cut.
    match (start > 0, text.find('\n')) {
        (true, Some(i)) => text.get(i + 1..).unwrap_or_default().to_owned(),
        _ => text.into_owned(),
    }
}
