//! Attacks on the credit module (BRIEF §7), each against the real applet on the card host and
//! for every crypto profile: a grant for another module, a request reflected as a grant or a
//! provisional ack, forged and truncated tags, the transaction number at 2^32−2 and 2^32−1,
//! balances and limits at their edges (with the wide-arithmetic cases near 2^31), amounts
//! outside the range, personalisation after LOCK, the MAC-check oracle capped by blocking, and
//! power cuts: with rollback every persistent write of APPLY GRANT, APPLY LIMIT UPDATE and DEBIT
//! leaves the old or the new state; without rollback (plain jCardSim) APPLY GRANT's writes do
//! leave mixed states, which shows that the tear walk can see one.
//!
//! Status words are asserted exactly (`CardError::Status`), and state through GET STATUS and
//! GET FRAUD LOG. Needs the card host jar, which ships the credit module (`mvn -B -q -f
//! applets/pom.xml package -DskipTests`).

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Debug;
use std::sync::Arc;

use simkit_card::credit::{ApplyOutcome, CreditClient, CreditClientError};
use simkit_card::jcardsim::CardHostProcess;
use simkit_card::{
    AppletSpec, Card, CardError, CardHostConfig, CardSpec, Channel, JcardsimCard, SimulatorControl,
};
use simkit_core::apdu::Command;
use simkit_core::credit::commands::{
    APPLET_AID, CLA, INS_PERSONALISE, InitialCounters, PACKAGE_AID, PersonalisationData,
};
use simkit_core::credit::message::{
    GrantStatus, LimitUpdate, MessageType, ProvisionalAck, ReloadGrant, ReloadRequest,
};
use simkit_core::credit::module::{FraudEntry, Lifecycle, Status};
use simkit_core::credit::{FraudKind, Limits, ModuleId, Tag, server};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey, derive_module_keys};
use simkit_core::status::Sw;

const CLASS: &str = "dev.simkit.credit.CreditModule";
/// Offset of the type byte in every message header (spec §3.1).
const OFF_TYPE: usize = 1;
/// Offset of the module id in every message header.
const OFF_MODULE_ID: usize = 3;
/// Offset of the tag in a grant (spec §3.3).
const GRANT_OFF_TAG: usize = 29;
/// Offset of G in a grant.
const GRANT_OFF_G: usize = 17;
/// Largest value of a positive i32 amount (2^31−1).
const I31: u32 = 0x7FFF_FFFF;
/// 2^31: the smallest u32 that is not a valid amount.
const TWO_31: u32 = 0x8000_0000;

// ---- host and cards --------------------------------------------------------------------------

/// A card host with `cards` credit-module cards.
fn spawn(cards: usize, no_rollback: bool) -> Arc<CardHostProcess> {
    let config = CardHostConfig {
        cards: vec![CardSpec::new([AppletSpec::new(APPLET_AID.to_vec(), CLASS)])],
        copies: u32::try_from(cards).unwrap(),
        no_rollback,
        ..CardHostConfig::default()
    };
    CardHostProcess::spawn(config).unwrap_or_else(|e| {
        panic!("{e}\n(is the card host jar older than the credit module? rebuild it)")
    })
}

/// Runs `f` for every profile in parallel, each with its own `per_profile` cards of one host.
fn each_profile(per_profile: usize, no_rollback: bool, f: fn(Vec<JcardsimCard>, Profile)) {
    let host = spawn(per_profile * Profile::ALL.len(), no_rollback);
    let threads: Vec<_> = Profile::ALL
        .into_iter()
        .enumerate()
        .map(|(i, profile)| {
            let cards = (0..per_profile)
                .map(|j| {
                    host.card(u8::try_from(i * per_profile + j).unwrap())
                        .unwrap()
                })
                .collect();
            std::thread::Builder::new()
                .name(format!("{profile}"))
                .spawn(move || f(cards, profile))
                .unwrap()
        })
        .collect();
    let mut failed = Vec::new();
    for (t, profile) in threads.into_iter().zip(Profile::ALL) {
        if t.join().is_err() {
            failed.push(profile);
        }
    }
    assert!(
        failed.is_empty(),
        "failed for {failed:?} (see the panics above)"
    );
}

// ---- modules ---------------------------------------------------------------------------------

/// Everything one module is personalised with, and what the server and an attacker with the
/// module's keys (the tests) need to build messages for it.
#[derive(Clone, Debug)]
struct Module {
    profile: Profile,
    id: ModuleId,
    keys: ModuleKeys,
    limits: Limits,
    threshold: u16,
    balance: i32,
    n: u32,
}

fn limits(min_reload: u32, max_reload: u32, upper: i32, credit_line: i32) -> Limits {
    Limits {
        min_reload,
        max_reload,
        upper,
        credit_line,
    }
}

impl Module {
    /// Module `which` of `profile`: keys derived from a fixed master key, limits m = 10,
    /// M = 1000, U = 1 000 000, L = 500, threshold 50, balance 0, N = 0.
    fn new(profile: Profile, which: u8) -> Module {
        let id: ModuleId = [0x41, 0x54, 0x4B, 0x00, 0x00, 0x00, which, profile.id()];
        let master: Vec<u8> = (0..profile.master_key_len())
            .map(|i| 0x5A ^ u8::try_from(i).unwrap())
            .collect();
        Module {
            profile,
            id,
            keys: derive_module_keys(profile, &SecretKey::new(&master), &id).unwrap(),
            limits: limits(10, 1000, 1_000_000, 500),
            threshold: 50,
            balance: 0,
            n: 0,
        }
    }

    fn data(&self) -> PersonalisationData {
        let mut data = PersonalisationData::complete(
            self.profile,
            self.id,
            &self.keys,
            self.limits,
            self.threshold,
        );
        data.initial = Some(InitialCounters {
            balance: self.balance,
            n: self.n,
        });
        data.server_address = Some(b"https://reload.simkit.invalid/".to_vec());
        data
    }

