//! Property tests for `simkit_core::credit`: codecs round-trip, parsers never panic, and the
//! module and server state machines keep the money invariants under an adversarial network
//! (drops, duplicates, reordering, replays, forgeries, cross-delivery between two modules),
//! debits, provisional acks and limit updates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use proptest::prelude::*;
use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::{
    CompletionAck, GrantStatus, LimitUpdate, Message, ProvisionalAck, ReloadGrant, ReloadRequest,
};
use simkit_core::credit::module::{FraudEntry, Lifecycle, Module, Status};
use simkit_core::credit::server::{
    DebitOutcome, FreshDecision, RequestAction, ServerModuleState, ServerRecord,
    build_limit_update, build_provisional_ack, classify_request, confirm_limit_update,
    finish_fresh, handle_completion, register_rejection,
};
use simkit_core::credit::{DeclineReason, Limits, ModuleId};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey, derive_module_keys};

// ------------------------------------------------------------------------------- strategies

fn profile() -> impl Strategy<Value = Profile> {
    prop::sample::select(Profile::ALL.to_vec())
}

fn tag() -> impl Strategy<Value = [u8; 8]> {
    any::<[u8; 8]>()
}

fn limits() -> impl Strategy<Value = Limits> {
    (any::<u32>(), any::<u32>(), any::<i32>(), any::<i32>()).prop_map(|(a, b, c, d)| Limits {
        min_reload: a,
        max_reload: b,
        upper: c,
        credit_line: d,
    })
}

fn grant_status() -> impl Strategy<Value = GrantStatus> {
    prop_oneof![
        Just(GrantStatus::Granted),
        prop::sample::select(DeclineReason::ALL.to_vec()).prop_map(GrantStatus::Declined),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Bytes that start like a message (version 01, a type byte 00..06, an algorithm byte 00..04)
/// so that parsers get past their first checks.
fn message_like() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..7,
        0u8..5,
        prop::sample::select(vec![31usize, 37, 39, 40, 30, 41]),
        any::<u64>(),
    )
        .prop_flat_map(|(t, a, len, _)| {
            prop::collection::vec(any::<u8>(), len).prop_map(move |mut v| {
                v[0] = 1;
                v[1] = t;
                v[2] = a;
                v
            })
        })
}

// ------------------------------------------------------------------------------- codecs

