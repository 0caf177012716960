//! The PC/SC backend: cards in readers of the platform's PC/SC service (pcsc-lite's `pcscd`
//! on Linux), through the `pcsc` crate.
//!
//! - [`list_readers`] lists the readers with card presence and ATR (`simkit readers`);
//! - [`PcscCard::connect`] connects to the card in one reader, chosen by [`ReaderSelector`]
//!   (exact name, unique case-insensitive substring, or index in the reader list), shared or
//!   exclusive ([`ShareMode`]);
//! - [`PcscCard`] implements [`Card`]: raw `SCardTransmit` (no GET RESPONSE, no 6Cxx retry:
//!   [`Channel`](crate::Channel) does that for every backend, which is also the T=0 path),
//!   [`Card::reset`] as `SCardReconnect(RESET)`, transactions as
//!   `SCardBeginTransaction`/`SCardEndTransaction` with the disposition asked for;
//! - it implements [`SimulatorControl`] with the simkit card host's reader pseudo-APDUs
//!   (`FF E1..E4`, `applet-spec/simulator.md`). A real reader or card answers them `6E00` or
//!   `6D00`, which becomes [`PcscError::NotSimulator`]; simkit never sends them otherwise.
//!
//! pcsc-rust ties a transaction to a borrow of its card handle (`Transaction<'tx>`), which
//! cannot be kept between our [`Card::begin_transaction`] and [`Card::end_transaction`] calls.
//! So while a transaction is open the handle moves to a worker thread, which keeps the
//! pcsc-rust guard on its stack and serves our calls as messages until the transaction ends,
//! then hands the handle back. Outside transactions calls go straight to the handle (no thread
//! hop on the common path).
//!
//! The service's socket: libpcsclite clients honour `PCSCLITE_CSOCK_NAME`;
//! `tools/pcsc-sim.sh` uses it to run a private pcscd with a simulated card.

use std::fmt;
use std::str::FromStr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use pcsc::{Context, Protocols, Scope};
use simkit_core::status::Sw;

pub(crate) mod error;

pub use error::PcscError;

use crate::error::CardError;
use crate::transport::{Atr, Card, Disposition, SimulatorControl};

/// The socket a libpcsclite client uses.
fn socket_name() -> String {
    std::env::var("PCSCLITE_CSOCK_NAME").unwrap_or_else(|_| "/run/pcscd/pcscd.comm".to_owned())
}

/// Maps a pcsc-lite error of `op` on `reader` to a [`CardError`].
fn map_err(op: &'static str, reader: &str, e: pcsc::Error) -> CardError {
    let reader = reader.to_owned();
    CardError::Pcsc(match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => PcscError::NoService {
            socket: socket_name(),
        },
        pcsc::Error::NoReadersAvailable => PcscError::NoReaders,
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => PcscError::NoCard { reader },
        pcsc::Error::SharingViolation => PcscError::SharingViolation { reader },
        source => PcscError::Call { op, reader, source },
    })
}

/// How a connection shares the card with other applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShareMode {
    /// Others may connect too (`SCARD_SHARE_SHARED`); use transactions for exclusive stretches.
    #[default]
    Shared,
    /// Nobody else may connect while we are (`SCARD_SHARE_EXCLUSIVE`).
    Exclusive,
}

impl ShareMode {
    fn raw(self) -> pcsc::ShareMode {
        match self {
            ShareMode::Shared => pcsc::ShareMode::Shared,
            ShareMode::Exclusive => pcsc::ShareMode::Exclusive,
        }
    }
}

impl fmt::Display for ShareMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShareMode::Shared => "shared",
            ShareMode::Exclusive => "exclusive",
        })
    }
}

/// Which reader: the text after `pcsc:` in a card URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReaderSelector {
    /// Position in the service's reader list (`pcsc:0`), as `simkit readers` numbers them.
    Index(usize),
    /// An exact reader name, else a substring (case-insensitive) matching exactly one reader.
    Name(String),
}

impl FromStr for ReaderSelector {
    type Err = std::convert::Infallible;

