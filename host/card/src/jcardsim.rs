//! The jCardSim backend: cards simulated by the project's card host (`applets/card-host`),
//! reached over its loopback socket protocol.
//!
//! - [`CardHostProcess::spawn`] starts a host as a child process and stops it when dropped;
//!   [`CardHostProcess::card`] gives one [`JcardsimCard`] handle per card (each with its own
//!   connection, so handles can be used from different threads);
//! - [`JcardsimCard::spawn`] is the one-card shortcut, [`JcardsimCard::attach`] connects to a
//!   host someone else started (`jcardsim://HOST:PORT/INDEX`).
//!
//! The card host runs one command per card at a time and orders requests per connection, so
//! [`Card::begin_transaction`] is the default no-op here. It implements neither `61xx` nor Le:
//! [`Channel`](crate::Channel) does that on top.
//!
//! This module must not interpret APDUs; it moves them and maps the host's statuses to
//! [`CardError`]s.

pub(crate) mod error;
mod process;
mod protocol;

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use simkit_core::hexutil::to_hex;

pub use process::CardHostProcess;
pub use protocol::CardInfo;
use protocol::{Connection, Op, parse_card_list};

pub use error::{HostProtocolError, JAR_BUILD_COMMAND, JcardsimError, StartupFailure};

use crate::error::CardError;
use crate::transport::{Atr, Card, SimulatorControl};

/// Environment variable naming the card host jar.
pub const JAR_ENV: &str = "SIMKIT_CARD_HOST_JAR";
/// The command that builds the card host jar, run in the workspace root.
/// Where the build puts the jar, relative to the workspace root.
pub const JAR_IN_WORKSPACE: &str = "applets/card-host/target/simkit-card-host.jar";
/// The jar's file name (also looked for next to the executable).
pub const JAR_NAME: &str = "simkit-card-host.jar";
/// Commands in flight at once in [`Card::transmit_batch`] (the most
/// [`JcardsimCard::transmit_pipelined`] allows).
pub const BATCH_WINDOW: usize = 64;
/// Default time to wait for a starting host to announce its port (JVM start on a busy CI
/// machine can take seconds).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on one request to the host; a connection that timed out is unusable after.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds the card host jar: `$SIMKIT_CARD_HOST_JAR` if set (and only that), else
/// `<workspace>/applets/card-host/target/simkit-card-host.jar` relative to this crate's source
/// (known at build time), else next to the running executable or in the workspace above it.
///
/// # Errors
/// [`JcardsimError::JarNotFound`] listing every path tried; its message says how to build the jar.
pub fn locate_jar() -> Result<PathBuf, CardError> {
    if let Some(p) = std::env::var_os(JAR_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(JcardsimError::JarNotFound { searched: vec![p] }.into())
        };
    }
    let mut searched: Vec<PathBuf> = Vec::new();
    // CARGO_MANIFEST_DIR is <workspace>/host/card.
    if let Some(ws) = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2) {
        searched.push(ws.join(JAR_IN_WORKSPACE));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        searched.push(dir.join(JAR_NAME));
        // target/<profile>/[deps/]exe → up to the directory holding target/.
        searched.extend(
            dir.ancestors()
                .skip(1)
                .take(4)
                .map(|a| a.join(JAR_IN_WORKSPACE)),
        );
    }
    searched.dedup();
    match searched.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(JcardsimError::JarNotFound { searched }.into()),
    }
}

/// One applet to install on a card at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppletSpec {
    /// Its AID (5..=16 bytes for a real card; the host checks).
    pub aid: Vec<u8>,
    /// Its fully qualified Java class name.
    pub class: String,
    /// Install parameters passed to `install()` (may be empty).
    pub params: Vec<u8>,
}

impl AppletSpec {
    /// An applet without install parameters.
    pub fn new(aid: impl Into<Vec<u8>>, class: impl Into<String>) -> AppletSpec {
        AppletSpec {
            aid: aid.into(),
            class: class.into(),
            params: Vec::new(),
        }
    }

    /// Sets the install parameters.
    #[must_use]
    pub fn params(mut self, params: impl Into<Vec<u8>>) -> AppletSpec {
        self.params = params.into();
        self
    }

    fn invalid(&self, reason: &'static str) -> CardError {
        JcardsimError::InvalidApplet {
            class: self.class.clone(),
            reason,
        }
        .into()
    }