proptest! {
    #[test]
    fn request_round_trips(p in profile(), id in any::<ModuleId>(), n in any::<u32>(),
                           r in any::<u32>(), b in any::<i32>(), t in tag()) {
        let m = ReloadRequest { profile: p, module_id: id, n, requested: r, balance: b, tag: t };
        let bytes = m.to_bytes();
        prop_assert_eq!(ReloadRequest::parse(&bytes).unwrap(), m.clone());
        prop_assert_eq!(Message::parse(&bytes).unwrap(), Message::Request(m));
    }

    #[test]
    fn grant_round_trips(p in profile(), id in any::<ModuleId>(), s in any::<u32>(),
                         st in grant_status(), g in any::<u32>(), rt in tag(), t in tag()) {
        let granted = if st == GrantStatus::Granted { g } else { 0 };
        let m = ReloadGrant { profile: p, module_id: id, s_next: s, status: st, granted,
                              request_tag: rt, tag: t };
        let bytes = m.to_bytes();
        prop_assert_eq!(ReloadGrant::parse(&bytes).unwrap(), m.clone());
        prop_assert_eq!(Message::parse(&bytes).unwrap(), Message::Grant(m));
    }

    #[test]
    fn provisional_round_trips(p in profile(), id in any::<ModuleId>(), s in any::<u32>(),
                               rt in tag(), t in tag()) {
        let m = ProvisionalAck { profile: p, module_id: id, s_next: s, request_tag: rt, tag: t };
        let bytes = m.to_bytes();
        prop_assert_eq!(ProvisionalAck::parse(&bytes).unwrap(), m.clone());
        prop_assert_eq!(Message::parse(&bytes).unwrap(), Message::ProvisionalAck(m));
    }

    #[test]
    fn completion_round_trips(p in profile(), id in any::<ModuleId>(), n in any::<u32>(),
                              d in any::<bool>(), g in any::<u32>(), b in any::<i32>(),
                              gt in tag(), t in tag()) {
        let m = CompletionAck { profile: p, module_id: id, n_next: n, declined: d, granted: g,
                                balance: b, grant_tag: gt, tag: t };
        let bytes = m.to_bytes();
        prop_assert_eq!(CompletionAck::parse(&bytes).unwrap(), m.clone());
        prop_assert_eq!(Message::parse(&bytes).unwrap(), Message::CompletionAck(m));
    }

    #[test]
    fn limit_update_round_trips(p in profile(), id in any::<ModuleId>(), seq in any::<u32>(),
                                l in limits(), t in tag()) {
        let m = LimitUpdate { profile: p, module_id: id, sequence: seq, limits: l, tag: t };
        let bytes = m.to_bytes();
        prop_assert_eq!(LimitUpdate::parse(&bytes).unwrap(), m.clone());
        prop_assert_eq!(Message::parse(&bytes).unwrap(), Message::LimitUpdate(m));
    }

    #[test]
    fn status_round_trips(b in any::<[u8; 49]>()) {
        // Any 49 bytes with a valid lifecycle, profile and flags decode and re-encode exactly.
        let mut b = b;
        b[0] = 1 + b[0] % 3;
        b[1] %= 4;
        b[38] &= 0x07;
        let s = Status::parse(&b).unwrap();
        prop_assert_eq!(s.to_bytes(), b);
    }

    #[test]
    fn personalisation_round_trips(id in prop::option::of(any::<ModuleId>()),
                                   p in prop::option::of(profile()),
                                   kr in prop::option::of(prop::sample::select(vec![16usize, 24])),
                                   l in prop::option::of(limits()),
                                   init in prop::option::of((any::<i32>(), any::<u32>())),
                                   th in prop::option::of(1u16..),
                                   addr in prop::option::of(bytes(65))) {
        let d = PersonalisationData {
            module_id: id,
            profile: p,
            k_req: kr.map(|n| SecretKey::new(&vec![0x5A; n])),
            k_grant: kr.map(|n| SecretKey::new(&vec![0xA5; n])),
            limits: l,
            initial: init.map(|(balance, n)| InitialCounters { balance, n }),
            threshold: th,
            server_address: addr,
        };
        let tlv = d.to_tlv();
        prop_assert_eq!(PersonalisationData::parse(&tlv).unwrap(), d);
    }

    // --------------------------------------------------------------------- parsers never panic

    #[test]
    fn parsers_never_panic(b in bytes(64)) {
        for_all_parsers(&b);
    }

    #[test]
    fn parsers_never_panic_on_message_like_bytes(b in message_like()) {
        for_all_parsers(&b);
    }

    #[test]
    fn module_commands_never_panic(b in message_like(), p in profile()) {
        let mut f = Net::module_and_record(p, *b"PROPTEST", 0, 0, 1000);
        let mut b = b;
        b[2] = p.id();
        b[3..11].copy_from_slice(b"PROPTEST");
        let _ = f.0.apply_grant(&b);
        let _ = f.0.apply_provisional(&b);
        let _ = f.0.apply_limit_update(&b);
        let _ = f.0.personalise(&b);
        let _ = classify_request(&f.1, &b, &f.2.request);
        let _ = handle_completion(&mut f.1, &b, &f.2.request);
        // Nothing unauthenticated moved money or numbers.
        prop_assert_eq!(f.0.state().balance, 0);
        prop_assert_eq!(f.0.state().n, 0);
        prop_assert_eq!(f.1.s, 0);
    }
}