    /// All digits: an index; anything else: a name.
    fn from_str(s: &str) -> Result<ReaderSelector, Self::Err> {
        Ok(match s.parse::<usize>() {
            Ok(i) if s.bytes().all(|b| b.is_ascii_digit()) => ReaderSelector::Index(i),
            _ => ReaderSelector::Name(s.to_owned()),
        })
    }
}

impl fmt::Display for ReaderSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReaderSelector::Index(i) => write!(f, "{i}"),
            ReaderSelector::Name(n) => f.write_str(n),
        }
    }
}

impl ReaderSelector {
    /// Picks the reader among `readers`.
    ///
    /// # Errors
    /// [`PcscError::ReaderNotFound`] (listing `readers`), [`PcscError::AmbiguousReader`],
    /// [`PcscError::NoReaders`].
    pub fn choose<'a>(&self, readers: &'a [String]) -> Result<&'a str, PcscError> {
        if readers.is_empty() {
            return Err(PcscError::NoReaders);
        }
        let not_found = |wanted: String| PcscError::ReaderNotFound {
            wanted,
            available: readers.to_vec(),
        };
        match self {
            ReaderSelector::Index(i) => readers
                .get(*i)
                .map(String::as_str)
                .ok_or_else(|| not_found(format!("index {i}"))),
            ReaderSelector::Name(name) => {
                if let Some(exact) = readers.iter().find(|r| *r == name) {
                    return Ok(exact);
                }
                let lower = name.to_lowercase();
                let matches: Vec<&String> = readers
                    .iter()
                    .filter(|r| r.to_lowercase().contains(&lower))
                    .collect();
                match matches.as_slice() {
                    [one] => Ok(one.as_str()),
                    [] => Err(not_found(format!("{name:?}"))),
                    _ => Err(PcscError::AmbiguousReader {
                        wanted: name.clone(),
                        matches: matches.into_iter().cloned().collect(),
                    }),
                }
            }
        }
    }
}

/// One reader as [`list_readers`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// Position in the list (what `pcsc:INDEX` means).
    pub index: usize,
    /// The reader's name.
    pub name: String,
    /// Whether a card is in it.
    pub card_present: bool,
    /// The card's ATR, when present.
    pub atr: Option<Atr>,
}

fn establish() -> Result<Context, CardError> {
    Context::establish(Scope::User).map_err(|e| map_err("SCardEstablishContext", "", e))
}

fn reader_names(ctx: &Context) -> Result<Vec<String>, CardError> {
    match ctx.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(map_err("SCardListReaders", "", e)),
    }
}

/// Every reader of the PC/SC service, in the service's order, with card presence and ATR.
/// No side effect on the cards.
///
/// # Errors
/// [`PcscError::NoService`] when pcscd is not running; other PC/SC failures.
pub fn list_readers() -> Result<Vec<ReaderInfo>, CardError> {
    let ctx = establish()?;
    let names = reader_names(&ctx)?;
    let mut states = Vec::with_capacity(names.len());
    for name in &names {
        let c = std::ffi::CString::new(name.as_str()).map_err(|_| {
            CardError::Pcsc(PcscError::Call {
                op: "SCardListReaders",
                reader: name.clone(),
                source: pcsc::Error::InvalidValue,
            })
        })?;
        states.push(pcsc::ReaderState::new(c, pcsc::State::UNAWARE));
    }
    if !states.is_empty() {
        ctx.get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| map_err("SCardGetStatusChange", "", e))?;
    }
    Ok(names
        .into_iter()
        .zip(states)
        .enumerate()
        .map(|(index, (name, st))| {
            let present = st.event_state().contains(pcsc::State::PRESENT);
            ReaderInfo {
                index,
                name,
                card_present: present,
                atr: present.then(|| Atr::new(st.atr())),
            }
        })
        .collect())
}