    /// SELECT (the standard AID), PERSONALISE, LOCK, and checks what GET STATUS shows.
    fn install_on<C: Card>(&self, c: &mut CreditClient<'_, C>) {
        c.select().unwrap();
        self.personalise_selected(c);
    }

    /// PERSONALISE and LOCK the already selected instance.
    fn personalise_selected<C: Card>(&self, c: &mut CreditClient<'_, C>) {
        c.personalise(&self.data()).unwrap();
        c.lock().unwrap();
        let s = c.status().unwrap();
        assert_eq!(
            (s.lifecycle, s.profile, s.module_id),
            (Lifecycle::Operational, Some(self.profile), self.id)
        );
        assert_eq!(
            (s.balance, s.n, s.limits, s.threshold),
            (self.balance, self.n, self.limits, self.threshold)
        );
    }

    /// The reload server's registration of this module.
    fn server(&self) -> server::ServerRecord {
        server::ServerRecord::new(
            self.id,
            self.profile,
            self.n,
            self.limits,
            u32::from(self.threshold),
        )
    }

    /// A grant built and MAC'd with this module's grant key, with any field chosen.
    fn grant(&self, s_next: u32, status: GrantStatus, g: u32, request_tag: Tag) -> [u8; 37] {
        ReloadGrant::build(
            self.profile,
            self.id,
            s_next,
            status,
            g,
            request_tag,
            &self.keys.grant,
        )
        .unwrap()
        .to_bytes()
    }

    /// A limit update MAC'd with this module's grant key.
    fn limit_update(&self, sequence: u32, limits: Limits) -> [u8; LimitUpdate::LEN] {
        LimitUpdate::build(self.profile, self.id, sequence, limits, &self.keys.grant)
            .unwrap()
            .to_bytes()
    }
}

/// The grant the server's policy answers to a fresh request (spec §6 rule 3), granted or
/// declined as the policy decides.
fn server_grant(
    record: &mut server::ServerRecord,
    keys: &ModuleKeys,
    request: &ReloadRequest,
) -> [u8; ReloadGrant::LEN] {
    let action = server::classify_request(record, &request.to_bytes(), &keys.request).unwrap();
    let server::RequestAction::Fresh { request, decision } = action else {
        panic!("not fresh: {action:?}")
    };
    let outcome = match decision {
        server::FreshDecision::Debit { amount } => server::DebitOutcome::Debited { amount },
        server::FreshDecision::Decline(reason) => server::DebitOutcome::Declined(reason),
    };
    server::finish_fresh(record, &request, outcome, &keys.grant).unwrap()
}

/// Asserts that `r` is exactly the card's refusal `sw`.
#[track_caller]
fn expect_sw<T: Debug, E: Into<CreditClientError>>(r: Result<T, E>, sw: Sw, what: &str) {
    match r.map_err(Into::into) {
        Err(CreditClientError::Card(CardError::Status { sw: got, .. })) if got == sw => {}
        Err(CreditClientError::Card(CardError::Status { sw: got, command })) => {
            panic!("{what}: {command} answered {got}, expected {sw}")
        }
        other => panic!("{what}: expected {sw}, got {other:?}"),
    }
}

/// SELECT of an applet instance by AID (the extra instances of the tear walks).
fn select_aid<C: Card>(ch: &mut Channel<C>, aid: &[u8]) {
    ch.transmit_ok(
        "SELECT",
        &Command::new(0x00, 0xA4, 0x04, 0x00).data(aid.to_vec()),
    )
    .unwrap();
}

/// The part of the state one reload changes together (spec §5: "Balance, N, pending,
/// provisional and last completion change together in one transaction").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Core {
    balance: i32,
    n: u32,
    pending: bool,
    last_completion: bool,
}

impl Core {
    fn of(s: &Status) -> Core {
        Core {
            balance: s.balance,
            n: s.n,
            pending: s.pending,
            last_completion: s.last_completion,
        }
    }
}

/// A torn state is mixed when it is neither the state before the command nor the state after
/// it, both measured on untorn runs.
fn is_mixed(torn: Core, old: Core, new: Core) -> bool {
    torn != old && torn != new
}

// ---- 1. a grant for another module -------------------------------------------------------------

