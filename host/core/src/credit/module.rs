//! The module side of the credit protocol as a pure state machine (spec §2, §4, §5, §7).
//!
//! [`Module`] mirrors the Java Card applet command for command: the same checks in the same
//! order, the same status words, and the same side effects. Each method is one APDU and behaves
//! like one applet transaction: when a check registers a fraud event (spec §7) the counter, the
//! log entry and possibly the block are kept *even though the method returns an error* — exactly
//! what the applet commits before it throws the status word. Everything else that fails changes
//! nothing.
//!
//! What this module must not do: lifecycle-independent APDU dispatch (CLA/INS/P1/P2 checks are
//! the applet's `process()` and [`super::commands`]), I/O, or any crypto of its own.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::crypto::mac::ct_eq;
use crate::crypto::{CryptoError, Profile, SecretKey};
use crate::status::Sw;

use super::commands::{PersonalisationData, PersonalisationError};
use super::message::{
    CompletionAck, GrantStatus, LimitUpdate, MessageType, OFF_ALG, OFF_MODULE_ID, OFF_TYPE,
    OFF_VERSION, ProvisionalAck, ReloadGrant, ReloadRequest, VERSION, verify_raw,
};
use super::{
    FraudKind, Limits, LimitsError, ModuleId, Tag, array_at, be_i32, be_u16, be_u32,
    fits_under_upper, hex_array, hex_array_opt, hex_vec,
};

/// Number of entries the fraud log keeps (spec §2).
pub const FRAUD_LOG_LEN: usize = 8;
/// Largest server address (spec §2).
pub const SERVER_ADDRESS_MAX: usize = 64;

/// Lifecycle state (spec §2): personalisation → operational → blocked, one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// `01`: personalisation commands only.
    Personalisation,
    /// `02`: in service.
    Operational,
    /// `03`: only reads answer.
    Blocked,
}

impl Lifecycle {
    /// The lifecycle byte in GET STATUS.
    pub const fn code(self) -> u8 {
        match self {
            Lifecycle::Personalisation => 0x01,
            Lifecycle::Operational => 0x02,
            Lifecycle::Blocked => 0x03,
        }
    }

    /// The lifecycle with byte `code`, if there is one.
    pub const fn from_code(code: u8) -> Option<Lifecycle> {
        match code {
            0x01 => Some(Lifecycle::Personalisation),
            0x02 => Some(Lifecycle::Operational),
            0x03 => Some(Lifecycle::Blocked),
            _ => None,
        }
    }
}

/// One fraud-log entry (spec §4.10): 9 bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FraudEntry {
    /// What was registered.
    pub kind: FraudKind,
    /// The module's N at the time.
    pub module_n: u32,
    /// The number the offending message carried: S′ for grants and provisional acks, the
    /// sequence for limit updates.
    pub carried: u32,
}

impl FraudEntry {
    /// Length on the wire.
    pub const LEN: usize = 9;

    /// `kind ‖ N ‖ carried`.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.kind.code();
        b[1..5].copy_from_slice(&self.module_n.to_be_bytes());
        b[5..9].copy_from_slice(&self.carried.to_be_bytes());
        b
    }

    /// Decodes a GET FRAUD LOG response: count, then that many entries, newest first.
    pub fn parse_log(bytes: &[u8]) -> Result<Vec<FraudEntry>, StatusError> {
        let (&count, rest) = bytes.split_first().ok_or(StatusError::WrongLength {
            expected: 1,
            got: 0,
        })?;
        let count = usize::from(count);
        if count > FRAUD_LOG_LEN || rest.len() != count * Self::LEN {
            return Err(StatusError::WrongLength {
                expected: 1 + count.min(FRAUD_LOG_LEN) * Self::LEN,
                got: bytes.len(),
            });
        }
        rest.chunks_exact(Self::LEN)
            .map(|c| {
                let kind = c.first().copied().unwrap_or(0);
                Ok(FraudEntry {
                    kind: FraudKind::from_code(kind).ok_or(StatusError::BadFraudKind(kind))?,
                    module_n: be_u32(c, 1),
                    carried: be_u32(c, 5),
                })
            })
            .collect()
    }
}

/// The last completion ack sent and the tag of the grant it answers (spec §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCompletion {
    /// The 40-byte completion ack.
    #[serde(with = "hex_array")]
    pub ack: [u8; CompletionAck::LEN],
    /// The tag of the grant it answers.
    #[serde(with = "hex_array")]
    pub grant_tag: Tag,
}

/// Every persistent field of the applet (spec §2) except the keys, which [`Module`] holds apart
/// so that this struct can be serialised into vectors and debug output without leaking them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleState {
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Module id (`None` until personalised).
    #[serde(with = "hex_array_opt")]
    pub module_id: Option<ModuleId>,
    /// Crypto profile (`None` until personalised).
    pub profile: Option<Profile>,
    /// Balance B.
    pub balance: i32,
    /// Module transaction number N.
    pub n: u32,
    /// m, M, U, L (`None` until personalised).
    pub limits: Option<Limits>,
    /// Sequence of the last applied limit update.
    pub limit_sequence: u32,
    /// The pending request, byte for byte.
    #[serde(with = "hex_array_opt")]
    pub pending: Option<[u8; ReloadRequest::LEN]>,
    /// A provisional ack for the pending request was applied.
    pub provisional: bool,
    /// The last completion ack and the grant tag it answers.
    pub last_completion: Option<LastCompletion>,
    /// Bad-tag counter (saturating).
    pub bad_tags: u16,
    /// Window-event counter (saturating): window, limit replay and grant-beyond-limits events.
    pub window_events: u16,
    /// Fraud threshold (`None` until personalised).
    pub threshold: Option<u16>,
    /// The fraud log, newest first, at most [`FRAUD_LOG_LEN`] entries.
    pub fraud_log: Vec<FraudEntry>,
    /// Server address (opaque, 0..64 bytes).
    #[serde(with = "hex_vec")]
    pub server_address: Vec<u8>,
}