/// The pseudo-APDUs of `applet-spec/simulator.md`.
mod pseudo {
    pub(super) const TEAR_AT: u8 = 0xE1;
    pub(super) const SIM_STATUS: u8 = 0xE2;
    pub(super) const FACTORY_RESET: u8 = 0xE3;
    pub(super) const POWER_OFF: u8 = 0xE4;
    /// SIM_STATUS flag: the last command was torn.
    pub(super) const FLAG_TORN: u8 = 0x01;
    /// SIM_STATUS flag: the last command met a powered-off card.
    pub(super) const FLAG_POWERED_OFF: u8 = 0x02;
    /// What the card host answers a torn command or one sent to a powered-off card.
    pub(super) const NO_ANSWER: [u8; 2] = [0x6F, 0x00];
}

/// A call on the card handle (sent to the worker thread inside a transaction).
enum Request {
    Transmit(Vec<u8>),
    /// `SCardReconnect` with this initialisation; answers the ATR.
    Reconnect(pcsc::Disposition),
    Begin,
    /// `SCardEndTransaction`; answers the ATR (changed after a reset).
    End(pcsc::Disposition),
}

type Reply = Result<Vec<u8>, (&'static str, pcsc::Error)>;

/// The card in a PC/SC reader.
///
/// Dropping it disconnects (leaving the card as it is, `SCARD_LEAVE_CARD`).
pub struct PcscCard {
    reader: String,
    share: ShareMode,
    atr: Atr,
    holder: Holder,
    /// Receive buffer for direct calls.
    buf: Vec<u8>,
    /// Set by [`SimulatorControl::power_off`]: commands fail until power on or reset.
    powered_off: bool,
    /// A tear is armed: the next command's `6F00` may be a tear (asked with SIM_STATUS).
    tear_armed: bool,
}

/// Where the card handle is.
enum Holder {
    /// No transaction open: here.
    Direct(pcsc::Card),
    /// A transaction is open: on the worker thread, which returns the handle when it ends.
    InTransaction {
        requests: Sender<Request>,
        replies: Receiver<Reply>,
        worker: JoinHandle<pcsc::Card>,
    },
    /// Lost with a worker thread that panicked.
    Gone,
}

impl fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcscCard")
            .field("reader", &self.reader)
            .field("share", &self.share)
            .field("atr", &self.atr)
            .finish_non_exhaustive()
    }
}

impl PcscCard {
    /// Connects to the card in the reader `selector` picks, with protocol T=0 or T=1.
    ///
    /// # Errors
    /// [`PcscError::NoService`], [`PcscError::NoReaders`], [`PcscError::ReaderNotFound`]
    /// (listing the readers there are), [`PcscError::AmbiguousReader`], [`PcscError::NoCard`],
    /// [`PcscError::SharingViolation`], other PC/SC failures.
    pub fn connect(selector: &ReaderSelector, share: ShareMode) -> Result<PcscCard, CardError> {
        let ctx = establish()?;
        let names = reader_names(&ctx)?;
        let reader = selector.choose(&names)?.to_owned();
        let cname = std::ffi::CString::new(reader.as_str())
            .map_err(|_| map_err("SCardConnect", &reader, pcsc::Error::InvalidValue))?;
        let card = ctx
            .connect(&cname, share.raw(), Protocols::T0 | Protocols::T1)
            .map_err(|e| map_err("SCardConnect", &reader, e))?;
        let atr = card
            .status2_owned()
            .map_err(|e| map_err("SCardStatus", &reader, e))?
            .atr()
            .to_vec();
        Ok(PcscCard {
            reader,
            share,
            atr: Atr::new(atr),
            holder: Holder::Direct(card),
            buf: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
            powered_off: false,
            tear_armed: false,
        })
    }

    /// The reader's full name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The share mode of the connection.
    pub fn share_mode(&self) -> ShareMode {
        self.share
    }

    fn call(&mut self, request: Request) -> Result<Vec<u8>, CardError> {
        let share = self.share.raw();
        let reply = match (&mut self.holder, request) {
            (Holder::Direct(_), Request::Begin) => self.begin(),
            (Holder::Direct(card), request) => serve_one(card, share, &mut self.buf, request),
            (Holder::InTransaction { .. }, Request::End(d)) => self.end(d),
            (
                Holder::InTransaction {
                    requests, replies, ..
                },
                request,
            ) => match requests
                .send(request)
                .ok()
                .and_then(|()| replies.recv().ok())
            {
                Some(reply) => reply,
                None => return Err(self.worker_gone()),
            },
            (Holder::Gone, _) => return Err(self.worker_gone()),
        };
        reply.map_err(|(op, e)| map_err(op, &self.reader, e))
    }

