//! The reload server's policy (spec §6) as pure functions over a [`ServerRecord`].
//!
//! The grant signer calls these inside one database transaction per message and adds only
//! storage and the debit itself:
//!
//! 1. look the record up by the request's module id (404 when unknown) and lock it;
//! 2. [`classify_request`]: `Err(r)` → [`register_rejection`], store, answer `r.http_status()`;
//!    `Ok(Resend)` → answer the stored grant; `Ok(Fresh)` → debit when the decision says so
//!    (idempotency key = module id ‖ N), then [`finish_fresh`], store and commit, answer.
//!
//! Nothing here does I/O, and the server crate must not re-implement any of these rules.

use serde::{Deserialize, Serialize};

use crate::crypto::mac::{MacKey, ct_eq};
use crate::crypto::{CryptoError, Profile};

use super::message::{
    CompletionAck, GrantStatus, LimitUpdate, MessageError, ProvisionalAck, ReloadGrant,
    ReloadRequest,
};
use super::{
    DeclineReason, FraudKind, Limits, LimitsError, ModuleId, Tag, array_at, hex_array,
    hex_array_opt,
};

/// Whether the server still serves a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerModuleState {
    /// Requests are processed.
    Active,
    /// Every request is answered 423 until an operator unblocks the module.
    Blocked,
}

/// What the server keeps per module (spec §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The module.
    #[serde(with = "hex_array")]
    pub module_id: ModuleId,
    /// Its crypto profile; requests with another algorithm id are refused (downgrade).
    pub profile: Profile,
    /// S: the transaction number the server expects next.
    pub s: u32,
    /// The limits the module is known to have: m, M, U, L.
    pub limits: Limits,
    /// Sequence of the last limit update issued (0: none).
    pub limit_sequence: u32,
    /// Limits issued with `limit_sequence` that the module may or may not have applied yet.
    /// While set, grants are decided with the stricter of both ([`ServerRecord::effective_limits`]).
    pub limits_in_flight: Option<Limits>,
    /// The last request answered with a grant, byte for byte.
    #[serde(with = "hex_array_opt")]
    pub last_request: Option<[u8; ReloadRequest::LEN]>,
    /// The grant that answered it, byte for byte.
    #[serde(with = "hex_array_opt")]
    pub last_grant: Option<[u8; ReloadGrant::LEN]>,
    /// Registered failures (saturating).
    pub failure_count: u32,
    /// The module is blocked when `failure_count` reaches this (≥ 1).
    pub threshold: u32,
    /// Active or blocked.
    pub state: ServerModuleState,
    /// S′ of the last grant whose completion ack was received (`None`: none yet).
    pub completed_through: Option<u32>,
    /// A fresh request (N = S) answered with a provisional ack because its debit is pending at
    /// an external financial authority, kept so the appliance can collect the grant later
    /// (`GET /v1/reload/{module_id}/{n}`). Cleared when its grant is stored.
    #[serde(default, with = "hex_array_opt")]
    pub pending_request: Option<[u8; ReloadRequest::LEN]>,
}

impl ServerRecord {
    /// A module's registration: S = the module's initial N, its limits, nothing sent yet.
    pub fn new(
        module_id: ModuleId,
        profile: Profile,
        initial_n: u32,
        limits: Limits,
        threshold: u32,
    ) -> Self {
        ServerRecord {
            module_id,
            profile,
            s: initial_n,
            limits,
            limit_sequence: 0,
            limits_in_flight: None,
            last_request: None,
            last_grant: None,
            failure_count: 0,
            threshold: threshold.max(1),
            state: ServerModuleState::Active,
            completed_through: None,
            pending_request: None,
        }
    }

    /// The limits grants are decided with: [`ServerRecord::limits`], made stricter by any
    /// limits in flight (highest m, lowest M and U), so no grant can exceed the limits the
    /// module has — whichever of the two it has (see spec §6, limit updates).
    pub fn effective_limits(&self) -> Limits {
        match &self.limits_in_flight {
            None => self.limits,
            Some(f) => stricter(&self.limits, f),
        }
    }