    fn check_class(&self) -> Result<(), CardError> {
        let ok = !self.class.is_empty()
            && self
                .class
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '.'));
        if ok {
            Ok(())
        } else {
            Err(self.invalid("not a Java class name"))
        }
    }

    /// `aid=HEX,class=NAME[,params=HEX]`, as the host's `--card` option wants it.
    fn to_arg(&self) -> Result<String, CardError> {
        self.check_class()?;
        let mut s = format!("aid={},class={}", to_hex(&self.aid), self.class);
        if !self.params.is_empty() {
            s.push_str(",params=");
            s.push_str(&to_hex(&self.params));
        }
        Ok(s)
    }

    /// The INSTALL request payload: `aidLen ‖ AID ‖ nameLen:u16 ‖ class ‖ params`.
    fn install_payload(&self) -> Result<Vec<u8>, CardError> {
        self.check_class()?;
        let aid_len =
            u8::try_from(self.aid.len()).map_err(|_| self.invalid("AID longer than 255 bytes"))?;
        let name_len = u16::try_from(self.class.len())
            .map_err(|_| self.invalid("class name longer than 65535 bytes"))?;
        let mut p = Vec::with_capacity(3 + self.aid.len() + self.class.len() + self.params.len());
        p.push(aid_len);
        p.extend_from_slice(&self.aid);
        p.extend_from_slice(&name_len.to_be_bytes());
        p.extend_from_slice(self.class.as_bytes());
        p.extend_from_slice(&self.params);
        Ok(p)
    }
}

/// One card: the applets installed on it at startup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardSpec {
    /// Installed in this order.
    pub applets: Vec<AppletSpec>,
}

impl CardSpec {
    /// A card with these applets.
    pub fn new(applets: impl IntoIterator<Item = AppletSpec>) -> CardSpec {
        CardSpec {
            applets: applets.into_iter().collect(),
        }
    }

    fn to_arg(&self) -> Result<String, CardError> {
        let parts = self
            .applets
            .iter()
            .map(AppletSpec::to_arg)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(";"))
    }
}

/// What to do with the host's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StderrMode {
    /// Keep the last 8 KiB for error messages ([`CardHostProcess::stderr_tail`]).
    #[default]
    Capture,
    /// Let it through to this process's stderr.
    Inherit,
    /// Throw it away.
    Discard,
}

/// How to start a card host.
#[derive(Debug, Clone)]
pub struct CardHostConfig {
    /// The jar; `None`: [`locate_jar`].
    pub jar: Option<PathBuf>,
    /// The `java` binary; `None`: `$JAVA_HOME/bin/java`, else `java` from PATH.
    pub java: Option<PathBuf>,
    /// The cards. Empty: the host's default, one card with EchoApplet and CounterApplet.
    pub cards: Vec<CardSpec>,
    /// How many times to create the card list (`--cards N`); 1 by default.
    pub copies: u32,
    /// Plain jCardSim semantics: nothing rolls back (`--no-rollback`).
    pub no_rollback: bool,
    /// Extra jars to load applet classes from (`--applet-jar`, looked at before the host's
    /// own classpath).
    pub applet_jars: Vec<PathBuf>,
    /// Options for the JVM, before `-jar`.
    pub jvm_args: Vec<OsString>,
    /// Further host options, after the generated ones (e.g. `--applet-jar PATH`).
    pub extra_args: Vec<OsString>,
    /// The host's stderr.
    pub stderr: StderrMode,
    /// How long to wait for the port.
    pub startup_timeout: Duration,
    /// Limit on each request (`None`: wait forever).
    pub io_timeout: Option<Duration>,
}

impl Default for CardHostConfig {
    fn default() -> Self {
        CardHostConfig {
            jar: None,
            java: None,
            cards: Vec::new(),
            copies: 1,
            no_rollback: false,
            applet_jars: Vec::new(),
            jvm_args: Vec::new(),
            extra_args: Vec::new(),
            stderr: StderrMode::Capture,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            io_timeout: Some(DEFAULT_IO_TIMEOUT),
        }
    }
}

impl CardHostConfig {
    /// A host with these cards and everything else default.
    pub fn with_cards(cards: impl IntoIterator<Item = CardSpec>) -> CardHostConfig {
        CardHostConfig {
            cards: cards.into_iter().collect(),
            ..CardHostConfig::default()
        }
    }
}

/// One card of a card host, through its own connection.
///
/// Dropping it closes the connection; the host process (if this handle shares in it) stops
/// when its last handle is gone.
#[derive(Debug)]
pub struct JcardsimCard {
    conn: Connection,
    index: u8,
    atr: Atr,
    broken: bool,
    // After `conn`, so the connection closes before a last handle stops the host.
    process: Option<Arc<CardHostProcess>>,
}

impl JcardsimCard {
    /// Starts a card host with `config` and returns a handle on its card 0; the host stops when
    /// the handle (and any other handle on it) is dropped. More handles:
    /// `card.process().map(|p| p.card(1))`.
    ///
    /// # Errors
    /// As for [`CardHostProcess::spawn`].
    pub fn spawn(config: CardHostConfig) -> Result<JcardsimCard, CardError> {
        CardHostProcess::spawn(config)?.card(0)
    }