fn grant_for_another_module(cards: Vec<JcardsimCard>, profile: Profile) {
    let [card_a, card_b]: [JcardsimCard; 2] = cards.try_into().unwrap();
    let a = Module::new(profile, 0x0A);
    let b = Module::new(profile, 0x0B);
    assert_ne!(a.keys, b.keys, "{profile}: per-module keys");
    let (mut ch_a, mut ch_b) = (Channel::new(card_a), Channel::new(card_b));
    let mut ca = CreditClient::new(&mut ch_a);
    let mut cb = CreditClient::new(&mut ch_b);
    a.install_on(&mut ca);
    b.install_on(&mut cb);
    let (mut server_a, mut server_b) = (a.server(), b.server());

    // Both modules at the same N ask for the same amount: B's grant has A's S′ and amount.
    let req_a = ca.initiate_reload(100).unwrap();
    let req_b = cb.initiate_reload(100).unwrap();
    assert_eq!((req_a.n, req_b.n), (0, 0));
    let grant_a = server_grant(&mut server_a, &a.keys, &req_a);
    let grant_b = server_grant(&mut server_b, &b.keys, &req_b);
    let before = ca.status().unwrap();

    // B's grant as it is: another module id in the header → 9C0A, not registered.
    expect_sw(
        ca.apply_grant(&grant_b),
        Sw::MessageMismatch,
        "B's grant on A",
    );
    // B's grant bound to A's request (a validly MAC'd grant under B's key) → 9C0A as well.
    let bound = b.grant(1, GrantStatus::Granted, 100, req_a.tag);
    expect_sw(
        ca.apply_grant(&bound),
        Sw::MessageMismatch,
        "B's grant for A's request",
    );
    assert_eq!(
        ca.status().unwrap(),
        before,
        "{profile}: nothing registered"
    );
    assert!(ca.fraud_log().unwrap().is_empty());

    // Re-labelled with A's module id, B's tag no longer verifies under A's K_grant → 6982,
    // registered as a bad tag; so is a grant for A MAC'd with B's key.
    let mut relabelled = grant_b;
    relabelled[OFF_MODULE_ID..OFF_MODULE_ID + 8].copy_from_slice(&a.id);
    expect_sw(
        ca.apply_grant(&relabelled),
        Sw::SecurityStatusNotSatisfied,
        "B's grant with A's id",
    );
    let wrong_key = ReloadGrant::build(
        profile,
        a.id,
        1,
        GrantStatus::Granted,
        100,
        req_a.tag,
        &b.keys.grant,
    )
    .unwrap()
    .to_bytes();
    expect_sw(
        ca.apply_grant(&wrong_key),
        Sw::SecurityStatusNotSatisfied,
        "A's grant under B's key",
    );
    let s = ca.status().unwrap();
    assert_eq!(
        (s.balance, s.n, s.pending, s.pending_r),
        (0, 0, true, 100),
        "{profile}"
    );
    assert_eq!((s.bad_tags, s.window_events), (2, 0), "{profile}");
    let bad = FraudEntry {
        kind: FraudKind::BadTag,
        module_n: 0,
        carried: 1,
    };
    assert_eq!(ca.fraud_log().unwrap(), [bad, bad]);

    // Each module takes its own grant, once.
    assert!(matches!(
        ca.apply_grant(&grant_a).unwrap(),
        ApplyOutcome::Applied(_)
    ));
    assert!(matches!(
        cb.apply_grant(&grant_b).unwrap(),
        ApplyOutcome::Applied(_)
    ));
    expect_sw(
        ca.apply_grant(&grant_b),
        Sw::MessageMismatch,
        "B's grant on A after A's round",
    );
    for c in [&mut ca, &mut cb] {
        let s = c.status().unwrap();
        assert_eq!((s.balance, s.n, s.pending), (100, 1, false), "{profile}");
    }
}

#[test]
fn grant_for_another_module_is_refused() {
    each_profile(2, false, grant_for_another_module);
}

// ---- 2. a request reflected as a grant --------------------------------------------------------

fn request_reflected(cards: Vec<JcardsimCard>, profile: Profile) {
    let m = Module::new(profile, 2);
    let mut ch = Channel::new(cards.into_iter().next().unwrap());
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let request = c.initiate_reload(100).unwrap();
    let req = request.to_bytes();
    let before = c.status().unwrap();

    // The request as it is: 31 bytes where a grant has 37 → 6700.
    expect_sw(c.apply_grant(&req), Sw::WrongLength, "request as grant");
    // Padded to 37 bytes, still type 01 → 9C0A (header, step 1).
    let mut padded = [0u8; ReloadGrant::LEN];
    padded[..ReloadRequest::LEN].copy_from_slice(&req);
    expect_sw(
        c.apply_grant(&padded),
        Sw::MessageMismatch,
        "padded request",
    );
    // As a provisional ack (also 31 bytes), type 01 → 9C0A.
    expect_sw(
        c.apply_provisional_ack(&req),
        Sw::MessageMismatch,
        "request as provisional ack",
    );
    assert_eq!(c.status().unwrap(), before, "{profile}: nothing registered");

    // Re-labelled with the grant type, the header passes and the tag check (step 2) refuses:
    // 6982, registered. Padded with zeros, and with the request's own tag moved to where a
    // grant's tag is.
    padded[OFF_TYPE] = MessageType::Grant.code();
    expect_sw(
        c.apply_grant(&padded),
        Sw::SecurityStatusNotSatisfied,
        "re-labelled request, zero padded",
    );
    let mut moved = [0u8; ReloadGrant::LEN];
    moved[..23].copy_from_slice(&req[..23]);
    moved[GRANT_OFF_TAG..].copy_from_slice(&request.tag);
    moved[OFF_TYPE] = MessageType::Grant.code();
    expect_sw(
        c.apply_grant(&moved),
        Sw::SecurityStatusNotSatisfied,
        "re-labelled request, tag moved",
    );
    let mut as_ack = req;
    as_ack[OFF_TYPE] = MessageType::ProvisionalAck.code();
    expect_sw(
        c.apply_provisional_ack(&as_ack),
        Sw::SecurityStatusNotSatisfied,
        "request re-labelled as provisional ack",
    );

    // Nothing credited, no credit line opened, the request still pending.
    let s = c.status().unwrap();
    assert_eq!(
        (s.balance, s.n, s.pending, s.pending_r, s.provisional),
        (0, 0, true, 100, false),
        "{profile}"
    );
    assert_eq!((s.bad_tags, s.window_events), (3, 0), "{profile}");
    assert_eq!(c.fraud_log().unwrap().len(), 3);
    expect_sw(c.debit(1), Sw::InsufficientBalance, "debit below 0");
    // The same request bytes come back, and the server's grant still applies.
    assert_eq!(c.initiate_reload(100).unwrap().to_bytes(), req);
    let grant = server_grant(&mut m.server(), &m.keys, &request);
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, 100);
}

#[test]
fn request_reflected_as_grant_is_refused() {
    each_profile(1, false, request_reflected);
}

// ---- 3. forged and truncated tags --------------------------------------------------------------