    /// The tag of the last grant, if any.
    pub fn last_grant_tag(&self) -> Option<Tag> {
        self.last_grant.map(|g| array_at(&g, ReloadGrant::OFF_TAG))
    }
}

fn stricter(a: &Limits, b: &Limits) -> Limits {
    Limits {
        min_reload: a.min_reload.max(b.min_reload),
        max_reload: a.max_reload.min(b.max_reload),
        upper: a.upper.min(b.upper),
        credit_line: a.credit_line.min(b.credit_line),
    }
}

/// What to do with a request that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestAction {
    /// N = S: a new request. Debit if the decision says so, then [`finish_fresh`].
    Fresh {
        /// The authenticated request.
        request: ReloadRequest,
        /// What the policy decided.
        decision: FreshDecision,
    },
    /// N = S − 1 and byte-identical to the last request: the module never got the grant.
    /// Answer these stored bytes; no debit.
    Resend {
        /// The stored grant.
        grant: [u8; ReloadGrant::LEN],
    },
}

/// The policy's decision on a fresh request (spec §6 rule 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FreshDecision {
    /// Debit `amount` = G = min(R, U − B) from the account.
    Debit {
        /// G.
        amount: u32,
    },
    /// Decline without debiting.
    Decline(DeclineReason),
}

/// Decides a fresh request (spec §6 rule 3), in the spec's order, in wide arithmetic.
pub fn decide(requested: u32, balance: i32, limits: &Limits) -> FreshDecision {
    if requested < limits.min_reload {
        return FreshDecision::Decline(DeclineReason::BelowMinimum);
    }
    if requested > limits.max_reload {
        return FreshDecision::Decline(DeclineReason::AboveMaximum);
    }
    let headroom = i64::from(limits.upper) - i64::from(balance);
    if headroom <= 0 {
        return FreshDecision::Decline(DeclineReason::AtUpperLimit);
    }
    let g = headroom.min(i64::from(requested));
    if g < i64::from(limits.min_reload) {
        return FreshDecision::Decline(DeclineReason::BelowMinimum);
    }
    match u32::try_from(g) {
        Ok(amount) => FreshDecision::Debit { amount },
        // g ≤ R ≤ u32::MAX, so this cannot happen; declining is the safe answer if it did.
        Err(_) => FreshDecision::Decline(DeclineReason::AboveMaximum),
    }
}