impl Default for ModuleState {
    fn default() -> Self {
        ModuleState {
            lifecycle: Lifecycle::Personalisation,
            module_id: None,
            profile: None,
            balance: 0,
            n: 0,
            limits: None,
            limit_sequence: 0,
            pending: None,
            provisional: false,
            last_completion: None,
            bad_tags: 0,
            window_events: 0,
            threshold: None,
            fraud_log: Vec::new(),
            server_address: Vec::new(),
        }
    }
}

impl ModuleState {
    /// R of the pending request, if any.
    pub fn pending_r(&self) -> Option<u32> {
        self.pending.map(|p| be_u32(&p, ReloadRequest::OFF_R))
    }

    /// Tag of the pending request, if any.
    pub fn pending_tag(&self) -> Option<Tag> {
        self.pending.map(|p| array_at(&p, ReloadRequest::OFF_TAG))
    }
}

/// Everything a module command can answer besides success, one variant per status word meaning
/// (spec §4, status-words.md). [`ModuleError::sw`] gives the status word.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// `6700`: the data has the wrong length for the command.
    #[error("wrong length: expected {expected} bytes, got {got}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// `6A80`: a debit amount outside `1..=2^31−1`.
    #[error("debit amount {0} is outside 1..=2^31-1")]
    InvalidAmount(u32),
    /// `6A80`: personalisation data that is malformed.
    #[error("personalisation data: {0}")]
    Personalisation(#[from] PersonalisationError),
    /// `6A80`: a key whose length does not fit the profile.
    #[error("key for tag {tag:02X} must be {expected} bytes for {profile}, got {got}")]
    KeyLength {
        /// `83` or `84`.
        tag: u8,
        /// The profile in force.
        profile: Profile,
        /// Its key length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// `6985`: the command is not allowed in this lifecycle state, or a prerequisite (profile
    /// before keys, limits before the balance) is missing.
    #[error("conditions of use not satisfied: {0}")]
    ConditionsNotSatisfied(&'static str),
    /// `6A88`: no completion ack exists yet.
    #[error("no completion ack has been sent yet")]
    NoCompletion,
    /// `6982`: a tag that does not verify (registered).
    #[error("tag does not verify (registered as fraud)")]
    BadTag,
    /// `9C01`: R outside `[m, M]` or `B + R > U`.
    #[error("reload amount {0} is outside the allowed range")]
    ReloadAmountOutOfRange(u32),
    /// `9C02`: a request for another amount is pending.
    #[error("a request for {pending} is pending; {requested} refused")]
    DifferentReloadPending {
        /// R of the pending request.
        pending: u32,
        /// R asked for now.
        requested: u32,
    },
    /// `9C03`: no request is pending (registered).
    #[error("no reload request is pending (registered)")]
    NoReloadPending,
    /// `9C04`: this grant was already applied; nothing changes.
    #[error("grant already applied")]
    GrantAlreadyApplied,
    /// `9C05`: S′ ≠ N + 1 (registered).
    #[error("transaction number {carried} is outside the window (N = {n}) (registered)")]
    TransactionOutOfWindow {
        /// S′ carried.
        carried: u32,
        /// The module's N.
        n: u32,
    },
    /// `9C06`: G > R, B + G > U, or G = 0 (registered).
    #[error("grant of {0} exceeds the limits (registered)")]
    GrantExceedsLimits(u32),
    /// `9C07`: the debit would go below the floor.
    #[error("insufficient balance for a debit of {0}")]
    InsufficientBalance(u32),
    /// `9C08`: the module is blocked.
    #[error("module blocked")]
    ModuleBlocked,
    /// `9C09`: limit update sequence not above the stored one (registered).
    #[error("limit update sequence {sequence} is not above {stored} (registered)")]
    LimitUpdateReplayed {
        /// Sequence carried.
        sequence: u32,
        /// Stored sequence.
        stored: u32,
    },
    /// `9C0A`: the message's header, request tag or status is not the expected one.
    #[error("message mismatch: {0}")]
    MessageMismatch(&'static str),
    /// `9C0B`: invalid limits, or a balance outside `[−L, U]` at personalisation.
    #[error("invalid limits: {0}")]
    InvalidLimits(#[source] InvalidLimitsCause),
    /// `9C0C`: N = 2^32−1; the module is now blocked.
    #[error("transaction numbers exhausted; module blocked")]
    CounterExhausted,
    /// `9C0D`: LOCK before everything needed is personalised.
    #[error("personalisation incomplete: {0} missing")]
    PersonalisationIncomplete(&'static str),
    /// `6F00`: the crypto module refused a key (cannot happen after a successful LOCK).
    #[error("crypto failure: {0}")]
    Crypto(#[from] CryptoError),
}

/// Why [`ModuleError::InvalidLimits`] was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLimitsCause {
    /// The limits themselves are invalid (spec §3.6).
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// The balance is outside `[−L, U]`.
    #[error("balance {balance} is outside [-{credit_line}, {upper}]")]
    BalanceOutside {
        /// B.
        balance: i32,
        /// L.
        credit_line: i32,
        /// U.
        upper: i32,
    },
}

impl ModuleError {
    /// The status word the applet answers for this error.
    pub const fn sw(&self) -> Sw {
        match self {
            ModuleError::WrongLength { .. } => Sw::WrongLength,
            ModuleError::InvalidAmount(_)
            | ModuleError::Personalisation(_)
            | ModuleError::KeyLength { .. } => Sw::IncorrectData,
            ModuleError::ConditionsNotSatisfied(_) => Sw::ConditionsOfUseNotSatisfied,
            ModuleError::NoCompletion => Sw::ReferencedDataNotFound,
            ModuleError::BadTag => Sw::SecurityStatusNotSatisfied,
            ModuleError::ReloadAmountOutOfRange(_) => Sw::ReloadAmountOutOfRange,
            ModuleError::DifferentReloadPending { .. } => Sw::DifferentReloadPending,
            ModuleError::NoReloadPending => Sw::NoReloadPending,
            ModuleError::GrantAlreadyApplied => Sw::GrantAlreadyApplied,
            ModuleError::TransactionOutOfWindow { .. } => Sw::TransactionOutOfWindow,
            ModuleError::GrantExceedsLimits(_) => Sw::GrantExceedsLimits,
            ModuleError::InsufficientBalance(_) => Sw::InsufficientBalance,
            ModuleError::ModuleBlocked => Sw::ModuleBlocked,
            ModuleError::LimitUpdateReplayed { .. } => Sw::LimitUpdateReplayed,
            ModuleError::MessageMismatch(_) => Sw::MessageMismatch,
            ModuleError::InvalidLimits(_) => Sw::InvalidLimits,
            ModuleError::CounterExhausted => Sw::CounterExhausted,
            ModuleError::PersonalisationIncomplete(_) => Sw::PersonalisationIncomplete,
            ModuleError::Crypto(_) => Sw::NoPreciseDiagnosis,
        }
    }
}

/// The GET STATUS response (spec §4.2), 49 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Profile (`None` — byte `00` — before personalised).
    pub profile: Option<Profile>,
    /// Module id (zeros before personalised).
    #[serde(with = "hex_array")]
    pub module_id: ModuleId,
    /// Balance.
    pub balance: i32,
    /// N.
    pub n: u32,
    /// m, M, U, L (zeros before personalised).
    pub limits: Limits,
    /// Limit sequence.
    pub limit_sequence: u32,
    /// Flag bit 0: a request is pending.
    pub pending: bool,
    /// Flag bit 1: the credit line is open.
    pub provisional: bool,
    /// Flag bit 2: a last completion ack is available.
    pub last_completion: bool,
    /// R of the pending request (0 when none).
    pub pending_r: u32,
    /// Bad-tag count.
    pub bad_tags: u16,
    /// Window-event count.
    pub window_events: u16,
    /// Fraud threshold (0 before personalised).
    pub threshold: u16,
}

/// Why bytes are not a GET STATUS (or GET FRAUD LOG) response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// Wrong length.
    #[error("response must be {expected} bytes, got {got}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// Byte 0 is not a lifecycle.
    #[error("byte 0 (lifecycle) is {0:02X}, expected 01..03")]
    BadLifecycle(u8),
    /// Byte 1 is not `00` or a profile id.
    #[error("byte 1 (profile id) is {0:02X}, expected 00..03")]
    BadProfile(u8),
    /// Byte 38 has bits set beyond the three defined flags.
    #[error("byte 38 (flags) is {0:02X}; only bits 0..2 are defined")]
    ReservedFlags(u8),
    /// A fraud-log entry with an unknown kind.
    #[error("fraud-log kind {0:02X} is not 01..04")]
    BadFraudKind(u8),
}

impl Status {
    /// Length of the response.
    pub const LEN: usize = 49;
    const FLAG_PENDING: u8 = 0x01;
    const FLAG_PROVISIONAL: u8 = 0x02;
    const FLAG_COMPLETION: u8 = 0x04;

    /// The 49 response bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.lifecycle.code();
        b[1] = self.profile.map_or(0, Profile::id);
        b[2..10].copy_from_slice(&self.module_id);
        b[10..14].copy_from_slice(&self.balance.to_be_bytes());
        b[14..18].copy_from_slice(&self.n.to_be_bytes());
        b[18..34].copy_from_slice(&self.limits.to_bytes());
        b[34..38].copy_from_slice(&self.limit_sequence.to_be_bytes());
        b[38] = (if self.pending { Self::FLAG_PENDING } else { 0 })
            | (if self.provisional {
                Self::FLAG_PROVISIONAL
            } else {
                0
            })
            | (if self.last_completion {
                Self::FLAG_COMPLETION
            } else {
                0
            });
        b[39..43].copy_from_slice(&self.pending_r.to_be_bytes());
        b[43..45].copy_from_slice(&self.bad_tags.to_be_bytes());
        b[45..47].copy_from_slice(&self.window_events.to_be_bytes());
        b[47..49].copy_from_slice(&self.threshold.to_be_bytes());
        b
    }

    /// Decodes a GET STATUS response; never panics.
    pub fn parse(b: &[u8]) -> Result<Self, StatusError> {
        if b.len() != Self::LEN {
            return Err(StatusError::WrongLength {
                expected: Self::LEN,
                got: b.len(),
            });
        }
        let byte = |i: usize| b.get(i).copied().unwrap_or(0);
        let lifecycle = Lifecycle::from_code(byte(0)).ok_or(StatusError::BadLifecycle(byte(0)))?;
        let profile = match byte(1) {
            0 => None,
            id => Some(Profile::from_id(id).ok_or(StatusError::BadProfile(id))?),
        };
        let flags = byte(38);
        if flags & !0x07 != 0 {
            return Err(StatusError::ReservedFlags(flags));
        }
        Ok(Status {
            lifecycle,
            profile,
            module_id: array_at(b, 2),
            balance: be_i32(b, 10),
            n: be_u32(b, 14),
            limits: Limits::from_bytes(&array_at(b, 18)),
            limit_sequence: be_u32(b, 34),
            pending: flags & Self::FLAG_PENDING != 0,
            provisional: flags & Self::FLAG_PROVISIONAL != 0,
            last_completion: flags & Self::FLAG_COMPLETION != 0,
            pending_r: be_u32(b, 39),
            bad_tags: be_u16(b, 43),
            window_events: be_u16(b, 45),
            threshold: be_u16(b, 47),
        })
    }

    /// The reload range to offer the user (spec §4.2), see [`super::allowed_range`].
    pub fn allowed_range(&self) -> Option<(u32, u32)> {
        super::allowed_range(self.balance, &self.limits)
    }
}

/// The module: its persistent state plus its two keys.
///
/// `Debug` shows the keys only as key check values (through [`SecretKey`]'s `Debug`).
#[derive(Clone, Debug, Default)]
pub struct Module {
    state: ModuleState,
    k_req: Option<SecretKey>,
    k_grant: Option<SecretKey>,
}

/// What the module needs to authenticate and build messages; only present once personalised.
struct Ctx<'a> {
    profile: Profile,
    module_id: ModuleId,
    k_req: &'a SecretKey,
    k_grant: &'a SecretKey,
    limits: Limits,
}

impl Module {
    /// A freshly installed applet: personalisation state, nothing set.
    pub fn new() -> Self {
        Module::default()
    }

    /// A module personalised with `data` (one PERSONALISE command) and locked: the shortest
    /// way to an operational module, through the same code paths as the applet.
    pub fn personalised(data: &PersonalisationData) -> Result<Self, ModuleError> {
        let mut m = Module::new();
        m.personalise(&data.to_tlv())?;
        m.lock()?;
        Ok(m)
    }

    /// Rebuilds a module from saved state and keys (e.g. to replay vectors).
    pub fn from_parts(
        state: ModuleState,
        k_req: Option<SecretKey>,
        k_grant: Option<SecretKey>,
    ) -> Self {
        Module {
            state,
            k_req,
            k_grant,
        }
    }

    /// The persistent state (keys excluded).
    pub fn state(&self) -> &ModuleState {
        &self.state
    }

    /// Mutable access to the state, for tests and vector generation that need to start from a
    /// particular state (e.g. N = 2^32−2). Not an applet command.
    pub fn state_mut(&mut self) -> &mut ModuleState {
        &mut self.state
    }

    fn ctx(&self) -> Result<Ctx<'_>, ModuleError> {
        let s = &self.state;
        let (Some(profile), Some(module_id), Some(k_req), Some(k_grant), Some(limits)) = (
            s.profile,
            s.module_id,
            self.k_req.as_ref(),
            self.k_grant.as_ref(),
            s.limits,
        ) else {
            // LOCK guarantees all of these; a state restored by hand might lack them.
            return Err(ModuleError::PersonalisationIncomplete(
                "identity, keys or limits",
            ));
        };
        Ok(Ctx {
            profile,
            module_id,
            k_req,
            k_grant,
            limits,
        })
    }

    /// The lifecycle gate of the operational-only commands: `6985` before personalisation is
    /// locked, `9C08` once blocked.
    pub fn require_operational(&self) -> Result<(), ModuleError> {
        match self.state.lifecycle {
            Lifecycle::Operational => Ok(()),
            Lifecycle::Personalisation => {
                Err(ModuleError::ConditionsNotSatisfied("module not locked yet"))
            }
            Lifecycle::Blocked => Err(ModuleError::ModuleBlocked),
        }
    }

    /// The lifecycle gate of PERSONALISE and LOCK: `6985` once operational, `9C08` once blocked.
    pub fn require_personalisation(&self) -> Result<(), ModuleError> {
        match self.state.lifecycle {
            Lifecycle::Personalisation => Ok(()),
            Lifecycle::Operational => {
                Err(ModuleError::ConditionsNotSatisfied("module already locked"))
            }
            Lifecycle::Blocked => Err(ModuleError::ModuleBlocked),
        }
    }

    /// Registers a fraud event (spec §7): counter (saturating), log entry, and the block when
    /// the counters reach the threshold — all one transaction on the card.
    fn register(&mut self, kind: FraudKind, carried: u32) {
        let s = &mut self.state;
        match kind {
            FraudKind::BadTag => s.bad_tags = s.bad_tags.saturating_add(1),
            FraudKind::Window | FraudKind::LimitReplay | FraudKind::GrantBeyondLimits => {
                s.window_events = s.window_events.saturating_add(1);
            }
        }
        s.fraud_log.insert(
            0,
            FraudEntry {
                kind,
                module_n: s.n,
                carried,
            },
        );
        s.fraud_log.truncate(FRAUD_LOG_LEN);
        let events = u32::from(s.bad_tags) + u32::from(s.window_events);
        // Threshold ≥ 1 is guaranteed by personalisation; an unset one blocks at once, which is
        // the safe reading of a state that should not exist.
        if events >= u32::from(s.threshold.unwrap_or(1)) {
            s.lifecycle = Lifecycle::Blocked;
        }
    }

    /// Step 1 of every server-message check: length (`6700`), then version, type, algorithm
    /// and module id (`9C0A`, not registered: nothing authenticated was received).
    fn check_header(&self, ctx: &Ctx<'_>, bytes: &[u8], t: MessageType) -> Result<(), ModuleError> {
        if bytes.len() != t.wire_len() {
            return Err(ModuleError::WrongLength {
                expected: t.wire_len(),
                got: bytes.len(),
            });
        }
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(0);
        if byte(OFF_VERSION) != VERSION
            || byte(OFF_TYPE) != t.code()
            || byte(OFF_ALG) != ctx.profile.id()
            || array_at::<8>(bytes, OFF_MODULE_ID) != ctx.module_id
        {
            return Err(ModuleError::MessageMismatch("header"));
        }
        Ok(())
    }

    /// GET STATUS (spec §4.2). Answers in every lifecycle state.
    pub fn status(&self) -> Status {
        let s = &self.state;
        Status {
            lifecycle: s.lifecycle,
            profile: s.profile,
            module_id: s.module_id.unwrap_or_default(),
            balance: s.balance,
            n: s.n,
            limits: s.limits.unwrap_or(Limits {
                min_reload: 0,
                max_reload: 0,
                upper: 0,
                credit_line: 0,
            }),
            limit_sequence: s.limit_sequence,
            pending: s.pending.is_some(),
            provisional: s.provisional,
            last_completion: s.last_completion.is_some(),
            pending_r: s.pending_r().unwrap_or(0),
            bad_tags: s.bad_tags,
            window_events: s.window_events,
            threshold: s.threshold.unwrap_or(0),
        }
    }

    /// GET SERVER ADDRESS (spec §4.3). Answers in every lifecycle state.
    pub fn server_address(&self) -> &[u8] {
        &self.state.server_address
    }

    /// INITIATE RELOAD (spec §4.4): the 31-byte request for `r` credits.
    pub fn initiate_reload(&mut self, r: u32) -> Result<[u8; ReloadRequest::LEN], ModuleError> {
        self.require_operational()?;
        // Step 1: a pending request is re-issued byte for byte, with no other check, so a lost
        // request can always be retried — even if the limits changed meanwhile.
        if let Some(pending) = self.state.pending {
            let pending_r = be_u32(&pending, ReloadRequest::OFF_R);
            return if pending_r == r {
                Ok(pending)
            } else {
                Err(ModuleError::DifferentReloadPending {
                    pending: pending_r,
                    requested: r,
                })
            };
        }
        // Step 2: never wrap N.
        if self.state.n == u32::MAX {
            self.state.lifecycle = Lifecycle::Blocked;
            return Err(ModuleError::CounterExhausted);
        }
        let ctx = self.ctx()?;
        // Step 3 (claim 8), wide arithmetic.
        let l = ctx.limits;
        if r < l.min_reload || r > l.max_reload || !fits_under_upper(self.state.balance, r, l.upper)
        {
            return Err(ModuleError::ReloadAmountOutOfRange(r));
        }
        // Step 4.
        let req = ReloadRequest::build(
            ctx.profile,
            ctx.module_id,
            self.state.n,
            r,
            self.state.balance,
            ctx.k_req,
        )?
        .to_bytes();
        self.state.pending = Some(req);
        Ok(req)
    }

    /// APPLY GRANT (spec §4.5): the 40-byte completion ack.
    pub fn apply_grant(&mut self, bytes: &[u8]) -> Result<[u8; CompletionAck::LEN], ModuleError> {
        self.require_operational()?;
        let ctx = self.ctx()?;
        // 1.
        self.check_header(&ctx, bytes, MessageType::Grant)?;
        let s_next = be_u32(bytes, ReloadGrant::OFF_S);
        let grant_tag: Tag = array_at(bytes, ReloadGrant::OFF_TAG);
        // 2.
        if !verify_raw(ctx.profile, ctx.k_grant, bytes)? {
            self.register(FraudKind::BadTag, s_next);
            return Err(ModuleError::BadTag);
        }
        let n = self.state.n;
        // 3.
        if let Some(last) = &self.state.last_completion {
            if s_next == n && ct_eq(&grant_tag, &last.grant_tag) {
                return Err(ModuleError::GrantAlreadyApplied);
            }
        }
        // 4. Compared wide so N = 2^32−1 has no successor instead of wrapping to 0.
        if u64::from(s_next) != u64::from(n) + 1 {
            self.register(FraudKind::Window, s_next);
            return Err(ModuleError::TransactionOutOfWindow { carried: s_next, n });
        }
        // 5.
        let Some(pending) = self.state.pending else {
            self.register(FraudKind::Window, s_next);
            return Err(ModuleError::NoReloadPending);
        };
        // 6.
        let request_tag: Tag = array_at(bytes, ReloadGrant::OFF_REQ_TAG);
        if !ct_eq(
            &request_tag,
            &array_at::<8>(&pending, ReloadRequest::OFF_TAG),
        ) {
            self.register(FraudKind::Window, s_next);
            return Err(ModuleError::MessageMismatch("request tag"));
        }
        // 7.
        let granted = be_u32(bytes, ReloadGrant::OFF_G);
        let status = GrantStatus::from_bytes(
            bytes.get(ReloadGrant::OFF_STATUS).copied().unwrap_or(0xFF),
            bytes.get(ReloadGrant::OFF_REASON).copied().unwrap_or(0xFF),
        )
        .map_err(|_| ModuleError::MessageMismatch("status or reason"))?;
        let declined = matches!(status, GrantStatus::Declined(_));
        if declined && granted != 0 {
            return Err(ModuleError::MessageMismatch(
                "declined grant with an amount",
            ));
        }
        // 8.
        let pending_r = be_u32(&pending, ReloadRequest::OFF_R);
        if !declined
            && (granted > pending_r
                || !fits_under_upper(self.state.balance, granted, ctx.limits.upper)
                || granted == 0)
        {
            self.register(FraudKind::GrantBeyondLimits, s_next);
            return Err(ModuleError::GrantExceedsLimits(granted));
        }
        // 9. Compute everything first, then commit it all at once: the applet's transaction.
        let new_balance = i32::try_from(i64::from(self.state.balance) + i64::from(granted))
            .map_err(|_| ModuleError::GrantExceedsLimits(granted))?;
        let ack = CompletionAck::build(
            ctx.profile,
            ctx.module_id,
            s_next,
            declined,
            granted,
            new_balance,
            grant_tag,
            ctx.k_req,
        )?
        .to_bytes();
        let s = &mut self.state;
        s.balance = new_balance;
        s.n = s_next;
        s.pending = None;
        s.provisional = false;
        s.last_completion = Some(LastCompletion { ack, grant_tag });
        Ok(ack)
    }

    /// APPLY PROVISIONAL ACK (spec §4.6): opens the credit line for the pending request.
    pub fn apply_provisional(&mut self, bytes: &[u8]) -> Result<(), ModuleError> {
        self.require_operational()?;
        let ctx = self.ctx()?;
        self.check_header(&ctx, bytes, MessageType::ProvisionalAck)?;
        let s_next = be_u32(bytes, ProvisionalAck::OFF_S);
        if !verify_raw(ctx.profile, ctx.k_grant, bytes)? {
            self.register(FraudKind::BadTag, s_next);
            return Err(ModuleError::BadTag);
        }
        let Some(pending) = self.state.pending else {
            self.register(FraudKind::Window, s_next);
            return Err(ModuleError::NoReloadPending);
        };
        let n = self.state.n;
        if u64::from(s_next) != u64::from(n) + 1 {
            self.register(FraudKind::Window, s_next);
            return Err(ModuleError::TransactionOutOfWindow { carried: s_next, n });
        }
        let request_tag: Tag = array_at(bytes, ProvisionalAck::OFF_REQ_TAG);
        if !ct_eq(
            &request_tag,
            &array_at::<8>(&pending, ReloadRequest::OFF_TAG),
        ) {
            self.register(FraudKind::Window, s_next);
            return Err(ModuleError::MessageMismatch("request tag"));
        }
        self.state.provisional = true;
        Ok(())
    }

    /// GET LAST COMPLETION (spec §4.7). Answers when operational or blocked.
    pub fn last_completion(&self) -> Result<[u8; CompletionAck::LEN], ModuleError> {
        if self.state.lifecycle == Lifecycle::Personalisation {
            return Err(ModuleError::ConditionsNotSatisfied("module not locked yet"));
        }
        self.state
            .last_completion
            .as_ref()
            .map(|l| l.ack)
            .ok_or(ModuleError::NoCompletion)
    }

    /// DEBIT (spec §4.8): spends `amount`, answers the new balance.
    pub fn debit(&mut self, amount: u32) -> Result<i32, ModuleError> {
        self.require_operational()?;
        if amount == 0 || amount > super::LIMIT_MAX {
            return Err(ModuleError::InvalidAmount(amount));
        }
        let limits = self.ctx()?.limits;
        let floor = if self.state.provisional {
            -i64::from(limits.credit_line)
        } else {
            0
        };
        let after = i64::from(self.state.balance) - i64::from(amount);
        if after < floor {
            return Err(ModuleError::InsufficientBalance(amount));
        }
        // after ≥ floor ≥ −(2^31−1) and after < balance ≤ i32::MAX, so it fits.
        let after = i32::try_from(after).map_err(|_| ModuleError::InsufficientBalance(amount))?;
        self.state.balance = after;
        Ok(after)
    }

    /// APPLY LIMIT UPDATE (spec §4.9).
    pub fn apply_limit_update(&mut self, bytes: &[u8]) -> Result<(), ModuleError> {
        self.require_operational()?;
        let ctx = self.ctx()?;
        self.check_header(&ctx, bytes, MessageType::LimitUpdate)?;
        let sequence = be_u32(bytes, LimitUpdate::OFF_SEQ);
        if !verify_raw(ctx.profile, ctx.k_grant, bytes)? {
            self.register(FraudKind::BadTag, sequence);
            return Err(ModuleError::BadTag);
        }
        let stored = self.state.limit_sequence;
        if sequence <= stored {
            self.register(FraudKind::LimitReplay, sequence);
            return Err(ModuleError::LimitUpdateReplayed { sequence, stored });
        }
        let limits = Limits::from_bytes(&array_at(bytes, LimitUpdate::OFF_LIMITS));
        limits
            .validate()
            .map_err(|e| ModuleError::InvalidLimits(e.into()))?;
        self.state.limits = Some(limits);
        self.state.limit_sequence = sequence;
        Ok(())
    }

    /// GET FRAUD LOG (spec §4.10): count ‖ entries, newest first. Answers in every state.
    pub fn fraud_log(&self) -> Vec<u8> {
        let log = &self.state.fraud_log;
        let count = log.len().min(FRAUD_LOG_LEN);
        let mut out = Vec::with_capacity(1 + count * FraudEntry::LEN);
        out.push(u8::try_from(count).unwrap_or(0));
        for e in log.iter().take(count) {
            out.extend_from_slice(&e.to_bytes());
        }
        out
    }

    /// PERSONALISE (spec §4.11): one command's TLV objects, applied all or nothing.
    pub fn personalise(&mut self, data: &[u8]) -> Result<(), ModuleError> {
        self.require_personalisation()?;
        let d = PersonalisationData::parse(data)?;
        let s = &self.state;
        // Keys: the profile of this command, else the stored one, fixes their length.
        let profile = d.profile.or(s.profile);
        for (tag, key) in [(0x83u8, &d.k_req), (0x84, &d.k_grant)] {
            if let Some(key) = key {
                let Some(p) = profile else {
                    return Err(ModuleError::ConditionsNotSatisfied(
                        "profile must be set before keys",
                    ));
                };
                if key.len() != p.module_key_len() {
                    return Err(ModuleError::KeyLength {
                        tag,
                        profile: p,
                        expected: p.module_key_len(),
                        got: key.len(),
                    });
                }
            }
        }
        if let Some(l) = d.limits {
            l.validate()
                .map_err(|e| ModuleError::InvalidLimits(e.into()))?;
        }
        let limits = d.limits.or(s.limits);
        let balance = match d.initial {
            Some(i) => Some(i.balance),
            // New limits are checked against the stored balance too.
            None if d.limits.is_some() => Some(s.balance),
            None => None,
        };
        if let Some(balance) = balance {
            let Some(l) = limits else {
                return Err(ModuleError::ConditionsNotSatisfied(
                    "limits must be set before the balance",
                ));
            };
            if i64::from(balance) < -i64::from(l.credit_line)
                || i64::from(balance) > i64::from(l.upper)
            {
                return Err(ModuleError::InvalidLimits(
                    InvalidLimitsCause::BalanceOutside {
                        balance,
                        credit_line: l.credit_line,
                        upper: l.upper,
                    },
                ));
            }
        }
        // Every check passed: apply it all (one transaction on the card).
        let PersonalisationData {
            module_id,
            profile: new_profile,
            k_req,
            k_grant,
            limits: new_limits,
            initial,
            threshold,
            server_address,
        } = d;
        if let Some(p) = new_profile {
            // Any change of profile clears both keys, so key bytes loaded for one algorithm
            // (say a 16-byte AES key) can never be used under another (2-key 3DES).
            if self.state.profile != Some(p) {
                self.k_req = None;
                self.k_grant = None;
            }
            self.state.profile = Some(p);
        }
        if let Some(id) = module_id {
            self.state.module_id = Some(id);
        }
        if k_req.is_some() {
            self.k_req = k_req;
        }
        if k_grant.is_some() {
            self.k_grant = k_grant;
        }
        if new_limits.is_some() {
            self.state.limits = new_limits;
        }
        if let Some(i) = initial {
            self.state.balance = i.balance;
            self.state.n = i.n;
        }
        if threshold.is_some() {
            self.state.threshold = threshold;
        }
        if let Some(a) = server_address {
            self.state.server_address = a;
        }
        Ok(())
    }

    /// LOCK (spec §4.12): personalisation → operational, one way.
    pub fn lock(&mut self) -> Result<(), ModuleError> {
        self.require_personalisation()?;
        let s = &self.state;
        let missing = if s.module_id.is_none() {
            Some("module id")
        } else if s.profile.is_none() {
            Some("profile")
        } else if self.k_req.is_none() {
            Some("request key")
        } else if self.k_grant.is_none() {
            Some("grant key")
        } else if s.limits.is_none() {
            Some("limits")
        } else if s.threshold.is_none() {
            Some("fraud threshold")
        } else {
            None
        };
        if let Some(what) = missing {
            return Err(ModuleError::PersonalisationIncomplete(what));
        }
        self.state.lifecycle = Lifecycle::Operational;
        Ok(())
    }

    /// The pending request decoded, if any (a convenience for tools; not an applet command).
    pub fn pending_request(&self) -> Option<ReloadRequest> {
        self.state
            .pending
            .and_then(|p| ReloadRequest::parse(&p).ok())
    }
}