fn forged_and_truncated(cards: Vec<JcardsimCard>, profile: Profile) {
    let m = Module::new(profile, 3);
    let mut ch = Channel::new(cards.into_iter().next().unwrap());
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let request = c.initiate_reload(100).unwrap();
    let grant = server_grant(&mut m.server(), &m.keys, &request);
    let before = c.status().unwrap();

    // Each tag byte flipped: 6982 every time, the bad-tag counter counts each one.
    for i in 0..8 {
        let mut forged = grant;
        forged[GRANT_OFF_TAG + i] ^= 0xFF;
        expect_sw(
            c.apply_grant(&forged),
            Sw::SecurityStatusNotSatisfied,
            &format!("{profile}: tag byte {i} flipped"),
        );
        let s = c.status().unwrap();
        assert_eq!(
            (s.bad_tags, s.window_events, s.lifecycle),
            (u16::try_from(i + 1).unwrap(), 0, Lifecycle::Operational),
            "{profile} byte {i}"
        );
        assert_eq!(
            (s.balance, s.n, s.pending),
            (before.balance, before.n, true)
        );
    }
    // A signed byte changed (G = 101) with the original tag: the same.
    let mut bigger = grant;
    bigger[GRANT_OFF_G + 3] ^= 0x01;
    expect_sw(
        c.apply_grant(&bigger),
        Sw::SecurityStatusNotSatisfied,
        "G changed",
    );
    assert_eq!(c.status().unwrap().bad_tags, 9);
    // The log keeps the last 8 events, all bad tags at N = 0 carrying S′ = 1.
    let bad = FraudEntry {
        kind: FraudKind::BadTag,
        module_n: 0,
        carried: 1,
    };
    let log = c.fraud_log().unwrap();
    assert_eq!(log, [bad; 8], "{profile}");

    // Truncated to 36 bytes, or one byte too long: 6700, not registered.
    expect_sw(c.apply_grant(&grant[..36]), Sw::WrongLength, "36 bytes");
    let mut long = grant.to_vec();
    long.push(0);
    expect_sw(c.apply_grant(&long), Sw::WrongLength, "38 bytes");
    let s = c.status().unwrap();
    assert_eq!((s.bad_tags, s.window_events), (9, 0), "{profile}");
    assert_eq!(c.fraud_log().unwrap(), log);

    // The genuine grant still applies, exactly once.
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, 100);
    let s = c.status().unwrap();
    assert_eq!((s.balance, s.n, s.pending), (100, 1, false), "{profile}");
}

#[test]
fn forged_and_truncated_tags_are_registered() {
    each_profile(1, false, forged_and_truncated);
}

// ---- 4. the transaction number at 2^32−2 and 2^32−1 -----------------------------------------------

fn counter_edge(cards: Vec<JcardsimCard>, profile: Profile) {
    let m = Module {
        n: u32::MAX - 1,
        ..Module::new(profile, 4)
    };
    let mut ch = Channel::new(cards.into_iter().next().unwrap());
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let mut record = m.server();

    // N = 2^32−2: one more round works and leaves N = 2^32−1.
    let request = c.initiate_reload(100).unwrap();
    assert_eq!(request.n, u32::MAX - 1);
    let grant = server_grant(&mut record, &m.keys, &request);
    assert_eq!(ReloadGrant::parse(&grant).unwrap().s_next, u32::MAX);
    let ApplyOutcome::Applied(ack) = c.apply_grant(&grant).unwrap() else {
        panic!("{profile}: not applied")
    };
    assert_eq!((ack.n_next, ack.balance), (u32::MAX, 100));
    server::handle_completion(&mut record, &ack.to_bytes(), &m.keys.request).unwrap();
    let s = c.status().unwrap();
    assert_eq!(
        (s.lifecycle, s.n, s.balance, s.pending),
        (Lifecycle::Operational, u32::MAX, 100, false)
    );
    // The replay is still recognised, and a validly MAC'd grant with the wrapped S′ = 0 is
    // out of the window (S′ is compared wide): N never wraps.
    assert_eq!(
        c.apply_grant(&grant).unwrap(),
        ApplyOutcome::AlreadyApplied(ack.clone())
    );
    let wrapped = m.grant(0, GrantStatus::Granted, 100, request.tag);
    expect_sw(
        c.apply_grant(&wrapped),
        Sw::TransactionOutOfWindow,
        "S′ = 0 at N = 2^32−1",
    );
    // Debits still work until the next INITIATE RELOAD.
    assert_eq!(c.debit(10).unwrap(), 90);

    // The next INITIATE RELOAD blocks the module: 9C0C, then 9C08 for everything but reads.
    expect_sw(
        c.initiate_reload(100),
        Sw::CounterExhausted,
        "INITIATE at 2^32−1",
    );
    let s = c.status().unwrap();
    assert_eq!(
        (s.lifecycle, s.n, s.balance, s.pending, s.window_events),
        (Lifecycle::Blocked, u32::MAX, 90, false, 1),
        "{profile}"
    );
    expect_sw(c.debit(10), Sw::ModuleBlocked, "DEBIT when blocked");
    expect_sw(
        c.initiate_reload(100),
        Sw::ModuleBlocked,
        "INITIATE when blocked",
    );
    expect_sw(
        c.apply_grant(&grant),
        Sw::ModuleBlocked,
        "APPLY GRANT when blocked",
    );
    assert_eq!(c.last_completion().unwrap(), ack);
    // Still blocked, with N = 2^32−1, after a reset.
    c.channel().card_mut().reset().unwrap();
    c.select().unwrap();
    let after = c.status().unwrap();
    assert_eq!(after, s, "{profile}");
    // The server has no number left for it either.
    assert_eq!(record.s, u32::MAX);
}

#[test]
fn counter_at_2_32_minus_2_and_minus_1() {
    each_profile(1, false, counter_edge);
}

// ---- 5. balance at the upper limit and the credit line ---------------------------------------------