fn for_all_parsers(b: &[u8]) {
    // Each parser either errs or decodes to something that re-encodes to the same bytes.
    if let Ok(m) = ReloadRequest::parse(b) {
        assert_eq!(m.to_bytes(), b);
    }
    if let Ok(m) = ReloadGrant::parse(b) {
        assert_eq!(m.to_bytes(), b);
    }
    if let Ok(m) = ProvisionalAck::parse(b) {
        assert_eq!(m.to_bytes(), b);
    }
    if let Ok(m) = CompletionAck::parse(b) {
        assert_eq!(m.to_bytes(), b);
    }
    if let Ok(m) = LimitUpdate::parse(b) {
        assert_eq!(m.to_bytes(), b);
    }
    if let Ok(m) = Message::parse(b) {
        assert_eq!(m.to_bytes(), b);
        let _ = m.to_string();
    }
    if let Ok(s) = Status::parse(b) {
        assert_eq!(s.to_bytes(), b);
        let _ = s.to_string();
        let _ = s.allowed_range();
    }
    if let Ok(d) = PersonalisationData::parse(b) {
        // Canonical order may differ from the input's; re-parsing the output is stable.
        assert_eq!(PersonalisationData::parse(&d.to_tlv()).unwrap(), d);
    }
    let _ = FraudEntry::parse_log(b);
}

// ------------------------------------------------------------------------------- the network

const BASE_LIMITS: Limits = Limits {
    min_reload: 10,
    max_reload: 500,
    upper: 1000,
    credit_line: 100,
};

#[derive(Clone, Debug)]
enum Op {
    /// The appliance asks module `m` for a reload of `r`.
    Initiate {
        m: usize,
        r: u32,
    },
    /// Deliver up-queue message `i` of module `m` to the server.
    Serve {
        m: usize,
        i: usize,
    },
    /// The server's debit is slow: it answers a fresh request with a provisional ack only.
    SlowServe {
        m: usize,
        i: usize,
    },
    /// Deliver down-queue message `i` of module `m` to module `to` (usually `m`).
    Deliver {
        m: usize,
        i: usize,
        to: usize,
    },
    Drop {
        m: usize,
        up: bool,
        i: usize,
    },
    Duplicate {
        m: usize,
        up: bool,
        i: usize,
    },
    /// Re-inject any message ever sent in that direction.
    Replay {
        m: usize,
        up: bool,
        i: usize,
    },
    /// Re-inject a past message with one byte changed.
    Forge {
        m: usize,
        up: bool,
        i: usize,
        pos: usize,
        mask: u8,
    },
    Debit {
        m: usize,
        a: u32,
    },
    LimitUpdate {
        m: usize,
        upper: i32,
        credit_line: i32,
        max: u32,
    },
    /// The operator reads the module's status and confirms its limit sequence.
    ConfirmLimits {
        m: usize,
    },
    /// The appliance fetches the last completion ack and forwards it.
    FetchCompletion {
        m: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0usize..2;
    let i = 0usize..8;
    prop_oneof![
        4 => (m.clone(), prop_oneof![5u32..600, Just(10u32), Just(500), any::<u32>()])
            .prop_map(|(m, r)| Op::Initiate { m, r }),
        6 => (m.clone(), i.clone()).prop_map(|(m, i)| Op::Serve { m, i }),
        1 => (m.clone(), i.clone()).prop_map(|(m, i)| Op::SlowServe { m, i }),
        6 => (m.clone(), i.clone(), prop_oneof![9 => Just(None), 1 => Just(Some(()))])
            .prop_map(|(m, i, cross)| Op::Deliver { m, i, to: if cross.is_some() { 1 - m } else { m } }),
        2 => (m.clone(), any::<bool>(), i.clone()).prop_map(|(m, up, i)| Op::Drop { m, up, i }),
        1 => (m.clone(), any::<bool>(), i.clone()).prop_map(|(m, up, i)| Op::Duplicate { m, up, i }),
        2 => (m.clone(), any::<bool>(), 0usize..64).prop_map(|(m, up, i)| Op::Replay { m, up, i }),
        1 => (m.clone(), any::<bool>(), 0usize..64, 0usize..40, 1u8..)
            .prop_map(|(m, up, i, pos, mask)| Op::Forge { m, up, i, pos, mask }),
        3 => (m.clone(), prop_oneof![1u32..200, any::<u32>()]).prop_map(|(m, a)| Op::Debit { m, a }),
        1 => (m.clone(), 0i32..3000, 0i32..300, 10u32..1000)
            .prop_map(|(m, upper, credit_line, max)| Op::LimitUpdate { m, upper, credit_line, max }),
        1 => m.clone().prop_map(|m| Op::ConfirmLimits { m }),
        2 => m.prop_map(|m| Op::FetchCompletion { m }),
    ]
}

/// One module, its server record, the server's copy of its keys, and the network around it.
struct Side {
    module: Module,
    record: ServerRecord,
    keys: ModuleKeys,
    up: Vec<Vec<u8>>,
    down: Vec<Vec<u8>>,
    up_history: Vec<Vec<u8>>,
    down_history: Vec<Vec<u8>>,
    credited: u64,
    spent: u64,
    initial_balance: i32,
    fraud_events: u32,
}

struct Net {
    sides: [Side; 2],
    /// The financial authority: debits by (module id, N). A second debit is a test failure.
    ledger: HashMap<(ModuleId, u32), u32>,
}

impl Net {
    fn module_and_record(
        p: Profile,
        id: ModuleId,
        balance: i32,
        n: u32,
        threshold: u16,
    ) -> (Module, ServerRecord, ModuleKeys) {
        let master = SecretKey::new(&vec![0x33; p.master_key_len()]);
        let keys = derive_module_keys(p, &master, &id).unwrap();
        let mut d = PersonalisationData::complete(p, id, &keys, BASE_LIMITS, threshold);
        d.initial = Some(InitialCounters { balance, n });
        let module = Module::personalised(&d).unwrap();
        let record = ServerRecord::new(id, p, n, BASE_LIMITS, u32::from(threshold));
        (module, record, keys)
    }

