//! The message flow: a reload request (one transaction with the built-in ledger, two around an
//! external authority's answer), collecting a pending reload, and a completion ack. The order
//! of the steps is here, once; the SQL of each step is the backend's ([`super::tx::Tx`]).

use simkit_core::credit::message::{CompletionAck, GrantStatus, ReloadGrant, ReloadRequest};
use simkit_core::credit::server::{
    self, DebitOutcome, FraudEvent, FreshDecision, Rejection, RequestAction, ServerRecord,
};

use super::{
    Answer, Completion, FLOAT_ACCOUNT, LedgerEntry, Mode, Registered, Store, StoreError, id_hex,
    now,
};
use crate::authority::{Authority, DebitAnswer, DebitKey, DebitRequest};

/// How far the first transaction of a reload got.
enum Step {
    /// Answered (committed, or nothing to commit).
    Done(Answer),
    /// A fresh request whose debit must be asked of the external authority between two
    /// transactions.
    AskAuthority {
        /// G.
        amount: u32,
        /// The module's account.
        account: String,
    },
}

/// The first field of an authenticated completion ack (N′ and grant tag already matched) that
/// differs from the stored grant and request it answers: status, then G, then the balance.
/// The balance cannot be known exactly — the module may have debited between its request and
/// the grant — but nothing but a grant raises it, so it is at most the request's B + G (wide
/// arithmetic). server-api.md, `POST /v1/completion`.
fn ack_mismatch(record: &ServerRecord, ack: &CompletionAck) -> Option<StoreError> {
    let grant = record
        .last_grant
        .and_then(|g| ReloadGrant::parse(&g).ok())?;
    let granted = grant.status == GrantStatus::Granted;
    let word = |declined: bool| {
        if declined {
            "declined (01)"
        } else {
            "granted (00)"
        }
    };
    if ack.declined == granted {
        return Some(StoreError::AckMismatch {
            n: ack.n_next,
            field: "status",
            got: word(ack.declined).into(),
            expected: format!("status {}", word(!granted)),
        });
    }
    if ack.granted != grant.granted {
        return Some(StoreError::AckMismatch {
            n: ack.n_next,
            field: "G",
            got: ack.granted.to_string(),
            expected: format!("G = {}", grant.granted),
        });
    }
    let request = record
        .last_request
        .and_then(|r| ReloadRequest::parse(&r).ok())?;
    let most = i64::from(request.balance) + i64::from(grant.granted);
    if i64::from(ack.balance) > most {
        return Some(StoreError::AckMismatch {
            n: ack.n_next,
            field: "balance",
            got: ack.balance.to_string(),
            expected: format!(
                "at most B + G = {} + {} = {most}",
                request.balance, grant.granted
            ),
        });
    }
    None
}

/// A registered rejection as the API answers it.
fn settle_registered((rejection, event): Registered) -> (StoreError, Option<FraudEvent>) {
    (StoreError::Rejected(rejection), event)
}

/// A message transaction's result as the API takes it: a registered rejection becomes the
/// error, with the fraud event it registered.
fn settle<T>(
    result: Result<Result<T, Registered>, StoreError>,
) -> Result<T, (StoreError, Option<FraudEvent>)> {
    match result {
        Ok(Ok(done)) => Ok(done),
        Ok(Err((rejection, event))) => Err((StoreError::Rejected(rejection), event)),
        Err(e) => Err((e, None)),
    }
}