    /// Connects to card `index` of a card host started elsewhere, e.g. `"127.0.0.1:40123"`.
    /// Checks that the card exists.
    ///
    /// # Errors
    /// [`JcardsimError::NoSuchCard`], transport errors (nothing listening: connection refused).
    pub fn attach(addr: impl ToSocketAddrs, index: u8) -> Result<JcardsimCard, CardError> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "address resolves to nothing",
            )
        })?;
        // Check the index before addressing the card, so a wrong one is NoSuchCard.
        let mut conn = Connection::connect(addr, Some(DEFAULT_IO_TIMEOUT))?;
        let count = parse_card_list(&conn.request(Op::ListCards, 0, &[])?)?.len();
        if usize::from(index) >= count {
            return Err(JcardsimError::NoSuchCard { index, count }.into());
        }
        JcardsimCard::with_connection(conn, index, None)
    }

    fn connect(
        addr: SocketAddr,
        index: u8,
        timeout: Option<Duration>,
        process: Option<Arc<CardHostProcess>>,
    ) -> Result<JcardsimCard, CardError> {
        JcardsimCard::with_connection(Connection::connect(addr, timeout)?, index, process)
    }

    fn with_connection(
        mut conn: Connection,
        index: u8,
        process: Option<Arc<CardHostProcess>>,
    ) -> Result<JcardsimCard, CardError> {
        let atr = Atr::new(conn.request(Op::GetAtr, index, &[])?);
        Ok(JcardsimCard {
            conn,
            index,
            atr,
            broken: false,
            process,
        })
    }

    /// The card's index on its host.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The host process, when this handle was made by [`spawn`](Self::spawn) or
    /// [`CardHostProcess::card`].
    pub fn process(&self) -> Option<&Arc<CardHostProcess>> {
        self.process.as_ref()
    }

    /// Installs an applet on this card (a persistent change until the host exits).
    ///
    /// # Errors
    /// [`CardError::CardHost`] when the class is missing or `install()` fails;
    /// [`JcardsimError::InvalidApplet`]; transport errors.
    pub fn install(&mut self, applet: &AppletSpec) -> Result<(), CardError> {
        let payload = applet.install_payload()?;
        self.request_empty(Op::Install, &payload)
    }

    /// Every card of the host this card belongs to (LIST_CARDS). No side effect.
    ///
    /// # Errors
    /// Transport errors, [`JcardsimError::HostProtocol`].
    pub fn list_cards(&mut self) -> Result<Vec<CardInfo>, CardError> {
        let body = self.request(Op::ListCards, &[])?;
        Ok(parse_card_list(&body)?)
    }

    /// Asks the host for the ATR (GET_ATR), refreshing [`Card::atr`]. No side effect.
    ///
    /// # Errors
    /// Transport errors.
    pub fn get_atr(&mut self) -> Result<Atr, CardError> {
        self.atr = Atr::new(self.request(Op::GetAtr, &[])?);
        Ok(self.atr.clone())
    }

    /// One request on this card's connection. A transport error (or a timeout) leaves the
    /// stream at an unknown position, so the connection is not used again.
    fn request(&mut self, op: Op, payload: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.broken {
            return Err(broken_connection());
        }
        let r = self.conn.request(op, self.index, payload);
        if matches!(
            r,
            Err(CardError::Transport(_) | CardError::Jcardsim(JcardsimError::HostProtocol(_)))
        ) {
            self.broken = true;
        }
        r
    }

    /// Sends `apdus` in order with up to `window` of them in flight at once, and returns each
    /// one's response (data ‖ SW) or error, in order. The card processes them exactly as if they
    /// were sent one by one — the host answers a connection strictly in order — but the loopback
    /// round trip is paid once per window instead of once per APDU. For scripts whose commands
    /// do not depend on earlier responses (conformance replays, benchmarks). `window` is clamped
    /// to 1..=64, which keeps the bytes in flight far below the socket buffers (no deadlock).
    ///
    /// # Errors
    /// A transport or protocol error breaks the connection and ends the whole call; per-APDU
    /// outcomes such as [`CardError::PowerLost`] are returned in the list.
    pub fn transmit_pipelined(
        &mut self,
        apdus: &[Vec<u8>],
        window: usize,
    ) -> Result<Vec<Result<Vec<u8>, CardError>>, CardError> {
        if self.broken {
            return Err(broken_connection());
        }
        let window = window.clamp(1, 64);
        let mut out = Vec::with_capacity(apdus.len());
        let mut sent = 0;
        while out.len() < apdus.len() {
            // Refill when half the window has been answered, in one write.
            if sent - out.len() <= window / 2 {
                while sent < apdus.len() && sent - out.len() < window {
                    if let Err(e) = self.conn.queue(Op::Transmit, self.index, &apdus[sent]) {
                        self.broken = true;
                        return Err(e);
                    }
                    sent += 1;
                }
                if let Err(e) = self.conn.flush() {
                    self.broken = true;
                    return Err(e);
                }
            }
            match self.conn.receive() {
                Err(
                    e @ (CardError::Transport(_)
                    | CardError::Jcardsim(JcardsimError::HostProtocol(_))),
                ) => {
                    self.broken = true;
                    return Err(e);
                }
                r => out.push(r),
            }
        }
        Ok(out)
    }

    fn request_empty(&mut self, op: Op, payload: &[u8]) -> Result<(), CardError> {
        let body = self.request(op, payload)?;
        if body.is_empty() {
            Ok(())
        } else {
            Err(HostProtocolError::PayloadLength {
                op: op.name(),
                expected: "0",
                got: body.len(),
            }
            .into())
        }
    }
}