    fn new(profiles: [Profile; 2], balances: [i32; 2], ns: [u32; 2], threshold: u16) -> Net {
        let ids = [*b"MODULE-A", *b"MODULE-B"];
        let sides = [0, 1].map(|k| {
            let (module, record, keys) =
                Net::module_and_record(profiles[k], ids[k], balances[k], ns[k], threshold);
            Side {
                module,
                record,
                keys,
                up: Vec::new(),
                down: Vec::new(),
                up_history: Vec::new(),
                down_history: Vec::new(),
                credited: 0,
                spent: 0,
                initial_balance: balances[k],
                fraud_events: 0,
            }
        });
        Net {
            sides,
            ledger: HashMap::new(),
        }
    }

    fn send_up(&mut self, m: usize, b: Vec<u8>) {
        self.sides[m].up_history.push(b.clone());
        self.sides[m].up.push(b);
    }

    fn send_down(&mut self, m: usize, b: Vec<u8>) {
        self.sides[m].down_history.push(b.clone());
        self.sides[m].down.push(b);
    }

    fn debited(&self, m: usize) -> u64 {
        let id = self.sides[m].record.module_id;
        self.ledger
            .iter()
            .filter(|((i, _), _)| *i == id)
            .map(|(_, &v)| u64::from(v))
            .sum()
    }

    /// The server's handling of one message from module `m`; returns the answer, if any.
    fn server_receive(&mut self, m: usize, b: &[u8], slow: bool) -> Option<Vec<u8>> {
        let side = &mut self.sides[m];
        if b.get(1) == Some(&0x04) {
            if let Err(r) = handle_completion(&mut side.record, b, &side.keys.request) {
                if register_rejection(&mut side.record, &r).is_some() {
                    side.fraud_events += 1;
                }
            }
            return None;
        }
        match classify_request(&side.record, b, &side.keys.request) {
            Ok(RequestAction::Resend { grant }) => Some(grant.to_vec()),
            Ok(RequestAction::Fresh { request, decision }) => {
                if slow {
                    return build_provisional_ack(&side.record, &request, &side.keys.grant)
                        .ok()
                        .map(|a| a.to_vec());
                }
                let outcome = match decision {
                    FreshDecision::Debit { amount } => {
                        let key = (request.module_id, request.n);
                        let prev = self.ledger.insert(key, amount);
                        assert_eq!(prev, None, "(module, N) = {key:?} debited twice");
                        DebitOutcome::Debited { amount }
                    }
                    FreshDecision::Decline(r) => DebitOutcome::Declined(r),
                };
                let g =
                    finish_fresh(&mut side.record, &request, outcome, &side.keys.grant).unwrap();
                Some(g.to_vec())
            }
            Err(r) => {
                if register_rejection(&mut side.record, &r).is_some() {
                    side.fraud_events += 1;
                }
                None
            }
        }
    }