    fn worker_gone(&mut self) -> CardError {
        self.holder = Holder::Gone;
        CardError::Pcsc(PcscError::WorkerGone {
            reader: self.reader.clone(),
        })
    }

    /// Moves the handle to a worker thread that begins a transaction and serves it.
    fn begin(&mut self) -> Reply {
        let Holder::Direct(card) = std::mem::replace(&mut self.holder, Holder::Gone) else {
            return Err(("SCardBeginTransaction", pcsc::Error::InvalidHandle));
        };
        let (req_tx, req_rx) = channel();
        let (rep_tx, rep_rx) = channel();
        let share = self.share.raw();
        let worker = std::thread::Builder::new()
            .name("simkit-pcsc-transaction".to_owned())
            .spawn(move || transaction_worker(card, share, &req_rx, &rep_tx));
        let Ok(worker) = worker else {
            // Spawning failed: the closure, and with it the handle, is gone.
            return Err(("SCardBeginTransaction", pcsc::Error::NoMemory));
        };
        match rep_rx.recv() {
            Ok(Ok(v)) => {
                self.holder = Holder::InTransaction {
                    requests: req_tx,
                    replies: rep_rx,
                    worker,
                };
                Ok(v)
            }
            Ok(Err(e)) => {
                // Not begun: the worker returns the handle at once.
                if let Ok(card) = worker.join() {
                    self.holder = Holder::Direct(card);
                }
                Err(e)
            }
            Err(_) => Err(("SCardBeginTransaction", pcsc::Error::InternalError)),
        }
    }

    /// Ends the transaction on the worker and takes the handle back.
    fn end(&mut self, d: pcsc::Disposition) -> Reply {
        let Holder::InTransaction {
            requests,
            replies,
            worker,
        } = std::mem::replace(&mut self.holder, Holder::Gone)
        else {
            return Err(("SCardEndTransaction", pcsc::Error::NotTransacted));
        };
        let reply = requests
            .send(Request::End(d))
            .ok()
            .and_then(|()| replies.recv().ok());
        drop(requests);
        if let Ok(card) = worker.join() {
            self.holder = Holder::Direct(card);
        }
        reply.unwrap_or(Err(("SCardEndTransaction", pcsc::Error::InternalError)))
    }

    /// Sends a simulator pseudo-APDU and returns its data; `6E00`/`6D00` mean real hardware.
    fn pseudo(
        &mut self,
        name: &'static str,
        ins: u8,
        body: &[u8],
        le: bool,
    ) -> Result<Vec<u8>, CardError> {
        let mut apdu = vec![0xFF, ins, 0x00, 0x00];
        if !body.is_empty() {
            // Bodies are at most 4 bytes (TEAR_AT).
            apdu.push(u8::try_from(body.len()).unwrap_or(u8::MAX));
            apdu.extend_from_slice(body);
        }
        if le {
            apdu.push(0x00);
        }
        let mut resp = self.call(Request::Transmit(apdu))?;
        let sw = Sw::from_u16(trailer(&resp));
        match sw.to_u16() {
            0x9000 => {
                resp.truncate(resp.len().saturating_sub(2));
                Ok(resp)
            }
            0x6E00 | 0x6D00 => Err(CardError::Pcsc(PcscError::NotSimulator {
                reader: self.reader.clone(),
                command: name,
                sw,
            })),
            _ => Err(CardError::Status { sw, command: name }),
        }
    }

    /// SIM_STATUS: (write count, flags).
    fn sim_status(&mut self) -> Result<(u32, u8), CardError> {
        let data = self.pseudo("SIM_STATUS", pseudo::SIM_STATUS, &[], true)?;
        match data.as_slice() {
            [a, b, c, d, flags] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), *flags)),
            _ => Err(CardError::UnexpectedResponse {
                command: "SIM_STATUS",
                expected: "5",
                got: data.len(),
            }),
        }
    }
}