fn upper_limit_and_credit_line(c: &mut CreditClient<'_, JcardsimCard>, profile: Profile) {
    let m = Module {
        limits: limits(10, 1000, 1000, 500),
        balance: 950,
        ..Module::new(profile, 5)
    };
    m.install_on(c);
    let mut record = m.server();

    // B = U − 50: 51 is out of range, 50 is the largest reload; the grant lands exactly on U.
    assert_eq!(c.status().unwrap().allowed_range(), Some((10, 50)));
    expect_sw(
        c.initiate_reload(51),
        Sw::ReloadAmountOutOfRange,
        "B + 51 > U",
    );
    assert!(!c.status().unwrap().pending);
    let request = c.initiate_reload(50).unwrap();
    let grant = server_grant(&mut record, &m.keys, &request);
    assert_eq!(ReloadGrant::parse(&grant).unwrap().granted, 50);
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, 1000);
    assert_eq!(c.status().unwrap().allowed_range(), None);
    expect_sw(c.initiate_reload(10), Sw::ReloadAmountOutOfRange, "at U");

    // With a provisional ack the balance goes down to exactly −L, not one credit further.
    assert_eq!(c.debit(100).unwrap(), 900);
    let request = c.initiate_reload(100).unwrap();
    expect_sw(
        c.debit(901),
        Sw::InsufficientBalance,
        "below 0 before the ack",
    );
    let ack = server::build_provisional_ack(&record, &request, &m.keys.grant).unwrap();
    c.apply_provisional_ack(&ack).unwrap();
    assert!(c.status().unwrap().provisional);
    assert_eq!(c.debit(1400).unwrap(), -500);
    expect_sw(c.debit(1), Sw::InsufficientBalance, "below −L");
    assert_eq!(c.status().unwrap().balance, -500);
    // The grant (decided on B = 900 in the request) closes the credit line.
    let grant = server_grant(&mut record, &m.keys, &request);
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, -400);
    let s = c.status().unwrap();
    assert!(!s.provisional && !s.pending);
    expect_sw(
        c.debit(1),
        Sw::InsufficientBalance,
        "below 0 after the grant",
    );

    // §4.5 step 8 checks the balance and U at apply time, not at request time: the server's
    // grant for 1000 (B = −400) is refused after a limit update lowered U to 500. The server
    // policy never issues that update while the grant is outstanding (§6); an attacker
    // holding the grant key could, and the module still never exceeds U.
    let request = c.initiate_reload(1000).unwrap();
    let grant = server_grant(&mut record, &m.keys, &request);
    assert_eq!(ReloadGrant::parse(&grant).unwrap().granted, 1000);
    let lowered = limits(10, 1000, 500, 500);
    assert!(matches!(
        server::build_limit_update(&mut record, lowered, &m.keys.grant),
        Err(server::FinishError::GrantOutstanding)
    ));
    c.apply_limit_update(&m.limit_update(1, lowered)).unwrap();
    assert_eq!(c.status().unwrap().limits, lowered);
    expect_sw(
        c.apply_grant(&grant),
        Sw::GrantExceedsLimits,
        "B + G > new U",
    );
    // G > R and a granted G = 0 are refused the same way.
    let more = m.grant(3, GrantStatus::Granted, 1001, request.tag);
    expect_sw(c.apply_grant(&more), Sw::GrantExceedsLimits, "G > R");
    let zero = m.grant(3, GrantStatus::Granted, 0, request.tag);
    expect_sw(
        c.apply_grant(&zero),
        Sw::GrantExceedsLimits,
        "granted G = 0",
    );
    let s = c.status().unwrap();
    assert_eq!(
        (s.balance, s.n, s.pending, s.window_events, s.bad_tags),
        (-400, 2, true, 3, 0),
        "{profile}"
    );
    let beyond = FraudEntry {
        kind: FraudKind::GrantBeyondLimits,
        module_n: 2,
        carried: 3,
    };
    assert_eq!(c.fraud_log().unwrap(), [beyond; 3]);
    // A grant that lands exactly on the new U is accepted.
    let exact = m.grant(3, GrantStatus::Granted, 900, request.tag);
    assert_eq!(c.apply_grant(&exact).unwrap().ack().balance, 500);
}

/// Limits at 2^31−1: every sum and difference that would overflow 32 bits is refused (the
/// module computes wide).
fn extreme_limits(c: &mut CreditClient<'_, JcardsimCard>, profile: Profile) {
    let max = i32::MAX;
    let m = Module {
        limits: limits(1, I31, max, max),
        balance: max - 50,
        ..Module::new(profile, 6)
    };
    m.install_on(c);
    let mut record = m.server();
    // B + R wraps negative in 32 bits for R = 2^31−1; wide it exceeds U.
    expect_sw(c.initiate_reload(I31), Sw::ReloadAmountOutOfRange, "B + M");
    expect_sw(c.initiate_reload(51), Sw::ReloadAmountOutOfRange, "B + 51");
    let request = c.initiate_reload(50).unwrap();
    let grant = server_grant(&mut record, &m.keys, &request);
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, max);

    // Down to −L = −(2^31−1) with a provisional ack; one more debit of 2^31−1 would wrap to
    // +2 in 32 bits.
    assert_eq!(c.debit(I31).unwrap(), 0);
    let request = c.initiate_reload(1).unwrap();
    let ack = server::build_provisional_ack(&record, &request, &m.keys.grant).unwrap();
    c.apply_provisional_ack(&ack).unwrap();
    assert_eq!(c.debit(I31).unwrap(), -max);
    expect_sw(c.debit(I31), Sw::InsufficientBalance, "−L − (2^31−1)");
    expect_sw(c.debit(1), Sw::InsufficientBalance, "−L − 1");
    // A grant of 2^32−1 credits (G > R, and B + G wraps in 32 bits) is refused.
    let huge = m.grant(2, GrantStatus::Granted, u32::MAX, request.tag);
    expect_sw(c.apply_grant(&huge), Sw::GrantExceedsLimits, "G = 2^32−1");
    let grant = server_grant(&mut record, &m.keys, &request);
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, 1 - max);
    let s = c.status().unwrap();
    assert_eq!(
        (s.balance, s.n, s.window_events),
        (1 - max, 2, 1),
        "{profile}"
    );
}