/// Why a message is refused. The caller passes it to [`register_rejection`] and answers
/// [`Rejection::http_status`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Wrong length, version, type or an unknown algorithm id (400, not registered).
    #[error("malformed message: {0}")]
    Malformed(#[from] MessageError),
    /// The message names another module than this record's (404, not registered).
    #[error("unknown module {}", hex::encode_upper(.0))]
    UnknownModule(ModuleId),
    /// A known algorithm id that is not the module's profile: a downgrade attempt (400, not
    /// registered: nothing authenticated was received).
    #[error("algorithm {got} is not this module's profile {expected}")]
    UnknownAlgorithm {
        /// The algorithm in the message.
        got: Profile,
        /// The module's profile.
        expected: Profile,
    },
    /// The module is blocked (423).
    #[error("module blocked")]
    Blocked,
    /// The tag does not verify (403, registered).
    #[error("tag does not verify (request N = {n})")]
    BadTag {
        /// The (unauthenticated) number the message carried.
        n: u32,
    },
    /// N is neither S nor S − 1 (409, registered; N > S is also for the operator).
    #[error("transaction number {n} is outside the window (S = {s})")]
    OutOfWindow {
        /// N carried.
        n: u32,
        /// S.
        s: u32,
    },
    /// N = S − 1 but not the stored request byte for byte (409, registered).
    #[error("request {n} differs from the one already answered")]
    ReplayMismatch {
        /// N carried.
        n: u32,
    },
    /// N = S = 2^32−1: the module's numbers are exhausted (423; the module is blocked).
    #[error("transaction numbers exhausted")]
    CounterExhausted,
    /// The module's key does not fit its profile (500: a registration error, not the caller's).
    #[error("server key error: {0}")]
    Crypto(#[from] CryptoError),
}

impl Rejection {
    /// The HTTP status the grant signer answers.
    pub const fn http_status(&self) -> u16 {
        match self {
            Rejection::Malformed(_) | Rejection::UnknownAlgorithm { .. } => 400,
            Rejection::UnknownModule(_) => 404,
            Rejection::Blocked | Rejection::CounterExhausted => 423,
            Rejection::BadTag { .. } => 403,
            Rejection::OutOfWindow { .. } | Rejection::ReplayMismatch { .. } => 409,
            Rejection::Crypto(_) => 500,
        }
    }

    /// Whether [`register_rejection`] counts it as an attempt at fraud.
    pub const fn is_fraud(&self) -> bool {
        matches!(
            self,
            Rejection::BadTag { .. }
                | Rejection::OutOfWindow { .. }
                | Rejection::ReplayMismatch { .. }
        )
    }
}

/// A registered fraud event, for the server's fraud log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FraudEvent {
    /// [`FraudKind::BadTag`] or [`FraudKind::Window`].
    pub kind: FraudKind,
    /// The number the message carried (N, or N′ for completion acks).
    pub carried: u32,
    /// S at the time.
    pub s: u32,
    /// The failure count after this event.
    pub failure_count: u32,
    /// Whether this event blocked the module.
    pub blocked: bool,
}

/// Registers a rejection (spec §6 rules 2, 3, 5): fraud increments the failure count and blocks
/// at the threshold; exhausted numbers block. Returns the fraud event to log, if any.
pub fn register_rejection(record: &mut ServerRecord, r: &Rejection) -> Option<FraudEvent> {
    let (kind, carried) = match r {
        Rejection::BadTag { n } => (FraudKind::BadTag, *n),
        Rejection::OutOfWindow { n, .. } | Rejection::ReplayMismatch { n } => {
            (FraudKind::Window, *n)
        }
        Rejection::CounterExhausted => {
            record.state = ServerModuleState::Blocked;
            return None;
        }
        _ => return None,
    };
    record.failure_count = record.failure_count.saturating_add(1);
    let was_active = record.state == ServerModuleState::Active;
    if record.failure_count >= record.threshold {
        record.state = ServerModuleState::Blocked;
    }
    Some(FraudEvent {
        kind,
        carried,
        s: record.s,
        failure_count: record.failure_count,
        blocked: was_active && record.state == ServerModuleState::Blocked,
    })
}

/// The checks every message from a module goes through before its tag: structure, module id,
/// algorithm, blocked.
fn check_header(
    record: &ServerRecord,
    module_id: ModuleId,
    profile: Profile,
) -> Result<(), Rejection> {
    if module_id != record.module_id {
        return Err(Rejection::UnknownModule(module_id));
    }
    if profile != record.profile {
        return Err(Rejection::UnknownAlgorithm {
            got: profile,
            expected: record.profile,
        });
    }
    if record.state == ServerModuleState::Blocked {
        return Err(Rejection::Blocked);
    }
    Ok(())
}