/// SW1 SW2 of a response (0 when shorter than 2 bytes).
fn trailer(resp: &[u8]) -> u16 {
    match resp {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        let card = match std::mem::replace(&mut self.holder, Holder::Gone) {
            Holder::Direct(card) => Some(card),
            Holder::InTransaction {
                requests, worker, ..
            } => {
                // Closing the request channel makes the worker end the transaction (LEAVE)
                // and return the handle.
                drop(requests);
                worker.join().ok()
            }
            Holder::Gone => None,
        };
        // Leave the card as it is for the next application (pcsc-rust's drop would reset it).
        if let Some(card) = card {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
}

/// The two things the worker does with a card, with or without a transaction open.
trait Handle {
    fn transmit_into<'b>(&self, apdu: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], pcsc::Error>;
    fn reconnect_as(
        &mut self,
        share: pcsc::ShareMode,
        d: pcsc::Disposition,
    ) -> Result<(), pcsc::Error>;
    fn atr_bytes(&self) -> Result<Vec<u8>, pcsc::Error>;
}

impl Handle for pcsc::Card {
    fn transmit_into<'b>(&self, apdu: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], pcsc::Error> {
        self.transmit(apdu, buf)
    }
    fn reconnect_as(
        &mut self,
        share: pcsc::ShareMode,
        d: pcsc::Disposition,
    ) -> Result<(), pcsc::Error> {
        self.reconnect(share, Protocols::T0 | Protocols::T1, d)
    }
    fn atr_bytes(&self) -> Result<Vec<u8>, pcsc::Error> {
        Ok(self.status2_owned()?.atr().to_vec())
    }
}

impl Handle for pcsc::Transaction<'_> {
    fn transmit_into<'b>(&self, apdu: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], pcsc::Error> {
        self.transmit(apdu, buf)
    }
    fn reconnect_as(
        &mut self,
        share: pcsc::ShareMode,
        d: pcsc::Disposition,
    ) -> Result<(), pcsc::Error> {
        self.reconnect(share, Protocols::T0 | Protocols::T1, d)
    }
    fn atr_bytes(&self) -> Result<Vec<u8>, pcsc::Error> {
        Ok(self.status2_owned()?.atr().to_vec())
    }
}

/// Serves one request that needs no transaction change.
fn serve_one(
    h: &mut dyn Handle,
    share: pcsc::ShareMode,
    buf: &mut [u8],
    request: Request,
) -> Reply {
    match request {
        Request::Transmit(apdu) => h
            .transmit_into(&apdu, buf)
            .map(<[u8]>::to_vec)
            .map_err(|e| ("SCardTransmit", e)),
        Request::Reconnect(d) => {
            h.reconnect_as(share, d)
                .map_err(|e| ("SCardReconnect", e))?;
            h.atr_bytes().map_err(|e| ("SCardStatus", e))
        }
        Request::Begin => Err(("SCardBeginTransaction", pcsc::Error::InvalidValue)),
        Request::End(_) => Err(("SCardEndTransaction", pcsc::Error::NotTransacted)),
    }
}

/// The transaction worker: begins a transaction on `card`, serves requests until `End` (or
/// until the request channel closes), then returns the handle.
fn transaction_worker(
    mut card: pcsc::Card,
    share: pcsc::ShareMode,
    requests: &Receiver<Request>,
    replies: &Sender<Reply>,
) -> pcsc::Card {
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let ended = match card.transaction() {
        Err(e) => {
            let _ = replies.send(Err(("SCardBeginTransaction", e)));
            None
        }
        Ok(tx) => {
            if replies.send(Ok(Vec::new())).is_ok() {
                in_transaction(tx, share, &mut buf, requests, replies)
            } else {
                None
            }
        }
    };
    if let Some((reply, d)) = ended {
        let reply = match (reply, d) {
            // pcsc-lite answers the next call on a handle whose card was reset
            // SCARD_W_RESET_CARD until it reconnects; we reset it ourselves, so acknowledge at
            // once.
            (Ok(_), pcsc::Disposition::ResetCard) => card
                .reconnect_as(share, pcsc::Disposition::LeaveCard)
                .map_err(|e| ("SCardReconnect", e))
                .map(|()| Vec::new()),
            (reply, _) => reply,
        };
        let _ = replies.send(reply);
    }
    card
}