    /// Module `to` receives a server message; its answer (a completion ack) goes up.
    fn module_receive(&mut self, to: usize, b: &[u8]) {
        let side = &mut self.sides[to];
        let before = side.module.state().clone();
        match b.get(1) {
            Some(0x03) => {
                let _ = side.module.apply_provisional(b);
            }
            Some(0x05) => {
                let _ = side.module.apply_limit_update(b);
            }
            _ => {
                if let Ok(ack) = side.module.apply_grant(b) {
                    let a = CompletionAck::parse(&ack).unwrap();
                    let st = side.module.state();
                    // N moved by exactly one; the balance by exactly G, and not above U.
                    assert_eq!(u64::from(st.n), u64::from(before.n) + 1);
                    assert_eq!(
                        i64::from(st.balance),
                        i64::from(before.balance) + i64::from(a.granted)
                    );
                    // (A decline leaves a balance above a lowered U as it is.)
                    assert!(
                        a.granted == 0 || st.balance <= st.limits.unwrap().upper,
                        "reload above U"
                    );
                    assert_eq!((a.n_next, a.balance), (st.n, st.balance));
                    side.credited += u64::from(a.granted);
                    self.send_up(to, ack.to_vec());
                    return;
                }
            }
        }
        let st = self.sides[to].module.state();
        assert_eq!(st.n, before.n, "N changed without a grant");
        assert_eq!(
            st.balance, before.balance,
            "balance changed without a grant"
        );
    }

    fn apply(&mut self, op: &Op) {
        let pick = |v: &Vec<Vec<u8>>, i: usize| (!v.is_empty()).then(|| i % v.len());
        match *op {
            Op::Initiate { m, r } => {
                if let Ok(req) = self.sides[m].module.initiate_reload(r) {
                    self.send_up(m, req.to_vec());
                }
            }
            Op::Serve { m, i } | Op::SlowServe { m, i } => {
                if let Some(i) = pick(&self.sides[m].up, i) {
                    let b = self.sides[m].up.remove(i);
                    if let Some(answer) =
                        self.server_receive(m, &b, matches!(op, Op::SlowServe { .. }))
                    {
                        self.send_down(m, answer);
                    }
                }
            }
            Op::Deliver { m, i, to } => {
                if let Some(i) = pick(&self.sides[m].down, i) {
                    let b = self.sides[m].down.remove(i);
                    self.module_receive(to, &b);
                }
            }
            Op::Drop { m, up, i } => {
                let q = if up {
                    &mut self.sides[m].up
                } else {
                    &mut self.sides[m].down
                };
                if let Some(i) = pick(q, i) {
                    q.remove(i);
                }
            }
            Op::Duplicate { m, up, i } => {
                let q = if up {
                    &mut self.sides[m].up
                } else {
                    &mut self.sides[m].down
                };
                if let Some(i) = pick(q, i) {
                    let b = q[i].clone();
                    q.push(b);
                }
            }
            Op::Replay { m, up, i } => {
                let s = &mut self.sides[m];
                let (h, q) = if up {
                    (&s.up_history, &mut s.up)
                } else {
                    (&s.down_history, &mut s.down)
                };
                if let Some(i) = pick(h, i) {
                    q.push(h[i].clone());
                }
            }
            Op::Forge {
                m,
                up,
                i,
                pos,
                mask,
            } => {
                let s = &mut self.sides[m];
                let (h, q) = if up {
                    (&s.up_history, &mut s.up)
                } else {
                    (&s.down_history, &mut s.down)
                };
                if let Some(i) = pick(h, i) {
                    let mut b = h[i].clone();
                    let len = b.len();
                    b[pos % len] ^= mask;
                    q.push(b);
                }
            }
            Op::Debit { m, a } => {
                let s = &mut self.sides[m];
                if let Ok(after) = s.module.debit(a) {
                    s.spent += u64::from(a);
                    let l = s.module.state().limits.unwrap();
                    assert!(after >= -l.credit_line, "debit below -L");
                    assert!(
                        after >= 0 || s.module.state().provisional,
                        "below 0 without credit line"
                    );
                }
            }
            Op::LimitUpdate {
                m,
                upper,
                credit_line,
                max,
            } => {
                let s = &mut self.sides[m];
                let l = Limits {
                    min_reload: 10,
                    max_reload: max,
                    upper,
                    credit_line,
                };
                if let Ok(b) = build_limit_update(&mut s.record, l, &s.keys.grant) {
                    self.send_down(m, b.to_vec());
                }
            }
            Op::ConfirmLimits { m } => {
                let s = &mut self.sides[m];
                let seq = s.module.status().limit_sequence;
                confirm_limit_update(&mut s.record, seq);
            }
            Op::FetchCompletion { m } => {
                if let Ok(ack) = self.sides[m].module.last_completion() {
                    self.send_up(m, ack.to_vec());
                }
            }
        }
    }