/// Classifies a request (spec §6 rules 1–5). Changes nothing: registration is
/// [`register_rejection`], the state change of a fresh request is [`finish_fresh`].
pub fn classify_request(
    record: &ServerRecord,
    bytes: &[u8],
    k_req: &dyn MacKey,
) -> Result<RequestAction, Rejection> {
    let request = ReloadRequest::parse(bytes)?;
    check_header(record, request.module_id, request.profile)?;
    if !request.verify(k_req)? {
        return Err(Rejection::BadTag { n: request.n });
    }
    let (n, s) = (request.n, record.s);
    if n == s {
        if s == u32::MAX {
            return Err(Rejection::CounterExhausted);
        }
        let decision = decide(
            request.requested,
            request.balance,
            &record.effective_limits(),
        );
        return Ok(RequestAction::Fresh { request, decision });
    }
    if s.checked_sub(1) == Some(n) {
        return match (&record.last_request, &record.last_grant) {
            (Some(last), Some(grant)) if ct_eq(last, bytes) => {
                Ok(RequestAction::Resend { grant: *grant })
            }
            _ => Err(Rejection::ReplayMismatch { n }),
        };
    }
    Err(Rejection::OutOfWindow { n, s })
}

/// What came of the debit of a fresh request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DebitOutcome {
    /// The account was debited `amount` (the decision's G).
    Debited {
        /// G.
        amount: u32,
    },
    /// The account has insufficient funds: decline `03`.
    InsufficientFunds,
    /// The financial authority refused: decline `04`.
    Refused,
    /// The policy declined (no debit was attempted): the decision's reason.
    Declined(DeclineReason),
}

/// Why [`finish_fresh`] (or another builder) refused to build a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FinishError {
    /// The request is not the one the record expects now (another transaction won the race on
    /// S, or the request belongs to another module): roll back and classify again.
    #[error("request {n} is not fresh (S = {s})")]
    NotFresh {
        /// N of the request.
        n: u32,
        /// S of the record.
        s: u32,
    },
    /// The outcome does not fit the policy's decision (e.g. a debit of another amount).
    #[error("outcome {outcome:?} does not fit the decision {decision:?}")]
    OutcomeMismatch {
        /// The decision for this request.
        decision: FreshDecision,
        /// The outcome given.
        outcome: DebitOutcome,
    },
    /// Limits that are not valid (spec §3.6).
    #[error(transparent)]
    InvalidLimits(#[from] LimitsError),
    /// A limit update lowering U while a grant is outstanding (its completion ack not received
    /// yet): the module could apply the update first and then refuse the already-debited grant.
    #[error("a grant is outstanding; lower the upper limit after its completion ack")]
    GrantOutstanding,
    /// The limit sequence is exhausted.
    #[error("limit update sequence exhausted")]
    SequenceExhausted,
    /// The module's key does not fit its profile.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn check_fresh(record: &ServerRecord, request: &ReloadRequest) -> Result<u32, FinishError> {
    let stale = FinishError::NotFresh {
        n: request.n,
        s: record.s,
    };
    if request.module_id != record.module_id
        || request.profile != record.profile
        || request.n != record.s
        || record.state != ServerModuleState::Active
    {
        return Err(stale);
    }
    request.n.checked_add(1).ok_or(stale)
}

/// Builds the grant for a fresh request and records it (spec §6 rule 3, last step): S = N + 1,
/// the request and the grant. Returns the 37 grant bytes to answer.
///
/// The decision is taken again from the record, so an outcome that does not fit it (another
/// amount, a decline for a debit that was never attempted) is refused rather than signed.
pub fn finish_fresh(
    record: &mut ServerRecord,
    request: &ReloadRequest,
    outcome: DebitOutcome,
    k_grant: &dyn MacKey,
) -> Result<[u8; ReloadGrant::LEN], FinishError> {
    let s_next = check_fresh(record, request)?;
    let decision = decide(
        request.requested,
        request.balance,
        &record.effective_limits(),
    );
    let (status, granted) = match (decision, outcome) {
        (FreshDecision::Debit { amount }, DebitOutcome::Debited { amount: a }) if a == amount => {
            (GrantStatus::Granted, amount)
        }
        (FreshDecision::Debit { .. }, DebitOutcome::InsufficientFunds) => {
            (GrantStatus::Declined(DeclineReason::InsufficientFunds), 0)
        }
        (FreshDecision::Debit { .. }, DebitOutcome::Refused) => {
            (GrantStatus::Declined(DeclineReason::Refused), 0)
        }
        (FreshDecision::Decline(r), DebitOutcome::Declined(r2)) if r == r2 => {
            (GrantStatus::Declined(r), 0)
        }
        _ => return Err(FinishError::OutcomeMismatch { decision, outcome }),
    };
    let grant = ReloadGrant::build(
        record.profile,
        record.module_id,
        s_next,
        status,
        granted,
        request.tag,
        k_grant,
    )?
    .to_bytes();
    record.s = s_next;
    record.last_request = Some(request.to_bytes());
    record.last_grant = Some(grant);
    record.pending_request = None;
    Ok(grant)
}