fn balance_limits(cards: Vec<JcardsimCard>, profile: Profile) {
    let [c1, c2]: [JcardsimCard; 2] = cards.try_into().unwrap();
    let (mut ch1, mut ch2) = (Channel::new(c1), Channel::new(c2));
    upper_limit_and_credit_line(&mut CreditClient::new(&mut ch1), profile);
    extreme_limits(&mut CreditClient::new(&mut ch2), profile);
}

#[test]
fn balance_near_upper_limit_and_credit_line() {
    each_profile(2, false, balance_limits);
}

// ---- 6. amounts outside the range ---------------------------------------------------------------

fn amounts_outside(cards: Vec<JcardsimCard>, profile: Profile) {
    let m = Module {
        limits: limits(10, 1000, 1000, 500),
        balance: 5,
        ..Module::new(profile, 7)
    };
    let mut ch = Channel::new(cards.into_iter().next().unwrap());
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let before = c.status().unwrap();
    assert_eq!(before.allowed_range(), Some((10, 995)));

    // 0, m − 1, M + 1, 2^31, 2^32−1, and 996 (≤ M but B + R > U) → 9C01.
    for r in [0, 9, 1001, TWO_31, u32::MAX, 996] {
        expect_sw(
            c.initiate_reload(r),
            Sw::ReloadAmountOutOfRange,
            &format!("{profile}: INITIATE {r}"),
        );
    }
    // Debit amounts outside 1..2^31−1 → 6A80 (§4.8), before the balance is looked at.
    for a in [0, TWO_31, u32::MAX] {
        expect_sw(
            c.debit(a),
            Sw::IncorrectData,
            &format!("{profile}: DEBIT {a}"),
        );
    }
    expect_sw(c.debit(6), Sw::InsufficientBalance, "DEBIT 6 at B = 5");
    assert_eq!(c.status().unwrap(), before, "{profile}: nothing changed");
    assert!(c.fraud_log().unwrap().is_empty());

    // The edge of the range works; while it is pending, any other amount is 9C02 (§4.4 step 1
    // comes before the range check).
    let request = c.initiate_reload(995).unwrap();
    assert_eq!((request.requested, request.balance), (995, 5));
    expect_sw(
        c.initiate_reload(0),
        Sw::DifferentReloadPending,
        "0 while pending",
    );
    assert_eq!(c.initiate_reload(995).unwrap(), request);
}

#[test]
fn amounts_outside_the_range_are_refused() {
    each_profile(1, false, amounts_outside);
}

// ---- 7. personalisation after LOCK ---------------------------------------------------------------

fn personalise_after_lock(cards: Vec<JcardsimCard>, profile: Profile) {
    let m = Module {
        threshold: 1,
        ..Module::new(profile, 8)
    };
    let mut ch = Channel::new(cards.into_iter().next().unwrap());
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let before = c.status().unwrap();

    let other = Module::new(profile, 9);
    let attempts = [
        ("everything again", m.data()),
        (
            "a new balance",
            PersonalisationData {
                initial: Some(InitialCounters {
                    balance: 1000,
                    n: 0,
                }),
                ..PersonalisationData::default()
            },
        ),
        ("another module's identity and keys", other.data()),
        (
            "a higher threshold",
            PersonalisationData {
                threshold: Some(u16::MAX),
                ..PersonalisationData::default()
            },
        ),
        ("nothing", PersonalisationData::default()),
    ];
    for (what, data) in &attempts {
        expect_sw(
            c.personalise(data),
            Sw::ConditionsOfUseNotSatisfied,
            &format!("{profile}: PERSONALISE {what}"),
        );
    }
    // The lifecycle gate comes before the data checks: malformed TLV is 6985 too.
    let raw = Command::new(CLA, INS_PERSONALISE, 0, 0).data(vec![0x99, 0x00]);
    expect_sw(
        c.channel().transmit_ok("PERSONALISE", &raw),
        Sw::ConditionsOfUseNotSatisfied,
        "malformed PERSONALISE",
    );
    expect_sw(c.lock(), Sw::ConditionsOfUseNotSatisfied, "LOCK again");
    assert_eq!(c.status().unwrap(), before, "{profile}: status unchanged");
    assert_eq!(
        c.server_address().unwrap(),
        b"https://reload.simkit.invalid/"
    );

    // The keys are the original ones: a round with them works.
    let request = c.initiate_reload(100).unwrap();
    assert!(request.verify(&m.keys.request).unwrap());
    let grant = server_grant(&mut m.server(), &m.keys, &request);
    assert_eq!(c.apply_grant(&grant).unwrap().ack().balance, 100);

    // Blocked (threshold 1), PERSONALISE and LOCK answer 9C08.
    let mut forged = m.grant(2, GrantStatus::Granted, 1, [0; 8]);
    forged[GRANT_OFF_TAG] ^= 0xFF;
    expect_sw(
        c.apply_grant(&forged),
        Sw::SecurityStatusNotSatisfied,
        "forged",
    );
    assert_eq!(c.status().unwrap().lifecycle, Lifecycle::Blocked);
    expect_sw(
        c.personalise(&m.data()),
        Sw::ModuleBlocked,
        "PERSONALISE blocked",
    );
    expect_sw(c.lock(), Sw::ModuleBlocked, "LOCK blocked");
}

#[test]
fn personalisation_after_lock_is_refused() {
    each_profile(1, false, personalise_after_lock);
}

// ---- 8. the MAC-check oracle is capped ---------------------------------------------------------