impl fmt::Display for Status {
    /// One `name: value` line per field, for the CLI's `status`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lifecycle        {:?}", self.lifecycle)?;
        match self.profile {
            Some(p) => writeln!(f, "profile          {:02X} ({})", p.id(), p.name())?,
            None => writeln!(f, "profile          00 (not set)")?,
        }
        writeln!(f, "module id        {}", hex::encode_upper(self.module_id))?;
        writeln!(f, "balance          {}", self.balance)?;
        writeln!(f, "N                {}", self.n)?;
        writeln!(
            f,
            "limits           m={} M={} U={} L={} (sequence {})",
            self.limits.min_reload,
            self.limits.max_reload,
            self.limits.upper,
            self.limits.credit_line,
            self.limit_sequence
        )?;
        match self.allowed_range() {
            Some((lo, hi)) => writeln!(f, "reload range     {lo}..={hi}")?,
            None => writeln!(f, "reload range     none")?,
        }
        writeln!(
            f,
            "flags            pending={} provisional={} last-completion={}",
            self.pending, self.provisional, self.last_completion
        )?;
        writeln!(f, "pending R        {}", self.pending_r)?;
        write!(
            f,
            "fraud            bad tags={} window={} threshold={}",
            self.bad_tags, self.window_events, self.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn status_layout() {
        let s = Status {
            lifecycle: Lifecycle::Operational,
            profile: Some(Profile::RetailMac),
            module_id: hex!("1122334455667788"),
            balance: -5,
            n: 0x0102_0304,
            limits: Limits {
                min_reload: 1,
                max_reload: 2,
                upper: 3,
                credit_line: 4,
            },
            limit_sequence: 9,
            pending: true,
            provisional: false,
            last_completion: true,
            pending_r: 0x64,
            bad_tags: 0x0102,
            window_events: 3,
            threshold: 0xFFFF,
        };
        let b = s.to_bytes();
        assert_eq!(
            b,
            hex!(
                "02 02 1122334455667788 FFFFFFFB 01020304"
                "00000001 00000002 00000003 00000004 00000009"
                "05 00000064 0102 0003 FFFF"
            )
        );
        assert_eq!(Status::parse(&b).unwrap(), s);
        let mut bad = b;
        bad[38] = 0x08;
        assert_eq!(Status::parse(&bad), Err(StatusError::ReservedFlags(8)));
        bad = b;
        bad[0] = 0;
        assert_eq!(Status::parse(&bad), Err(StatusError::BadLifecycle(0)));
        bad = b;
        bad[1] = 4;
        assert_eq!(Status::parse(&bad), Err(StatusError::BadProfile(4)));
        assert_eq!(
            Status::parse(&b[..48]),
            Err(StatusError::WrongLength {
                expected: 49,
                got: 48
            })
        );
    }

    #[test]
    fn fresh_module_status_and_gates() {
        let mut m = Module::new();
        let st = m.status().to_bytes();
        assert_eq!(st[0], 0x01);
        assert!(st[1..].iter().all(|&b| b == 0));
        assert_eq!(m.initiate_reload(1).unwrap_err().sw().to_u16(), 0x6985);
        assert_eq!(m.debit(1).unwrap_err().sw().to_u16(), 0x6985);
        assert_eq!(m.last_completion().unwrap_err().sw().to_u16(), 0x6985);
        assert_eq!(m.lock().unwrap_err().sw().to_u16(), 0x9C0D);
        assert_eq!(m.fraud_log(), vec![0]);
    }

    #[test]
    fn personalisation_rules_in_spec_order() {
        use crate::credit::commands::{InitialCounters, PersonalisationData as P};
        let code = |r: Result<(), ModuleError>| r.unwrap_err().sw().to_u16();
        let lim = Limits {
            min_reload: 10,
            max_reload: 500,
            upper: 1000,
            credit_line: 100,
        };
        let mut m = Module::new();
        // Keys need a profile in force.
        let key_only = P {
            k_req: Some(SecretKey::new(&[1; 16])),
            ..P::default()
        };
        assert_eq!(code(m.personalise(&key_only.to_tlv())), 0x6985);
        // The profile in the same command counts, whatever the order of the objects.
        let mut tlv = key_only.to_tlv();
        tlv.extend_from_slice(&hex!("82 01 03"));
        assert_eq!(
            code(m.personalise(&tlv)),
            0x6A80,
            "16-byte key for desx-cbc"
        );
        tlv.truncate(tlv.len() - 1);
        tlv.push(0x01);
        m.personalise(&tlv).unwrap();
        // Re-sending the same profile keeps the keys; any other profile clears them, even one
        // with the same key length (aes-cmac → retail-mac).
        m.personalise(&hex!("82 01 01")).unwrap();
        assert!(m.k_req.is_some());
        m.personalise(&hex!("82 01 02")).unwrap();
        assert!(m.k_req.is_none() && m.k_grant.is_none());
        m.personalise(&hex!("82 01 01")).unwrap();
        // The balance needs limits, and must lie in [−L, U].
        let init = |balance| P {
            initial: Some(InitialCounters { balance, n: 5 }),
            ..P::default()
        };
        assert_eq!(code(m.personalise(&init(0).to_tlv())), 0x6985);
        let with_limits = |balance| P {
            limits: Some(lim),
            ..init(balance)
        };
        assert_eq!(code(m.personalise(&with_limits(1001).to_tlv())), 0x9C0B);
        assert_eq!(code(m.personalise(&with_limits(-101).to_tlv())), 0x9C0B);
        m.personalise(&with_limits(-100).to_tlv()).unwrap();
        // New limits are checked against the stored balance too.
        let tighter = P {
            limits: Some(Limits {
                credit_line: 99,
                ..lim
            }),
            ..P::default()
        };
        assert_eq!(code(m.personalise(&tighter.to_tlv())), 0x9C0B);
        let bad = P {
            limits: Some(Limits {
                min_reload: 0,
                ..lim
            }),
            ..P::default()
        };
        assert_eq!(code(m.personalise(&bad.to_tlv())), 0x9C0B);
        // A failed command changes nothing.
        assert_eq!(m.state().balance, -100);
        assert_eq!(m.state().n, 5);
        assert_eq!(m.state().limits, Some(lim));
        // LOCK names what is missing, then works, then PERSONALISE and LOCK answer 6985.
        assert_eq!(
            m.lock(),
            Err(ModuleError::PersonalisationIncomplete("module id"))
        );
        m.personalise(&hex!("81 08 0102030405060708 87 02 0003"))
            .unwrap();
        assert_eq!(
            m.lock(),
            Err(ModuleError::PersonalisationIncomplete("request key"))
        );
        let keys = P {
            k_req: Some(SecretKey::new(&[1; 16])),
            k_grant: Some(SecretKey::new(&[2; 16])),
            ..P::default()
        };
        m.personalise(&keys.to_tlv()).unwrap();
        m.lock().unwrap();
        assert_eq!(m.state().lifecycle, Lifecycle::Operational);
        assert_eq!(code(m.personalise(&[])), 0x6985);
        assert_eq!(code(m.lock()), 0x6985);
        assert_eq!(m.status().allowed_range(), Some((10, 500)));
    }

    #[test]
    fn fraud_entry_layout() {
        let e = FraudEntry {
            kind: FraudKind::LimitReplay,
            module_n: 0x10,
            carried: 0xFFFF_FFFF,
        };
        assert_eq!(e.to_bytes(), hex!("03 00000010 FFFFFFFF"));
        let mut log = vec![1];
        log.extend_from_slice(&e.to_bytes());
        assert_eq!(FraudEntry::parse_log(&log).unwrap(), vec![e]);
        assert!(FraudEntry::parse_log(&[]).is_err());
        assert!(FraudEntry::parse_log(&[1]).is_err());
        assert!(FraudEntry::parse_log(&[9]).is_err());
    }
}
