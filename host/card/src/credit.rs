//! The credit-module client: one method per command of `applet-spec/credit-module.md` §4,
//! returning typed results.
//!
//! Commands are built by `simkit_core::credit::commands` and responses decoded by the core
//! codecs; this module adds only what needs a card: sending through a [`Channel`], checking
//! each response length against the spec ([`CardError::UnexpectedResponse`]), and the one
//! piece of recovery the protocol asks of the appliance — an APPLY GRANT answered `9C04`
//! (already applied) fetches the stored completion ack, so re-running an interrupted reload
//! finishes without a double credit ([`ApplyOutcome::AlreadyApplied`]).
//!
//! It must not check MACs or decide anything about the protocol: the module and the server do.

use simkit_core::apdu::Command;
use simkit_core::credit::commands::{self, INS_TABLE, PersonalisationData};
use simkit_core::credit::message::{CompletionAck, ReloadGrant, ReloadRequest};
use simkit_core::credit::module::{FRAUD_LOG_LEN, FraudEntry, SERVER_ADDRESS_MAX, Status};
use simkit_core::status::Sw;

use crate::channel::Channel;
use crate::error::CardError;
use crate::transport::Card;

mod error;

pub use error::{CreditClientError, ResponseFormatError};

/// What APPLY GRANT came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The grant was applied now; the module's completion ack.
    Applied(CompletionAck),
    /// The module had applied this grant before (`9C04`) and changed nothing; the completion
    /// ack it stored then (byte for byte the one it sent the first time).
    AlreadyApplied(CompletionAck),
}

impl ApplyOutcome {
    /// The completion ack, either way.
    pub fn ack(&self) -> &CompletionAck {
        match self {
            ApplyOutcome::Applied(a) | ApplyOutcome::AlreadyApplied(a) => a,
        }
    }
}

/// A credit-module session over a [`Channel`]. Select the applet first ([`select`](Self::select)).
pub struct CreditClient<'c, C: Card> {
    channel: &'c mut Channel<C>,
}

/// The spec's name of a command, from the core INS table (one source for the names).
fn name(ins: u8) -> &'static str {
    INS_TABLE
        .iter()
        .find(|(i, _)| *i == ins)
        .map_or("credit-module command", |(_, n)| *n)
}

impl<'c, C: Card> CreditClient<'c, C> {
    /// A client sending through `channel`.
    pub fn new(channel: &'c mut Channel<C>) -> Self {
        CreditClient { channel }
    }

    /// The channel, e.g. to reach the card's simulator controls.
    pub fn channel(&mut self) -> &mut Channel<C> {
        self.channel
    }

    fn send(&mut self, cmd: &Command) -> Result<Vec<u8>, CreditClientError> {
        Ok(self.channel.transmit_ok(name(cmd.ins), cmd)?)
    }

    /// Sends `cmd` and requires exactly `len` response bytes (`len_text` for the error).
    fn send_exact(
        &mut self,
        cmd: &Command,
        len: usize,
        len_text: &'static str,
    ) -> Result<Vec<u8>, CreditClientError> {
        let data = self.send(cmd)?;
        if data.len() == len {
            Ok(data)
        } else {
            Err(CardError::UnexpectedResponse {
                command: name(cmd.ins),
                expected: len_text,
                got: data.len(),
            }
            .into())
        }
    }

    fn send_empty(&mut self, cmd: &Command) -> Result<(), CreditClientError> {
        self.send_exact(cmd, 0, "0").map(drop)
    }

    /// §4.1 SELECT the credit module.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6A82`/`6999` when the applet is not installed), transport errors.
    pub fn select(&mut self) -> Result<(), CreditClientError> {
        self.send_empty(&commands::select())
    }