/// Everything a blocked module refuses with 9C08, and the reads it still answers.
fn assert_blocked(c: &mut CreditClient<'_, JcardsimCard>, m: &Module, valid: &[u8], what: &str) {
    let s = c.status().unwrap();
    assert_eq!(s.lifecycle, Lifecycle::Blocked, "{what}");
    expect_sw(c.apply_grant(valid), Sw::ModuleBlocked, "valid grant");
    expect_sw(c.initiate_reload(100), Sw::ModuleBlocked, "INITIATE");
    expect_sw(c.debit(1), Sw::ModuleBlocked, "DEBIT");
    let prov = ProvisionalAck::build(m.profile, m.id, 1, [0; 8], &m.keys.grant).unwrap();
    expect_sw(
        c.apply_provisional_ack(&prov.to_bytes()),
        Sw::ModuleBlocked,
        "PROVISIONAL",
    );
    let update = m.limit_update(1, m.limits);
    expect_sw(c.apply_limit_update(&update), Sw::ModuleBlocked, "LIMITS");
    let mut forged = valid.to_vec();
    forged[GRANT_OFF_TAG + 7] ^= 0x55;
    expect_sw(
        c.apply_grant(&forged),
        Sw::ModuleBlocked,
        "forged when blocked",
    );
    expect_sw(
        c.last_completion(),
        Sw::ReferencedDataNotFound,
        "GET LAST COMPLETION",
    );
    assert_eq!(
        c.server_address().unwrap(),
        b"https://reload.simkit.invalid/"
    );
    // Nothing more is registered, nothing changed, and a reset does not unblock.
    assert_eq!(c.status().unwrap(), s, "{what}");
    c.channel().card_mut().reset().unwrap();
    c.select().unwrap();
    assert_eq!(c.status().unwrap(), s, "{what} after reset");
}

fn mac_oracle(cards: Vec<JcardsimCard>, profile: Profile) {
    let [c1, c2]: [JcardsimCard; 2] = cards.try_into().unwrap();

    // Three bad tags.
    let m = Module {
        threshold: 3,
        ..Module::new(profile, 10)
    };
    let mut ch = Channel::new(c1);
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let request = c.initiate_reload(100).unwrap();
    let grant = server_grant(&mut m.server(), &m.keys, &request);
    for guess in 1..=3u16 {
        let mut forged = grant;
        forged[GRANT_OFF_TAG] = forged[GRANT_OFF_TAG].wrapping_add(u8::try_from(guess).unwrap());
        expect_sw(
            c.apply_grant(&forged),
            Sw::SecurityStatusNotSatisfied,
            &format!("{profile}: guess {guess}"),
        );
        let s = c.status().unwrap();
        let lifecycle = if guess < 3 {
            Lifecycle::Operational
        } else {
            Lifecycle::Blocked
        };
        assert_eq!((s.bad_tags, s.lifecycle), (guess, lifecycle), "{profile}");
    }
    assert_blocked(&mut c, &m, &grant, &format!("{profile} bad tags"));
    let s = c.status().unwrap();
    assert_eq!(
        (s.balance, s.n, s.pending, s.bad_tags, s.window_events),
        (0, 0, true, 3, 0)
    );
    assert_eq!(c.fraud_log().unwrap().len(), 3);

    // Bad tags and window events count together: 2 + 1 reaches 3.
    let m = Module {
        threshold: 3,
        ..Module::new(profile, 11)
    };
    let mut ch = Channel::new(c2);
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let request = c.initiate_reload(100).unwrap();
    let grant = server_grant(&mut m.server(), &m.keys, &request);
    for i in 0..2 {
        let mut forged = grant;
        forged[GRANT_OFF_TAG + i] ^= 0x01;
        expect_sw(
            c.apply_grant(&forged),
            Sw::SecurityStatusNotSatisfied,
            "bad tag",
        );
    }
    assert_eq!(c.status().unwrap().lifecycle, Lifecycle::Operational);
    let ahead = m.grant(2, GrantStatus::Granted, 100, request.tag);
    expect_sw(
        c.apply_grant(&ahead),
        Sw::TransactionOutOfWindow,
        "S′ = N + 2",
    );
    assert_blocked(&mut c, &m, &grant, &format!("{profile} mixed events"));
    let s = c.status().unwrap();
    assert_eq!((s.bad_tags, s.window_events), (2, 1));
    let log = c.fraud_log().unwrap();
    assert_eq!(
        (log[0].kind, log[0].carried, log[1].kind),
        (FraudKind::Window, 2, FraudKind::BadTag)
    );
}

#[test]
fn mac_oracle_blocks_after_threshold() {
    each_profile(2, false, mac_oracle);
}

// ---- 9. tears without rollback ---------------------------------------------------------------------

/// What a tear walk over APPLY GRANT saw: the write count of an untorn apply, the state before
/// and after it, and the state each tear k = 1..=writes left.
#[derive(Debug)]
struct GrantWalk {
    writes: u32,
    old: Core,
    new: Core,
    torn: Vec<(u32, Core)>,
}

impl GrantWalk {
    fn mixed(&self) -> Vec<(u32, Core)> {
        self.torn
            .iter()
            .copied()
            .filter(|&(_, t)| is_mixed(t, self.old, self.new))
            .collect()
    }
}

/// AID of the k-th extra instance of the credit module (k ≥ 1; instance 0 is the standard
/// one).
fn instance_aid(k: u32) -> Vec<u8> {
    let mut aid = PACKAGE_AID.to_vec();
    aid.push(u8::try_from(k + 1).unwrap());
    aid
}