/// Builds a provisional ack (spec §3.4) for a fresh request whose debit is slow. Changes
/// nothing: the module retries the same request, which is fresh again until the debit commits
/// (the debit's idempotency key makes the retry safe), then resent.
pub fn build_provisional_ack(
    record: &ServerRecord,
    request: &ReloadRequest,
    k_grant: &dyn MacKey,
) -> Result<[u8; ProvisionalAck::LEN], FinishError> {
    let s_next = check_fresh(record, request)?;
    Ok(ProvisionalAck::build(
        record.profile,
        record.module_id,
        s_next,
        request.tag,
        k_grant,
    )?
    .to_bytes())
}

/// Issues a limit update (spec §3.6) with the next sequence and records the new limits as in
/// flight: until [`confirm_limit_update`], grants are decided with the stricter of the old and
/// new limits, so a module that has not applied the update yet never gets a grant beyond its
/// limits (which it would refuse after the server had debited).
pub fn build_limit_update(
    record: &mut ServerRecord,
    limits: Limits,
    k_grant: &dyn MacKey,
) -> Result<[u8; LimitUpdate::LEN], FinishError> {
    limits.validate()?;
    // A grant decided with the current U and not yet acknowledged would be refused (9C06) by a
    // module that applied a lower U first — after the debit. Lowering U waits for the ack.
    if limits.upper < record.effective_limits().upper && grant_outstanding(record) {
        return Err(FinishError::GrantOutstanding);
    }
    let sequence = record
        .limit_sequence
        .checked_add(1)
        .ok_or(FinishError::SequenceExhausted)?;
    let bytes =
        LimitUpdate::build(record.profile, record.module_id, sequence, limits, k_grant)?.to_bytes();
    // An earlier update may still be in flight too: keep a bound that covers it.
    if let Some(prev) = record.limits_in_flight.take() {
        record.limits = stricter(&record.limits, &prev);
    }
    record.limit_sequence = sequence;
    record.limits_in_flight = Some(limits);
    Ok(bytes)
}

/// Whether the last grant credited something and its completion ack has not been received.
pub fn grant_outstanding(record: &ServerRecord) -> bool {
    match record.last_grant {
        Some(g) => {
            g.get(ReloadGrant::OFF_STATUS) == Some(&0x00)
                && record.completed_through != Some(record.s)
        }
        None => false,
    }
}

/// Records that the module has applied limit updates up to `module_sequence` (read from its
/// GET STATUS). From then on grants are decided with the new limits alone.
pub fn confirm_limit_update(record: &mut ServerRecord, module_sequence: u32) {
    if module_sequence >= record.limit_sequence {
        if let Some(l) = record.limits_in_flight.take() {
            record.limits = l;
        }
    }
}

/// Handles a completion ack (spec §6): tag under K_req, then N′ = S and the grant tag of the
/// stored grant → marks it completed (idempotent). On `Err`, call [`register_rejection`].
pub fn handle_completion(
    record: &mut ServerRecord,
    bytes: &[u8],
    k_req: &dyn MacKey,
) -> Result<CompletionAck, Rejection> {
    let ack = CompletionAck::parse(bytes)?;
    check_header(record, ack.module_id, ack.profile)?;
    if !ack.verify(k_req)? {
        return Err(Rejection::BadTag { n: ack.n_next });
    }
    let matches = match record.last_grant_tag() {
        Some(t) => ack.n_next == record.s && ct_eq(&t, &ack.grant_tag),
        None => false,
    };
    if !matches {
        return Err(Rejection::OutOfWindow {
            n: ack.n_next,
            s: record.s,
        });
    }
    record.completed_through = Some(ack.n_next);
    Ok(ack)
}