    fn check_invariants(&self, prev_n: &[u32; 2]) {
        for (k, s) in self.sides.iter().enumerate() {
            let st = s.module.state();
            assert!(st.n >= prev_n[k], "N decreased or wrapped");
            let d = i64::from(s.record.s) - i64::from(st.n);
            assert!(
                d == 0 || d == 1,
                "S = {} and N = {} desynchronised",
                s.record.s,
                st.n
            );
            assert!(s.credited <= self.debited(k), "credited more than debited");
            assert_eq!(
                i64::from(st.balance),
                i64::from(s.initial_balance) + s.credited as i64 - s.spent as i64,
                "balance is not initial + credited − spent"
            );
        }
    }

    /// Lets the protocol finish cleanly: resend each pending request and deliver the answer.
    fn drain(&mut self) {
        for m in 0..2 {
            for _ in 0..2 {
                let Some(r) = self.sides[m].module.state().pending_r() else {
                    break;
                };
                let Ok(req) = self.sides[m].module.initiate_reload(r) else {
                    break;
                };
                if let Some(g) = self.server_receive(m, &req, false) {
                    self.module_receive(m, &g);
                }
            }
        }
    }
}

fn initial_n() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..1000, 1 => Just(u32::MAX - 3), 1 => Just(u32::MAX - 1)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn two_modules_under_an_adversarial_network(
        profiles in [profile(), profile()],
        balances in [-100i32..=1000, -100i32..=1000],
        ns in [initial_n(), initial_n()],
        threshold in prop_oneof![4 => Just(1000u16), 1 => 1u16..6],
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut net = Net::new(profiles, balances, ns, threshold);
        let mut prev_n = [ns[0], ns[1]];
        for op in &ops {
            net.apply(op);
            net.check_invariants(&prev_n);
            prev_n = [net.sides[0].module.state().n, net.sides[1].module.state().n];
        }
        net.drain();
        net.check_invariants(&prev_n);
        for (k, s) in net.sides.iter().enumerate() {
            let blocked = s.module.state().lifecycle == Lifecycle::Blocked
                || s.record.state == ServerModuleState::Blocked;
            if !blocked {
                // Every granted amount was credited exactly once.
                prop_assert_eq!(s.credited, net.debited(k), "module {}", k);
                prop_assert_eq!(s.module.state().pending, None);
                prop_assert_eq!(s.record.s, s.module.state().n);
            }
            if s.fraud_events == 0 && s.module.state().bad_tags == 0 && s.module.state().window_events == 0 {
                prop_assert_eq!(s.record.failure_count, 0);
            }
        }
    }
}