impl Card for JcardsimCard {
    /// TRANSMIT. Side effects: the command's; an armed tear is consumed.
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        self.request(Op::Transmit, apdu)
    }

    /// RESET (warm reset; powers a powered-off card on).
    /// Pipelined through [`transmit_pipelined`](JcardsimCard::transmit_pipelined) with
    /// [`BATCH_WINDOW`] commands in flight; the first per-APDU error is returned (the card has
    /// processed the whole batch by then).
    fn transmit_batch(&mut self, apdus: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CardError> {
        self.transmit_pipelined(apdus, BATCH_WINDOW)?
            .into_iter()
            .collect()
    }

    fn reset(&mut self) -> Result<Atr, CardError> {
        self.atr = Atr::new(self.request(Op::Reset, &[])?);
        Ok(self.atr.clone())
    }

    fn atr(&self) -> &Atr {
        &self.atr
    }
}

impl SimulatorControl for JcardsimCard {
    fn tear_at(&mut self, k: u32) -> Result<(), CardError> {
        self.request_empty(Op::TearAt, &k.to_be_bytes())
    }

    fn write_count(&mut self) -> Result<u32, CardError> {
        let body = self.request(Op::WriteCount, &[])?;
        let bytes: [u8; 4] =
            body.as_slice()
                .try_into()
                .map_err(|_| HostProtocolError::PayloadLength {
                    op: Op::WriteCount.name(),
                    expected: "4",
                    got: body.len(),
                })?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn power_off(&mut self) -> Result<(), CardError> {
        self.request_empty(Op::PowerOff, &[])
    }

    fn power_on(&mut self) -> Result<Atr, CardError> {
        self.atr = Atr::new(self.request(Op::PowerOn, &[])?);
        Ok(self.atr.clone())
    }

    /// FACTORY_RESET: the host rebuilds the card with every applet it has had installed.
    fn factory_reset(&mut self) -> Result<Atr, CardError> {
        self.atr = Atr::new(self.request(Op::FactoryReset, &[])?);
        Ok(self.atr.clone())
    }
}

/// The error of every request on a connection an earlier transport error left out of step.
fn broken_connection() -> CardError {
    CardError::Transport(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "connection to the card host was broken by an earlier error",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_args() {
        let card = CardSpec::new([
            AppletSpec::new([0xF0, 0x01], "a.B"),
            AppletSpec::new([0xF0, 0x02], "a.C$D").params([0x01, 0xAB]),
        ]);
        assert_eq!(
            card.to_arg().unwrap(),
            "aid=F001,class=a.B;aid=F002,class=a.C$D,params=01AB"
        );
        for bad in ["", "a,b", "a;b", "a=b", "a b"] {
            assert!(matches!(
                AppletSpec::new([1], bad).to_arg(),
                Err(CardError::Jcardsim(JcardsimError::InvalidApplet { .. }))
            ));
        }
    }

    #[test]
    fn install_payload() {
        let p = AppletSpec::new([0xF0, 0x01], "x.Y")
            .params([9])
            .install_payload()
            .unwrap();
        assert_eq!(p, [2, 0xF0, 0x01, 0, 3, b'x', b'.', b'Y', 9]);
    }

    #[test]
    fn explicit_jar_that_is_missing() {
        let config = CardHostConfig {
            jar: Some(PathBuf::from("/nonexistent/simkit-card-host.jar")),
            ..CardHostConfig::default()
        };
        let e = CardHostProcess::spawn(config).unwrap_err();
        assert!(
            matches!(e, CardError::Jcardsim(JcardsimError::JarNotFound { .. })),
            "{e}"
        );
        assert!(e.to_string().contains(JAR_BUILD_COMMAND));
    }
}