impl Store {
    /// Handles a reload request: one transaction with the built-in ledger; with an external
    /// authority, two transactions around the authority's answer (module documentation of
    /// [`crate::authority`]). On `Err`, the fraud event registered (if any) comes with the
    /// error.
    pub fn reload(
        &self,
        bytes: &[u8],
    ) -> Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)> {
        let parsed = ReloadRequest::parse(bytes)
            .map_err(|e| (StoreError::Rejected(Rejection::Malformed(e)), None))?;
        let id = id_hex(&parsed.module_id);
        let external = match &self.authority {
            Authority::BuiltIn => None,
            Authority::External(a) => Some(a.clone()),
        };
        let first = self.transact(Mode::Write, |tx| {
            let (mut record, account) = Self::load_named(tx, &id, parsed.module_id)?;
            let keys = self.module_keys(&record)?;
            match server::classify_request(&record, bytes, &keys.request) {
                Err(r) => Ok(Err(Self::register(tx, record, r)?)),
                Ok(RequestAction::Resend { grant }) => {
                    Ok(Ok(Step::Done(Answer::Resent(grant.to_vec()))))
                }
                Ok(RequestAction::Fresh { request, decision }) => {
                    let outcome = match decision {
                        FreshDecision::Debit { amount } if external.is_some() => {
                            // Nothing changes in this transaction: the authority is asked
                            // outside it.
                            return Ok(Ok(Step::AskAuthority { amount, account }));
                        }
                        FreshDecision::Debit { amount } => {
                            Self::debit(tx, &request.module_id, request.n, &account, amount)?
                        }
                        FreshDecision::Decline(reason) => DebitOutcome::Declined(reason),
                    };
                    let grant = server::finish_fresh(&mut record, &request, outcome, &keys.grant)?;
                    Self::save(tx, &record)?;
                    Ok(Ok(Step::Done(Answer::Fresh(grant.to_vec()))))
                }
            }
        });
        let (amount, account) = match settle(first)? {
            Step::Done(answer) => return Ok((answer, None)),
            Step::AskAuthority { amount, account } => (amount, account),
        };
        let Some(authority) = external else {
            return Err((
                StoreError::AuthorityUnavailable("no external authority configured".into()),
                None,
            ));
        };
        let asked = DebitRequest {
            key: DebitKey {
                module_id: parsed.module_id,
                n: parsed.n,
            },
            account,
            amount,
        };
        let answer = authority.debit(&asked);
        if let DebitAnswer::Unavailable(why) = &answer {
            return Err((StoreError::AuthorityUnavailable(why.clone()), None));
        }
        let second = self.transact(Mode::Write, |tx| {
            let (mut record, _) = Self::load_named(tx, &id, parsed.module_id)?;
            let keys = self.module_keys(&record)?;
            match server::classify_request(&record, bytes, &keys.request) {
                Err(r) => Ok(Err(Self::register(tx, record, r)?)),
                // Another request or server process stored the grant meanwhile; the authority
                // saw the same key twice and debited once.
                Ok(RequestAction::Resend { grant }) => Ok(Ok(Answer::Resent(grant.to_vec()))),
                Ok(RequestAction::Fresh { request, decision }) => {
                    if decision != (FreshDecision::Debit { amount }) {
                        return Err(StoreError::AuthorityUnavailable(format!(
                            "the decision changed while the authority was asked ({decision:?}); send the request again"
                        )));
                    }
                    let outcome = match &answer {
                        DebitAnswer::Debited => {
                            // The ledger mirrors the authority's debit, unique on (module, N).
                            let hex_id = id_hex(&request.module_id);
                            if tx.ledger_amount(&hex_id, request.n)?.is_none() {
                                tx.insert_ledger(&LedgerEntry {
                                    module_id: hex_id,
                                    n: request.n,
                                    debit_account: asked.account.clone(),
                                    credit_account: FLOAT_ACCOUNT.to_owned(),
                                    amount,
                                    at: now(),
                                })?;
                            }
                            DebitOutcome::Debited { amount }
                        }
                        DebitAnswer::InsufficientFunds => DebitOutcome::InsufficientFunds,
                        DebitAnswer::Refused => DebitOutcome::Refused,
                        DebitAnswer::Pending => {
                            let ack =
                                server::build_provisional_ack(&record, &request, &keys.grant)?;
                            record.pending_request = Some(request.to_bytes());
                            Self::save(tx, &record)?;
                            return Ok(Ok(Answer::Pending {
                                provisional_ack: ack.to_vec(),
                                module_id: id_hex(&request.module_id),
                                n: request.n,
                            }));
                        }
                        DebitAnswer::Unavailable(why) => {
                            return Err(StoreError::AuthorityUnavailable(why.clone()));
                        }
                    };
                    let grant = server::finish_fresh(&mut record, &request, outcome, &keys.grant)?;
                    Self::save(tx, &record)?;
                    Ok(Ok(Answer::Fresh(grant.to_vec())))
                }
            }
        });
        settle(second).map(|answer| (answer, None))
    }

    /// `GET /v1/reload/{module_id}/{n}`: the answer to request `n` of module `id` — the stored
    /// grant when it is the last one answered, or (for a request left pending at the
    /// authority) the authority asked again: the grant once the debit settled, else the
    /// provisional ack again. The request is replayed exactly as the module sent it, so every
    /// rule of [`Store::reload`] applies.
    pub fn reload_result(
        &self,
        id: &str,
        n: u32,
    ) -> Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)> {
        let module_id = Self::parse_id(id).map_err(|e| (e, None))?;
        let hex_id = id_hex(&module_id);
        let found = self.transact(Mode::Read, |tx| {
            let Some((record, _)) = Self::load(tx, &hex_id)? else {
                return Err(StoreError::NoSuchModule(hex_id.clone()));
            };
            let with_n = |r: &Option<[u8; ReloadRequest::LEN]>| {
                r.filter(|b| ReloadRequest::parse(b).is_ok_and(|q| q.n == n))
            };
            // A pending request is replayed only while it is still fresh (N = S): after an
            // operator's resync it would be out of the window, and a poll must never register
            // a fraud event.
            let pending = with_n(&record.pending_request).filter(|_| n == record.s);
            Ok(with_n(&record.last_request).or(pending))
        });
        match found {
            Ok(Some(request)) => self.reload(&request),
            Ok(None) => Err((
                StoreError::UnknownReload {
                    module_id: hex_id,
                    n,
                },
                None,
            )),
            Err(e) => Err((e, None)),
        }
    }

    /// Handles a completion ack in one transaction.
    pub fn completion(&self, bytes: &[u8]) -> Result<Completion, (StoreError, Option<FraudEvent>)> {
        let parsed = CompletionAck::parse(bytes)
            .map_err(|e| (StoreError::Rejected(Rejection::Malformed(e)), None))?;
        let id = id_hex(&parsed.module_id);
        let result = self.transact(Mode::Write, |tx| {
            let (record, _) = Self::load_named(tx, &id, parsed.module_id)?;
            let keys = self.module_keys(&record)?;
            let before = record.completed_through;
            let mut checked = record.clone();
            match server::handle_completion(&mut checked, bytes, &keys.request) {
                Err(r) => Ok(Err(settle_registered(Self::register(tx, record, r)?))),
                Ok(ack) => {
                    if let Some(mismatch) = ack_mismatch(&record, &ack) {
                        // Authenticated, but not the grant the server signed: registered as a
                        // window event, like a request that differs from the one answered.
                        let rejection = Rejection::ReplayMismatch { n: ack.n_next };
                        let (_, event) = Self::register(tx, record, rejection)?;
                        return Ok(Err((mismatch, event)));
                    }
                    Self::save(tx, &checked)?;
                    Ok(Ok(if before == checked.completed_through {
                        Completion::AlreadyAccepted
                    } else {
                        Completion::Accepted
                    }))
                }
            }
        });
        match result {
            Ok(done) => done,
            Err(e) => Err((e, None)),
        }
    }
}