/// Operator resynchronisation after an N > S report (spec §6 rule 5): sets S to the module's N,
/// forgets the last request and grant (they belong to older numbers) and resets the failure
/// count. It does not unblock; that is [`unblock`].
pub fn resynchronise(record: &mut ServerRecord, module_n: u32) {
    record.s = module_n;
    record.last_request = None;
    record.last_grant = None;
    record.failure_count = 0;
}

/// Operator unblock: active again with a zero failure count.
pub fn unblock(record: &mut ServerRecord) {
    record.state = ServerModuleState::Active;
    record.failure_count = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(m: u32, mm: u32, u: i32) -> Limits {
        Limits {
            min_reload: m,
            max_reload: mm,
            upper: u,
            credit_line: 0,
        }
    }

    #[test]
    fn decision_order_and_cap() {
        use DeclineReason::*;
        use FreshDecision::*;
        let lim = l(10, 500, 1000);
        assert_eq!(decide(9, 0, &lim), Decline(BelowMinimum));
        assert_eq!(decide(501, 0, &lim), Decline(AboveMaximum));
        assert_eq!(decide(100, 1000, &lim), Decline(AtUpperLimit));
        assert_eq!(decide(100, 2000, &lim), Decline(AtUpperLimit));
        assert_eq!(decide(100, 995, &lim), Decline(BelowMinimum));
        assert_eq!(decide(100, 950, &lim), Debit { amount: 50 });
        assert_eq!(decide(100, -5, &lim), Debit { amount: 100 });
        // R < m wins over the upper limit: the spec's order.
        assert_eq!(decide(1, 1000, &lim), Decline(BelowMinimum));
        let wide = l(1, i32::MAX as u32, i32::MAX);
        assert_eq!(decide(u32::MAX, 0, &wide), Decline(AboveMaximum));
        assert_eq!(
            decide(i32::MAX as u32, i32::MIN, &wide),
            Debit {
                amount: i32::MAX as u32
            }
        );
        assert_eq!(decide(5, i32::MAX - 2, &wide), Debit { amount: 2 });
    }

    #[test]
    fn http_statuses() {
        assert_eq!(Rejection::Blocked.http_status(), 423);
        assert_eq!(Rejection::BadTag { n: 0 }.http_status(), 403);
        assert_eq!(Rejection::OutOfWindow { n: 0, s: 1 }.http_status(), 409);
        assert_eq!(Rejection::ReplayMismatch { n: 0 }.http_status(), 409);
        assert_eq!(Rejection::CounterExhausted.http_status(), 423);
        assert_eq!(
            Rejection::Malformed(MessageError::UnknownType(9)).http_status(),
            400
        );
        assert!(Rejection::BadTag { n: 0 }.is_fraud());
        assert!(!Rejection::CounterExhausted.is_fraud());
        assert!(!Rejection::Blocked.is_fraud());
    }

    #[test]
    fn stricter_limits_while_in_flight() {
        let mut r = ServerRecord::new([1; 8], Profile::AesCmac, 0, l(10, 500, 1000), 3);
        r.limit_sequence = 1;
        r.limits_in_flight = Some(l(5, 800, 2000));
        assert_eq!(r.effective_limits(), l(10, 500, 1000));
        confirm_limit_update(&mut r, 0);
        assert_eq!(r.effective_limits(), l(10, 500, 1000));
        confirm_limit_update(&mut r, 1);
        assert_eq!(r.effective_limits(), l(5, 800, 2000));
        assert_eq!(r.limits_in_flight, None);
    }
}