/// Walks a tear over every persistent write of APPLY GRANT. The untorn reference runs on the
/// standard instance; each k runs on a fresh instance personalised identically, so every tear
/// starts from the same state with the same request and grant bytes (nothing torn is retried:
/// without rollback a torn instance is left as the tear made it).
fn walk_grant_tears(card: JcardsimCard, profile: Profile) -> GrantWalk {
    let m = Module::new(profile, 12);
    let mut ch = Channel::new(card);
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);
    let request = c.initiate_reload(100).unwrap();
    let old = Core::of(&c.status().unwrap());
    let grant = server_grant(&mut m.server(), &m.keys, &request);
    assert!(matches!(
        c.apply_grant(&grant).unwrap(),
        ApplyOutcome::Applied(_)
    ));
    let writes = c.channel().card_mut().write_count().unwrap();
    let new = Core::of(&c.status().unwrap());
    assert_eq!(
        (old, new),
        (
            Core {
                balance: 0,
                n: 0,
                pending: true,
                last_completion: false
            },
            Core {
                balance: 100,
                n: 1,
                pending: false,
                last_completion: true
            }
        ),
        "{profile}"
    );
    assert!(writes > 0);

    let mut torn = Vec::new();
    for k in 1..=writes {
        let aid = instance_aid(k);
        c.channel()
            .card_mut()
            .install(&AppletSpec::new(aid.clone(), CLASS))
            .unwrap();
        select_aid(c.channel(), &aid);
        m.personalise_selected(&mut c);
        assert_eq!(c.initiate_reload(100).unwrap(), request, "{profile} k={k}");
        assert_eq!(Core::of(&c.status().unwrap()), old, "{profile} k={k}");
        c.channel().card_mut().tear_at(k).unwrap();
        let e = c.apply_grant(&grant).unwrap_err();
        assert!(
            matches!(e, CreditClientError::Card(CardError::PowerLost)),
            "{profile} k={k}: {e}"
        );
        select_aid(c.channel(), &aid);
        torn.push((k, Core::of(&c.status().unwrap())));
    }
    GrantWalk {
        writes,
        old,
        new,
        torn,
    }
}

#[test]
fn tearing_without_rollback_shows_mixed_states() {
    let plain = spawn(Profile::ALL.len(), true);
    let rolling = spawn(Profile::ALL.len(), false);
    let threads: Vec<_> = Profile::ALL
        .into_iter()
        .enumerate()
        .flat_map(|(i, profile)| {
            let index = u8::try_from(i).unwrap();
            let a = plain.card(index).unwrap();
            let b = rolling.card(index).unwrap();
            [
                std::thread::spawn(move || (profile, true, walk_grant_tears(a, profile))),
                std::thread::spawn(move || (profile, false, walk_grant_tears(b, profile))),
            ]
        })
        .collect();
    let walks: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (profile, no_rollback, walk) in &walks {
        let mixed = walk.mixed();
        if *no_rollback {
            // e.g. the new balance with the old N: credited, and the grant still applicable.
            assert!(
                mixed
                    .iter()
                    .any(|(_, t)| t.balance == walk.new.balance && t.n == walk.old.n),
                "{profile}: no mixed state without rollback, the walk cannot see one: {walk:?}"
            );
            // Every mixed state lies between old and new: a prefix of the writes, never a
            // double credit.
            for (k, t) in &mixed {
                assert!(
                    t.balance == walk.old.balance || t.balance == walk.new.balance,
                    "{profile} k={k}: {t:?}"
                );
            }
        } else {
            assert!(
                mixed.is_empty(),
                "{profile}: mixed states with rollback: {mixed:?}"
            );
        }
    }
    // The same command makes the same writes whether or not the host rolls back.
    for profile in Profile::ALL {
        let w: Vec<u32> = walks
            .iter()
            .filter(|(p, _, _)| *p == profile)
            .map(|(_, _, w)| w.writes)
            .collect();
        assert_eq!(w[0], w[1], "{profile}");
    }
}

// ---- 10. limit update and debit tears ------------------------------------------------------------

fn limit_and_debit_tears(cards: Vec<JcardsimCard>, profile: Profile) {
    let m = Module {
        balance: 5000,
        ..Module::new(profile, 13)
    };
    let mut ch = Channel::new(cards.into_iter().next().unwrap());
    let mut c = CreditClient::new(&mut ch);
    m.install_on(&mut c);

    // APPLY LIMIT UPDATE: the limits and the sequence change together or not at all.
    let limits_k = |k: u32| limits(10 + k, 1000 + k, 1_000_000 - i32::try_from(k).unwrap(), 500);
    c.apply_limit_update(&m.limit_update(1, limits_k(0)))
        .unwrap();
    let writes = c.channel().card_mut().write_count().unwrap();
    assert!(writes > 0);
    for k in 1..=writes {
        let old = c.status().unwrap();
        let update = m.limit_update(old.limit_sequence + 1, limits_k(k));
        c.channel().card_mut().tear_at(k).unwrap();
        let e = c.apply_limit_update(&update).unwrap_err();
        assert!(
            matches!(e, CreditClientError::Card(CardError::PowerLost)),
            "{profile} k={k}: {e}"
        );
        c.select().unwrap();
        let torn = c.status().unwrap();
        let new = Status {
            limits: limits_k(k),
            limit_sequence: old.limit_sequence + 1,
            ..old
        };
        assert!(
            torn == old || torn == new,
            "{profile} limit update k={k}: {torn:?}"
        );
        if torn == old {
            c.apply_limit_update(&update).unwrap();
        }
        assert_eq!(c.status().unwrap(), new, "{profile} k={k}");
    }

    // DEBIT: the balance is the old one or the new one.
    assert_eq!(c.debit(7).unwrap(), 4993);
    let writes = c.channel().card_mut().write_count().unwrap();
    assert!(writes > 0);
    for k in 1..=writes {
        let old = c.status().unwrap();
        c.channel().card_mut().tear_at(k).unwrap();
        let e = c.debit(7).unwrap_err();
        assert!(
            matches!(e, CreditClientError::Card(CardError::PowerLost)),
            "{profile} k={k}: {e}"
        );
        c.select().unwrap();
        let torn = c.status().unwrap();
        let new = Status {
            balance: old.balance - 7,
            ..old
        };
        assert!(
            torn == old || torn == new,
            "{profile} debit k={k}: {torn:?}"
        );
        if torn == old {
            assert_eq!(c.debit(7).unwrap(), new.balance);
        }
        assert_eq!(c.status().unwrap(), new, "{profile} k={k}");
    }
    let s = c.status().unwrap();
    assert_eq!(
        (s.bad_tags, s.window_events),
        (0, 0),
        "{profile}: nothing registered"
    );
}

#[test]
fn limit_update_and_debit_tears_leave_old_or_new() {
    each_profile(1, false, limit_and_debit_tears);
}