/// Serves requests inside a transaction until `End`; returns `End`'s reply and disposition, or
/// `None` when the handle was dropped (the guard's drop then ends the transaction with LEAVE).
fn in_transaction(
    mut tx: pcsc::Transaction<'_>,
    share: pcsc::ShareMode,
    buf: &mut [u8],
    requests: &Receiver<Request>,
    replies: &Sender<Reply>,
) -> Option<(Reply, pcsc::Disposition)> {
    loop {
        let request = requests.recv().ok()?;
        match request {
            Request::End(d) => {
                let reply = match tx.end(d) {
                    Ok(()) => Ok(Vec::new()),
                    Err((_tx, e)) => Err(("SCardEndTransaction", e)),
                };
                return Some((reply, d));
            }
            other => {
                let reply = serve_one(&mut tx, share, buf, other);
                replies.send(reply).ok()?;
            }
        }
    }
}

impl Card for PcscCard {
    /// `SCardTransmit`, bytes as given and as received.
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.powered_off {
            return Err(CardError::PoweredOff);
        }
        let resp = self.call(Request::Transmit(apdu.to_vec()))?;
        if std::mem::take(&mut self.tear_armed) && resp == pseudo::NO_ANSWER {
            let (_, flags) = self.sim_status()?;
            if flags & pseudo::FLAG_TORN != 0 {
                return Err(CardError::PowerLost);
            }
            if flags & pseudo::FLAG_POWERED_OFF != 0 {
                return Err(CardError::PoweredOff);
            }
        }
        Ok(resp)
    }

    /// `SCardReconnect` with `SCARD_RESET_CARD` (a warm reset).
    fn reset(&mut self) -> Result<Atr, CardError> {
        let atr = self.call(Request::Reconnect(pcsc::Disposition::ResetCard))?;
        self.powered_off = false;
        self.atr = Atr::new(atr);
        Ok(self.atr.clone())
    }

    fn atr(&self) -> &Atr {
        &self.atr
    }

    /// `SCardBeginTransaction`: other applications wait until the transaction ends.
    fn begin_transaction(&mut self) -> Result<(), CardError> {
        self.call(Request::Begin).map(drop)
    }

    /// `SCardEndTransaction` with `SCARD_LEAVE_CARD` or `SCARD_RESET_CARD`.
    fn end_transaction(&mut self, disposition: Disposition) -> Result<(), CardError> {
        let d = match disposition {
            Disposition::Leave => pcsc::Disposition::LeaveCard,
            Disposition::Reset => pcsc::Disposition::ResetCard,
        };
        self.call(Request::End(d))?;
        if disposition == Disposition::Reset {
            self.powered_off = false;
        }
        Ok(())
    }
}

impl SimulatorControl for PcscCard {
    /// TEAR_AT pseudo-APDU (`FF E1`).
    fn tear_at(&mut self, k: u32) -> Result<(), CardError> {
        if k >= 1 << 31 {
            return Err(CardError::CardHost(format!(
                "tear point k = {k} is not below 2^31"
            )));
        }
        self.pseudo("TEAR_AT", pseudo::TEAR_AT, &k.to_be_bytes(), false)?;
        self.tear_armed = k > 0;
        Ok(())
    }

    /// SIM_STATUS pseudo-APDU (`FF E2`).
    fn write_count(&mut self) -> Result<u32, CardError> {
        Ok(self.sim_status()?.0)
    }

    /// POWER_OFF pseudo-APDU (`FF E4`).
    fn power_off(&mut self) -> Result<(), CardError> {
        self.pseudo("POWER_OFF", pseudo::POWER_OFF, &[], false)?;
        self.powered_off = true;
        Ok(())
    }