    /// §4.2 GET STATUS: lifecycle, identity, balance, N, limits, flags, fraud counters.
    ///
    /// # Errors
    /// [`CardError::UnexpectedResponse`] unless 49 bytes, [`CreditClientError::Malformed`],
    /// [`CardError::Status`], transport errors.
    pub fn status(&mut self) -> Result<Status, CreditClientError> {
        let cmd = commands::get_status();
        let data = self.send_exact(&cmd, Status::LEN, "49")?;
        Status::parse(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §4.3 GET SERVER ADDRESS: the stored address bytes (0..=64).
    ///
    /// # Errors
    /// [`CardError::UnexpectedResponse`] above 64 bytes, [`CardError::Status`], transport
    /// errors.
    pub fn server_address(&mut self) -> Result<Vec<u8>, CreditClientError> {
        let cmd = commands::get_server_address();
        let data = self.send(&cmd)?;
        if data.len() > SERVER_ADDRESS_MAX {
            return Err(CardError::UnexpectedResponse {
                command: name(cmd.ins),
                expected: "0..=64",
                got: data.len(),
            }
            .into());
        }
        Ok(data)
    }

    /// §4.4 INITIATE RELOAD for `requested` credits: the module's MAC'd reload request (the
    /// pending one, byte for byte, when the same amount is already pending). Its
    /// [`to_bytes`](ReloadRequest::to_bytes) is what goes to the server.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9C01` out of range, `9C02` another amount pending, `9C0C`
    /// counter exhausted, …), [`CardError::UnexpectedResponse`] unless 31 bytes,
    /// [`CreditClientError::Malformed`], transport errors.
    pub fn initiate_reload(&mut self, requested: u32) -> Result<ReloadRequest, CreditClientError> {
        let cmd = commands::initiate_reload(requested);
        let data = self.send_exact(&cmd, ReloadRequest::LEN, "31")?;
        ReloadRequest::parse(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §4.5 APPLY GRANT with the server's grant bytes (any bytes: conformance suites send
    /// malformed ones).
    ///
    /// Answered `9C04` (this grant was applied before), it fetches the stored completion ack
    /// with GET LAST COMPLETION (§4.7) and returns [`ApplyOutcome::AlreadyApplied`]: the
    /// module changed nothing and the ack is the one it sent the first time.
    ///
    /// # Errors
    /// [`CardError::Status`] for every other refusal (`6982` bad tag, `9C05` out of window,
    /// `9C06` beyond limits, …), and for `9C04` when the stored ack is not for this grant;
    /// [`CardError::UnexpectedResponse`] unless 40 bytes; [`CreditClientError::Malformed`];
    /// transport errors.
    pub fn apply_grant(&mut self, grant: &[u8]) -> Result<ApplyOutcome, CreditClientError> {
        let cmd = commands::apply_grant(grant);
        match self.send_exact(&cmd, CompletionAck::LEN, "40") {
            Ok(data) => {
                let ack = CompletionAck::parse(&data).map_err(|e| malformed(&cmd, e))?;
                Ok(ApplyOutcome::Applied(ack))
            }
            Err(CreditClientError::Card(CardError::Status {
                sw: Sw::GrantAlreadyApplied,
                command,
            })) => {
                let ack = self.last_completion()?;
                // The module answers 9C04 only for the grant whose tag it stored with the ack.
                let grant_tag = grant.get(ReloadGrant::LEN - 8..ReloadGrant::LEN);
                if grant.len() == ReloadGrant::LEN && grant_tag == Some(&ack.grant_tag[..]) {
                    Ok(ApplyOutcome::AlreadyApplied(ack))
                } else {
                    Err(CardError::Status {
                        sw: Sw::GrantAlreadyApplied,
                        command,
                    }
                    .into())
                }
            }
            Err(e) => Err(e),
        }
    }

    /// §4.6 APPLY PROVISIONAL ACK (lets the balance go down to −L while a slow debit is
    /// pending).
    ///
    /// # Errors
    /// [`CardError::Status`] (`6982`, `9C03`, `9C05`, `9C0A`, …), [`CardError::UnexpectedResponse`]
    /// if data comes back, transport errors.
    pub fn apply_provisional_ack(&mut self, ack: &[u8]) -> Result<(), CreditClientError> {
        self.send_empty(&commands::apply_provisional_ack(ack))
    }

    /// §4.7 GET LAST COMPLETION: the stored completion ack of the last applied grant.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6A88` when there is none), [`CardError::UnexpectedResponse`]
    /// unless 40 bytes, [`CreditClientError::Malformed`], transport errors.
    pub fn last_completion(&mut self) -> Result<CompletionAck, CreditClientError> {
        let cmd = commands::get_last_completion();
        let data = self.send_exact(&cmd, CompletionAck::LEN, "40")?;
        CompletionAck::parse(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §4.8 DEBIT `amount` credits; returns the new balance.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9C07` insufficient balance, `6A80` amount out of range),
    /// [`CardError::UnexpectedResponse`] unless 4 bytes, transport errors.
    pub fn debit(&mut self, amount: u32) -> Result<i32, CreditClientError> {
        let data = self.send_exact(&commands::debit(amount), 4, "4")?;
        let bytes: [u8; 4] =
            data.as_slice()
                .try_into()
                .map_err(|_| CardError::UnexpectedResponse {
                    command: name(commands::INS_DEBIT),
                    expected: "4",
                    got: data.len(),
                })?;
        Ok(i32::from_be_bytes(bytes))
    }

    /// §4.9 APPLY LIMIT UPDATE with the server's update bytes.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6982`, `9C09` replayed, `9C0B` invalid limits, …),
    /// [`CardError::UnexpectedResponse`] if data comes back, transport errors.
    pub fn apply_limit_update(&mut self, update: &[u8]) -> Result<(), CreditClientError> {
        self.send_empty(&commands::apply_limit_update(update))
    }

    /// §4.10 GET FRAUD LOG: up to 8 entries, newest first.
    ///
    /// # Errors
    /// [`CardError::UnexpectedResponse`] unless `1 + 9 × count` bytes with count ≤ 8,
    /// [`CreditClientError::Malformed`] for an unknown kind, [`CardError::Status`], transport
    /// errors.
    pub fn fraud_log(&mut self) -> Result<Vec<FraudEntry>, CreditClientError> {
        let cmd = commands::get_fraud_log();
        let data = self.send(&cmd)?;
        let count = data.first().map_or(0, |&c| usize::from(c));
        if data.is_empty() || count > FRAUD_LOG_LEN || data.len() != 1 + count * FraudEntry::LEN {
            return Err(CardError::UnexpectedResponse {
                command: name(cmd.ins),
                expected: "1 + 9 × count (count ≤ 8)",
                got: data.len(),
            }
            .into());
        }
        FraudEntry::parse_log(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §4.11 PERSONALISE with any subset of the personalisation objects (one transaction on
    /// the card).
    ///
    /// # Errors
    /// [`CardError::Status`] (`6985` after LOCK or keys before the profile, `6A80` bad TLV,
    /// `9C0B` invalid limits or balance), [`CardError::UnexpectedResponse`] if data comes
    /// back, transport errors.
    pub fn personalise(&mut self, data: &PersonalisationData) -> Result<(), CreditClientError> {
        self.send_empty(&commands::personalise(data))
    }

    /// §4.12 LOCK: personalisation → operational, one way.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9C0D` personalisation incomplete, `6985` already locked),
    /// [`CardError::UnexpectedResponse`] if data comes back, transport errors.
    pub fn lock(&mut self) -> Result<(), CreditClientError> {
        self.send_empty(&commands::lock())
    }
}

fn malformed(cmd: &Command, e: impl Into<ResponseFormatError>) -> CreditClientError {
    CreditClientError::Malformed {
        command: name(cmd.ins),
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::ScriptedCard;
    use simkit_core::apdu::LengthEncoding;
    use simkit_core::credit::message::GrantStatus;
    use simkit_core::credit::module::{Lifecycle, Module};
    use simkit_core::credit::{Limits, server};
    use simkit_core::crypto::{ModuleKeys, Profile, SecretKey};
    use simkit_core::hexutil::to_hex;

    fn wire(cmd: &Command) -> Vec<u8> {
        cmd.to_bytes(LengthEncoding::Auto).unwrap()
    }

    const ID: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn limits() -> Limits {
        Limits {
            min_reload: 1,
            max_reload: 1000,
            upper: 5000,
            credit_line: 100,
        }
    }

    /// A personalised, locked model module (the core's reference state machine) and its keys.
    fn model() -> (Module, ModuleKeys) {
        let keys = ModuleKeys {
            request: SecretKey::new(&[0x11; 16]),
            grant: SecretKey::new(&[0x22; 16]),
        };
        let data = PersonalisationData::complete(Profile::AesCmac, ID, &keys, limits(), 3);
        let mut m = Module::new();
        m.personalise(&data.to_tlv()).unwrap();
        m.lock().unwrap();
        (m, keys)
    }

    fn ok(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend_from_slice(&[0x90, 0x00]);
        v
    }

    #[test]
    fn names_come_from_the_ins_table() {
        assert_eq!(name(commands::INS_APPLY_GRANT), "APPLY GRANT");
        assert_eq!(name(commands::INS_LOCK), "LOCK");
        assert_eq!(name(0xFF), "credit-module command");
    }

    #[test]
    fn status_and_length_checks() {
        let (m, _) = model();
        let status = m.status().to_bytes();
        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::select()), [0x90, 0x00])
            .then_bytes(wire(&commands::get_status()), ok(&status))
            .then_bytes(wire(&commands::get_status()), ok(&status[..48]))
            .then_bytes(wire(&commands::initiate_reload(5)), ok(&[0u8; 30]))
            .then_bytes(wire(&commands::lock()), [0x69, 0x85]);
        let mut ch = Channel::new(card);
        let mut c = CreditClient::new(&mut ch);
        c.select().unwrap();
        let s = c.status().unwrap();
        assert_eq!(
            (s.lifecycle, s.module_id, s.limits),
            (Lifecycle::Operational, ID, limits())
        );
        let e = c.status().unwrap_err();
        assert_eq!(
            e.to_string(),
            "GET STATUS: expected 49 response bytes, got 48"
        );
        let e = c.initiate_reload(5).unwrap_err();
        assert!(
            matches!(
                e,
                CreditClientError::Card(CardError::UnexpectedResponse {
                    command: "INITIATE RELOAD",
                    expected: "31",
                    got: 30
                })
            ),
            "{e}"
        );
        let e = c.lock().unwrap_err();
        assert_eq!(e.to_string(), "LOCK: 6985 conditions of use not satisfied");
        ch.card().finish().unwrap();
    }

    #[test]
    fn malformed_status_is_reported() {
        let mut bytes = [0u8; 49];
        bytes[0] = 0x07;
        let card = ScriptedCard::empty().then_bytes(wire(&commands::get_status()), ok(&bytes));
        let mut ch = Channel::new(card);
        let e = CreditClient::new(&mut ch).status().unwrap_err();
        assert_eq!(
            e.to_string(),
            "GET STATUS: malformed response: byte 0 (lifecycle) is 07, expected 01..03"
        );
    }

    /// A reload round against a scripted card whose answers come from the core model, then the
    /// replayed grant: 9C04, GET LAST COMPLETION, AlreadyApplied with the identical ack.
    #[test]
    fn reload_round_and_replayed_grant() {
        let (mut m, keys) = model();
        let mut record = server::ServerRecord::new(ID, Profile::AesCmac, 0, limits(), 3);
        let request = m.initiate_reload(300).unwrap();
        let grant_bytes = server_grant(&mut record, &keys, &request);
        let ack = m.apply_grant(&grant_bytes).unwrap();
        let replay = m.apply_grant(&grant_bytes).unwrap_err();
        assert_eq!(replay.sw(), Sw::GrantAlreadyApplied);

        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::initiate_reload(300)), ok(&request))
            .then_bytes(wire(&commands::apply_grant(&grant_bytes)), ok(&ack))
            .then_bytes(wire(&commands::apply_grant(&grant_bytes)), [0x9C, 0x04])
            .then_bytes(wire(&commands::get_last_completion()), ok(&ack));
        let mut ch = Channel::new(card);
        let mut c = CreditClient::new(&mut ch);
        let req = c.initiate_reload(300).unwrap();
        assert_eq!(req.to_bytes(), request);
        assert!(req.verify(&keys.request).unwrap());
        let first = c.apply_grant(&grant_bytes).unwrap();
        let ApplyOutcome::Applied(a) = &first else {
            panic!("{first:?}")
        };
        assert_eq!(a.to_bytes(), ack);
        assert_eq!((a.granted, a.balance, a.n_next), (300, 300, 1));
        let again = c.apply_grant(&grant_bytes).unwrap();
        assert_eq!(again, ApplyOutcome::AlreadyApplied(a.clone()));
        assert_eq!(again.ack().to_bytes(), ack);
        ch.card().finish().unwrap();
    }

    #[test]
    fn already_applied_for_another_grant_stays_an_error() {
        let (mut m, keys) = model();
        let mut record = server::ServerRecord::new(ID, Profile::AesCmac, 0, limits(), 3);
        let request = m.initiate_reload(300).unwrap();
        let grant = server_grant(&mut record, &keys, &request);
        let ack = m.apply_grant(&grant).unwrap();
        let mut other = grant;
        other[36] ^= 1;
        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::apply_grant(&other)), [0x9C, 0x04])
            .then_bytes(wire(&commands::get_last_completion()), ok(&ack));
        let mut ch = Channel::new(card);
        let e = CreditClient::new(&mut ch).apply_grant(&other).unwrap_err();
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 9C04 grant already applied; nothing changed"
        );
    }

    #[test]
    fn debit_fraud_log_and_address() {
        let mut log = vec![2u8];
        log.extend_from_slice(&[0x01, 0, 0, 0, 1, 0, 0, 0, 9]);
        log.extend_from_slice(&[0x02, 0, 0, 0, 1, 0, 0, 0, 5]);
        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::debit(5)), ok(&[0xFF, 0xFF, 0xFF, 0xFB]))
            .then_bytes(wire(&commands::get_fraud_log()), ok(&log))
            .then_bytes(wire(&commands::get_fraud_log()), ok(&log[..10]))
            .then_bytes(wire(&commands::get_server_address()), ok(b"https://r"))
            .then_bytes(wire(&commands::get_server_address()), ok(&[0x41; 65]));
        let mut ch = Channel::new(card);
        let mut c = CreditClient::new(&mut ch);
        assert_eq!(c.debit(5).unwrap(), -5);
        let entries = c.fraud_log().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].carried, 9);
        assert!(matches!(
            c.fraud_log().unwrap_err(),
            CreditClientError::Card(CardError::UnexpectedResponse { got: 10, .. })
        ));
        assert_eq!(c.server_address().unwrap(), b"https://r");
        assert!(matches!(
            c.server_address().unwrap_err(),
            CreditClientError::Card(CardError::UnexpectedResponse { got: 65, .. })
        ));
        ch.card().finish().unwrap();
    }

    /// What the server answers a fresh request, by the core policy.
    pub(crate) fn server_grant(
        record: &mut server::ServerRecord,
        keys: &ModuleKeys,
        request: &[u8],
    ) -> [u8; ReloadGrant::LEN] {
        let action = server::classify_request(record, request, &keys.request).unwrap();
        let server::RequestAction::Fresh { request, decision } = action else {
            panic!("not fresh: {action:?}")
        };
        let outcome = match decision {
            server::FreshDecision::Debit { amount } => server::DebitOutcome::Debited { amount },
            server::FreshDecision::Decline(reason) => server::DebitOutcome::Declined(reason),
        };
        let grant = server::finish_fresh(record, &request, outcome, &keys.grant).unwrap();
        let parsed = ReloadGrant::parse(&grant).unwrap();
        assert_eq!(parsed.status, GrantStatus::Granted, "{}", to_hex(&grant));
        grant
    }
}