    /// `SCardReconnect` with `SCARD_UNPOWER_CARD`: pcscd powers the card down and up again
    /// (a cold reset), which vpcd passes on as power off, power on.
    fn power_on(&mut self) -> Result<Atr, CardError> {
        let atr = self.call(Request::Reconnect(pcsc::Disposition::UnpowerCard))?;
        self.powered_off = false;
        self.atr = Atr::new(atr);
        Ok(self.atr.clone())
    }

    /// FACTORY_RESET pseudo-APDU (`FF E3`).
    fn factory_reset(&mut self) -> Result<Atr, CardError> {
        let atr = self.pseudo("FACTORY_RESET", pseudo::FACTORY_RESET, &[], true)?;
        self.powered_off = false;
        self.tear_armed = false;
        self.atr = Atr::new(atr);
        Ok(self.atr.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec![
            "Virtual PCD 00 00".into(),
            "Virtual PCD 00 01".into(),
            "ACS ACR39U 01 00".into(),
        ]
    }

    #[test]
    fn selector_parses_index_or_name() {
        assert_eq!("0".parse(), Ok(ReaderSelector::Index(0)));
        assert_eq!("12".parse(), Ok(ReaderSelector::Index(12)));
        assert_eq!(
            "+1".parse(),
            Ok(ReaderSelector::Name("+1".into())),
            "only plain digits are an index"
        );
        assert_eq!(
            "Virtual PCD 00 00".parse(),
            Ok(ReaderSelector::Name("Virtual PCD 00 00".into()))
        );
        assert_eq!(ReaderSelector::Index(3).to_string(), "3");
    }

    #[test]
    fn selector_chooses() {
        let r = names();
        assert_eq!(
            ReaderSelector::Index(1).choose(&r).unwrap(),
            "Virtual PCD 00 01"
        );
        let exact = ReaderSelector::Name("Virtual PCD 00 00".into());
        assert_eq!(exact.choose(&r).unwrap(), "Virtual PCD 00 00");
        let sub = ReaderSelector::Name("acr39".into());
        assert_eq!(sub.choose(&r).unwrap(), "ACS ACR39U 01 00");
    }

    #[test]
    fn selector_errors_list_the_readers() {
        let r = names();
        let e = ReaderSelector::Name("Gemalto".into())
            .choose(&r)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no PC/SC reader matches \"Gemalto\"; readers: 0: \"Virtual PCD 00 00\", \
             1: \"Virtual PCD 00 01\", 2: \"ACS ACR39U 01 00\""
        );
        let e = ReaderSelector::Index(3).choose(&r).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no PC/SC reader matches index 3; readers: 0:"),
            "{e}"
        );
        let e = ReaderSelector::Name("virtual".into())
            .choose(&r)
            .unwrap_err();
        assert!(matches!(e, PcscError::AmbiguousReader { ref matches, .. } if matches.len() == 2));
        assert!(
            e.to_string().contains("give the full name or an index"),
            "{e}"
        );
        let e = ReaderSelector::Index(0).choose(&[]).unwrap_err();
        assert_eq!(e.to_string(), "no PC/SC reader is connected");
    }

    #[test]
    fn error_mapping() {
        let e = map_err("SCardConnect", "R", pcsc::Error::NoSmartcard);
        assert_eq!(e.to_string(), "no card in PC/SC reader \"R\"");
        let e = map_err("SCardConnect", "R", pcsc::Error::SharingViolation);
        assert!(
            e.to_string()
                .starts_with("PC/SC reader \"R\": sharing violation"),
            "{e}"
        );
        let e = map_err("SCardEstablishContext", "", pcsc::Error::NoService);
        assert!(
            e.to_string()
                .starts_with("PC/SC service not running: no pcscd answers on "),
            "{e}"
        );
        let e = map_err("SCardTransmit", "R", pcsc::Error::CommError);
        assert!(
            e.to_string().starts_with("PC/SC SCardTransmit on \"R\": "),
            "{e}"
        );
    }

    #[test]
    fn trailer_of_short_responses() {
        assert_eq!(trailer(&[0x90, 0x00]), 0x9000);
        assert_eq!(trailer(&[1, 0x6E, 0x00]), 0x6E00);
        assert_eq!(trailer(&[0x90]), 0);
    }
}
