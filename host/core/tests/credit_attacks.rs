//! The attacks of BRIEF §7 that exist at the protocol layer, each shown defeated for every
//! crypto profile, against the module state machine and the server policy of
//! `simkit_core::credit`. Attacks that need the card (power cuts, timing of the applet's compare,
//! concurrent HTTP requests) are tested in the applet and server suites.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::{
    CompletionAck, GrantStatus, LimitUpdate, Message, ProvisionalAck, ReloadGrant, ReloadRequest,
};
use simkit_core::credit::module::{Lifecycle, Module, ModuleError};
use simkit_core::credit::server::{
    DebitOutcome, FreshDecision, Rejection, RequestAction, ServerModuleState, ServerRecord,
    build_limit_update, build_provisional_ack, classify_request, finish_fresh, handle_completion,
    register_rejection,
};
use simkit_core::credit::{DeclineReason, FraudKind, Limits, ModuleId};
use simkit_core::crypto::mac::{profile_tag, verify_profile_tag};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey, derive_module_keys};

const LIMITS: Limits = Limits {
    min_reload: 10,
    max_reload: 500,
    upper: 1000,
    credit_line: 100,
};

fn master(p: Profile) -> SecretKey {
    SecretKey::new(
        &(0..p.master_key_len() as u8)
            .map(|i| 0x40 + i)
            .collect::<Vec<_>>(),
    )
}

/// One module and its server record, personalised from the same data.
struct Fx {
    p: Profile,
    id: ModuleId,
    keys: ModuleKeys,
    module: Module,
    record: ServerRecord,
    /// Debits by (module id, N): the financial authority with its idempotency key.
    ledger: HashMap<(ModuleId, u32), u32>,
}

fn fx_with(p: Profile, id: ModuleId, limits: Limits, balance: i32, n: u32, threshold: u16) -> Fx {
    let keys = derive_module_keys(p, &master(p), &id).unwrap();
    let mut data = PersonalisationData::complete(p, id, &keys, limits, threshold);
    data.initial = Some(InitialCounters { balance, n });
    let module = Module::personalised(&data).unwrap();
    let record = ServerRecord::new(id, p, n, limits, u32::from(threshold));
    Fx {
        p,
        id,
        keys,
        module,
        record,
        ledger: HashMap::new(),
    }
}

fn fx(p: Profile) -> Fx {
    fx_with(p, *b"MODULE-A", LIMITS, 0, 0, 5)
}

impl Fx {
    /// The server's whole handling of one request, with the test ledger as the authority.
    fn serve(&mut self, bytes: &[u8]) -> Result<[u8; 37], Rejection> {
        match classify_request(&self.record, bytes, &self.keys.request) {
            Ok(RequestAction::Resend { grant }) => Ok(grant),
            Ok(RequestAction::Fresh { request, decision }) => {
                let outcome = match decision {
                    FreshDecision::Debit { amount } => {
                        let prev = self.ledger.insert((request.module_id, request.n), amount);
                        assert_eq!(prev, None, "debited twice for N = {}", request.n);
                        DebitOutcome::Debited { amount }
                    }
                    FreshDecision::Decline(r) => DebitOutcome::Declined(r),
                };
                Ok(finish_fresh(&mut self.record, &request, outcome, &self.keys.grant).unwrap())
            }
            Err(r) => {
                register_rejection(&mut self.record, &r);
                Err(r)
            }
        }
    }

    /// A full reload round; returns (request, grant, completion ack).
    fn round(&mut self, r: u32) -> ([u8; 31], [u8; 37], [u8; 40]) {
        let req = self.module.initiate_reload(r).unwrap();
        let grant = self.serve(&req).unwrap();
        let ack = self.module.apply_grant(&grant).unwrap();
        handle_completion(&mut self.record, &ack, &self.keys.request).unwrap();
        (req, grant, ack)
    }

    fn debited(&self) -> u64 {
        self.ledger.values().map(|&v| u64::from(v)).sum()
    }

    /// A grant signed with the real grant key (what a compromised server path could emit).
    fn signed_grant(&self, s_next: u32, status: GrantStatus, g: u32, req_tag: [u8; 8]) -> [u8; 37] {
        ReloadGrant::build(
            self.p,
            self.id,
            s_next,
            status,
            g,
            req_tag,
            &self.keys.grant,
        )
        .unwrap()
        .to_bytes()
    }
}

fn sw<T: core::fmt::Debug>(r: Result<T, ModuleError>) -> u16 {
    r.unwrap_err().sw().to_u16()
}

#[test]
fn replayed_request_is_resent_not_redebited() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let req = f.module.initiate_reload(100).unwrap();
        let g1 = f.serve(&req).unwrap();
        // The same request again (a replay, or the appliance retrying): same grant, no debit.
        let g2 = f.serve(&req).unwrap();
        assert_eq!(g1, g2, "{p}");
        assert_eq!(f.ledger.len(), 1);
        // Another request with the same N (validly MACed, other amount): not resent, registered.
        let other = ReloadRequest::build(p, f.id, 0, 50, 0, &f.keys.request).unwrap();
        assert_eq!(
            f.serve(&other.to_bytes()),
            Err(Rejection::ReplayMismatch { n: 0 })
        );
        assert_eq!(f.record.failure_count, 1);
        f.module.apply_grant(&g1).unwrap();
        // Once the module moved on, the old request is two numbers behind after the next round.
        f.round(50);
        let failures = f.record.failure_count;
        assert!(matches!(
            f.serve(&req),
            Err(Rejection::OutOfWindow { n: 0, s: 2 })
        ));
        assert_eq!(f.record.failure_count, failures + 1, "registered");
        assert_eq!(failures, 1);
        assert_eq!(f.debited(), 150);
        assert_eq!(f.module.state().balance, 150);
    }
}

#[test]
fn replayed_grant_is_already_applied() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let (_, grant, ack) = f.round(100);
        let before = f.module.state().clone();
        assert_eq!(sw(f.module.apply_grant(&grant)), 0x9C04, "{p}");
        assert_eq!(
            f.module.state(),
            &before,
            "nothing changes, nothing registered"
        );
        assert_eq!(f.module.last_completion().unwrap(), ack);
        // After a later round the old grant is outside the window: registered.
        f.round(100);
        assert_eq!(sw(f.module.apply_grant(&grant)), 0x9C05);
        assert_eq!(f.module.state().window_events, 1);
        assert_eq!(
            f.module.state().balance,
            200,
            "credited exactly twice for two grants"
        );
    }
}

#[test]
fn reflected_request_as_grant_rejected() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let req = f.module.initiate_reload(100).unwrap();
        // As is: wrong length for a grant, refused before anything else.
        assert_eq!(sw(f.module.apply_grant(&req)), 0x6700);
        // A request has the length of a provisional ack: the type byte is refused...
        assert_eq!(sw(f.module.apply_provisional(&req)), 0x9C0A);
        // ...and relabelled, the tag (over the type byte, under the other key) is refused.
        let mut relabelled = req;
        relabelled[1] = 0x03;
        assert_eq!(sw(f.module.apply_provisional(&relabelled)), 0x6982);
        assert_eq!(f.module.state().bad_tags, 1);
        assert!(!f.module.state().provisional);
        // Even if the module MACed attacker-chosen bytes, K_req cannot make a grant.
        let pending_tag: [u8; 8] = req[23..31].try_into().unwrap();
        let fake = ReloadGrant::build(
            p,
            f.id,
            1,
            GrantStatus::Granted,
            100,
            pending_tag,
            &f.keys.request,
        )
        .unwrap()
        .to_bytes();
        assert_eq!(sw(f.module.apply_grant(&fake)), 0x6982);
        // The server refuses a grant (or a completion ack) presented as a request.
        let grant = f.serve(&req).unwrap();
        assert!(matches!(f.serve(&grant), Err(Rejection::Malformed(_))));
        let mut as_req = grant[..31].to_vec();
        as_req[1] = 0x01;
        assert!(matches!(f.serve(&as_req), Err(Rejection::BadTag { .. })));
        assert_eq!(f.module.state().balance, 0);
        assert_eq!(f.ledger.len(), 1);
    }
}

#[test]
fn grant_for_module_a_rejected_by_module_b() {
    for p in Profile::ALL {
        let mut a = fx_with(p, *b"MODULE-A", LIMITS, 0, 0, 5);
        let mut b = fx_with(p, *b"MODULE-B", LIMITS, 0, 0, 5);
        let req_a = a.module.initiate_reload(100).unwrap();
        let _req_b = b.module.initiate_reload(100).unwrap();
        let grant_a = a.serve(&req_a).unwrap();
        // B sees another module id in the header: refused, not registered.
        assert_eq!(sw(b.module.apply_grant(&grant_a)), 0x9C0A, "{p}");
        assert_eq!(b.module.state().bad_tags, 0);
        // Rewriting the id to B's: B's key (derived from B's id) refuses the tag.
        let mut rewritten = grant_a;
        rewritten[3..11].copy_from_slice(b"MODULE-B");
        assert_eq!(sw(b.module.apply_grant(&rewritten)), 0x6982);
        assert_eq!(b.module.state().bad_tags, 1);
        assert_eq!(b.module.state().balance, 0);
        // A's request sent to B's server record: unknown module there.
        assert!(matches!(b.serve(&req_a), Err(Rejection::UnknownModule(_))));
        // A still applies its own grant.
        a.module.apply_grant(&grant_a).unwrap();
        assert_eq!(a.module.state().balance, 100);
    }
}

#[test]
fn cbc_mac_splice_on_message_rejected() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let req = f.module.initiate_reload(100).unwrap();
        let req_tag: [u8; 8] = req[23..31].try_into().unwrap();
        let g1 = ReloadGrant::build(p, f.id, 1, GrantStatus::Granted, 10, req_tag, &f.keys.grant)
            .unwrap();
        let g2 = ReloadGrant::build(
            p,
            f.id,
            1,
            GrantStatus::Granted,
            100,
            req_tag,
            &f.keys.grant,
        )
        .unwrap();
        // The classic forgery m1 ‖ (m2 ⊕ t1) with tag t2: valid for raw CBC-MAC.
        let (m1, t1) = (g1.signed_bytes(), g1.tag);
        let mut m2 = g2.signed_bytes().to_vec();
        for (b, t) in m2.iter_mut().zip(t1) {
            *b ^= t;
        }
        let mut splice = m1.to_vec();
        splice.extend_from_slice(&m2);
        splice.extend_from_slice(&g2.tag);
        assert_eq!(
            sw(f.module.apply_grant(&splice)),
            0x6700,
            "{p}: fixed length"
        );
        assert!(Message::parse(&splice).is_err());
        // The padding-aware splice m1 ‖ pad ‖ (m2 ⊕ t1) with tag t2 really verifies under the
        // plain CBC-MAC of desx-cbc (crypto.md §2): only the fixed length stops it there.
        let mut aware = m1.to_vec();
        aware.push(0x80);
        while aware.len() % 8 != 0 {
            aware.push(0);
        }
        aware.extend_from_slice(&m2);
        assert_eq!(
            verify_profile_tag(p, &f.keys.grant, &aware, &g2.tag).unwrap(),
            p == Profile::DesxCbc,
            "{p}"
        );
        aware.extend_from_slice(&g2.tag);
        assert_eq!(
            sw(f.module.apply_grant(&aware)),
            0x6700,
            "{p}: fixed length"
        );
        assert!(Message::parse(&aware).is_err());
        // The same splice cut to a grant's length (first block of m1, rest from m2 ⊕ t1): the
        // header byte fields no longer line up or the tag fails; either way nothing applies.
        let mut cut = [0u8; 37];
        cut[..8].copy_from_slice(&m1[..8]);
        cut[8..29].copy_from_slice(&g2.signed_bytes()[8..29]);
        for (b, t) in cut[8..16].iter_mut().zip(t1) {
            *b ^= t;
        }
        cut[29..].copy_from_slice(&g2.tag);
        let e = sw(f.module.apply_grant(&cut));
        assert!(e == 0x6982 || e == 0x9C0A, "{p}: {e:04X}");
        // A splice at the request level, towards the server.
        let r1 = ReloadRequest::build(p, f.id, 0, 10, 0, &f.keys.request).unwrap();
        let mut rsplice = r1.signed_bytes()[..15].to_vec();
        let r2 = ReloadRequest::build(p, f.id, 0, 500, 0, &f.keys.request).unwrap();
        rsplice.extend_from_slice(&r2.signed_bytes()[15..23]);
        for (b, t) in rsplice[15..23].iter_mut().zip(r1.tag) {
            *b ^= t;
        }
        rsplice.extend_from_slice(&r2.tag);
        assert!(matches!(f.serve(&rsplice), Err(Rejection::BadTag { .. })));
        assert_eq!(f.module.state().balance, 0);
        assert!(f.ledger.is_empty());
    }
}

#[test]
fn padding_ambiguity_message_with_trailing_zero_rejected() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let req = f.module.initiate_reload(100).unwrap();
        let grant = f.serve(&req).unwrap();
        let mut padded = grant.to_vec();
        padded.push(0x00);
        assert_eq!(sw(f.module.apply_grant(&padded)), 0x6700, "{p}");
        let mut rpadded = req.to_vec();
        rpadded.push(0x00);
        assert!(matches!(f.serve(&rpadded), Err(Rejection::Malformed(_))));
        // And the MAC itself separates m from m ‖ 00 (padding method 2 / CMAC), so even a
        // variable-length format would not have been ambiguous.
        let m = &grant[..29];
        let mut m0 = m.to_vec();
        m0.push(0);
        assert_ne!(
            profile_tag(p, &f.keys.grant, m).unwrap(),
            profile_tag(p, &f.keys.grant, &m0).unwrap()
        );
        // A grant whose last body byte is moved into the tag position: different bytes, bad tag.
        let mut shifted = [0u8; 37];
        shifted[1..].copy_from_slice(&grant[..36]);
        shifted[0] = 0x01;
        let e = sw(f.module.apply_grant(&shifted));
        assert!(e == 0x9C0A || e == 0x6982);
        assert_eq!(f.module.state().balance, 0);
        f.module.apply_grant(&grant).unwrap();
        assert_eq!(f.module.state().balance, 100);
    }
}

#[test]
fn forged_and_truncated_tags_registered() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let req = f.module.initiate_reload(100).unwrap();
        let grant = f.serve(&req).unwrap();
        for bit in [0usize, 7, 63] {
            let mut forged = grant;
            forged[29 + bit / 8] ^= 1 << (bit % 8);
            assert_eq!(sw(f.module.apply_grant(&forged)), 0x6982, "{p}");
        }
        let st = f.module.state();
        assert_eq!(st.bad_tags, 3);
        assert_eq!(st.fraud_log.len(), 3);
        assert_eq!(st.fraud_log[0].kind, FraudKind::BadTag);
        assert_eq!(st.fraud_log[0].carried, 1, "S' of the forged grant");
        // A truncated tag is a wrong length: refused before the tag, not registered.
        assert_eq!(sw(f.module.apply_grant(&grant[..33])), 0x6700);
        assert_eq!(f.module.state().bad_tags, 3);
        // Forged provisional ack and limit update: registered too.
        let pa = ProvisionalAck::build(p, f.id, 1, req[23..31].try_into().unwrap(), &f.keys.grant)
            .unwrap();
        let mut bad_pa = pa.to_bytes();
        bad_pa[30] ^= 0x80;
        assert_eq!(sw(f.module.apply_provisional(&bad_pa)), 0x6982);
        let lu = LimitUpdate::build(p, f.id, 1, LIMITS, &f.keys.grant).unwrap();
        let mut bad_lu = lu.to_bytes();
        bad_lu[31] ^= 1;
        assert_eq!(sw(f.module.apply_limit_update(&bad_lu)), 0x6982);
        assert_eq!(f.module.state().bad_tags, 5);
        assert_eq!(
            f.module.state().lifecycle,
            Lifecycle::Blocked,
            "threshold 5 reached"
        );
        // The server: a forged request tag is registered, a truncated one is malformed.
        let mut forged_req = req;
        forged_req[30] ^= 1;
        assert_eq!(f.serve(&forged_req).unwrap_err().http_status(), 403);
        assert_eq!(f.record.failure_count, 1);
        assert_eq!(f.serve(&req[..27]).unwrap_err().http_status(), 400);
        assert_eq!(f.record.failure_count, 1);
    }
}

#[test]
fn counter_at_2_32_minus_2_and_minus_1() {
    for p in Profile::ALL {
        let mut f = fx_with(p, *b"MODULE-A", LIMITS, 0, u32::MAX - 1, 5);
        // N = 2^32−2: one last reload works and takes N to 2^32−1.
        let (req, grant, ack) = f.round(100);
        assert_eq!(ReloadRequest::parse(&req).unwrap().n, u32::MAX - 1);
        assert_eq!(ReloadGrant::parse(&grant).unwrap().s_next, u32::MAX);
        assert_eq!(CompletionAck::parse(&ack).unwrap().n_next, u32::MAX);
        assert_eq!(f.module.state().n, u32::MAX);
        assert_eq!(f.record.s, u32::MAX);
        // N = 2^32−1: the module blocks instead of wrapping.
        assert_eq!(sw(f.module.initiate_reload(100)), 0x9C0C, "{p}");
        assert_eq!(f.module.state().lifecycle, Lifecycle::Blocked);
        assert_eq!(f.module.state().n, u32::MAX);
        assert_eq!(f.module.status().to_bytes()[0], 0x03);
        // A grant with S' = 0 (a wrapped N + 1) is never accepted: the module is blocked, and
        // an operational module at 2^32−1 finds no S' equal to N + 1.
        let mut g = fx_with(p, *b"MODULE-A", LIMITS, 0, u32::MAX, 5);
        g.module.state_mut().pending = Some(req);
        let wrapped = g.signed_grant(
            0,
            GrantStatus::Granted,
            100,
            req[23..31].try_into().unwrap(),
        );
        assert_eq!(sw(g.module.apply_grant(&wrapped)), 0x9C05);
        assert_eq!(g.module.state().balance, 0);
        // The server at S = 2^32−1: a (validly MACed) request N = 2^32−1 blocks the module.
        let last = ReloadRequest::build(p, f.id, u32::MAX, 100, 100, &f.keys.request).unwrap();
        let r = f.serve(&last.to_bytes()).unwrap_err();
        assert_eq!(r, Rejection::CounterExhausted);
        assert_eq!(r.http_status(), 423);
        assert_eq!(f.record.state, ServerModuleState::Blocked);
        assert_eq!(f.record.s, u32::MAX);
        // The previous request (N = 2^32−2) is not resent any more either: blocked.
        assert_eq!(f.serve(&req), Err(Rejection::Blocked));
        assert_eq!(f.debited(), 100);
    }
}

#[test]
fn overflow_near_upper_limit() {
    for p in Profile::ALL {
        // B near U: the module refuses R beyond U − B; the server caps G at U − B.
        let mut f = fx_with(p, *b"MODULE-A", LIMITS, 0, 0, 50);
        f.module.state_mut().balance = 950;
        assert_eq!(sw(f.module.initiate_reload(51)), 0x9C01, "{p}");
        let (_, grant, _) = f.round(50);
        assert_eq!(ReloadGrant::parse(&grant).unwrap().granted, 50);
        assert_eq!(f.module.state().balance, 1000);
        // A request for more than U − B (built with the key: this module would refuse it with
        // 9C01, a module personalised with a higher U would not): the server caps G at 30.
        let mut f = fx_with(p, *b"MODULE-A", LIMITS, 970, 0, 50);
        let req = ReloadRequest::build(p, f.id, 0, 100, 970, &f.keys.request).unwrap();
        f.module.state_mut().pending = Some(req.to_bytes());
        let grant = f.serve(&req.to_bytes()).unwrap();
        assert_eq!(ReloadGrant::parse(&grant).unwrap().granted, 30);
        f.module.apply_grant(&grant).unwrap();
        assert_eq!(f.module.state().balance, 1000);
        // U − B below m: declined 01; at U: declined 05.
        let mut f = fx_with(p, *b"MODULE-A", LIMITS, 995, 0, 50);
        let req = ReloadRequest::build(p, f.id, 0, 100, 995, &f.keys.request).unwrap();
        let g = ReloadGrant::parse(&f.serve(&req.to_bytes()).unwrap()).unwrap();
        assert_eq!(g.status, GrantStatus::Declined(DeclineReason::BelowMinimum));
        let req = ReloadRequest::build(p, f.id, 1, 100, 1000, &f.keys.request).unwrap();
        let g = ReloadGrant::parse(&f.serve(&req.to_bytes()).unwrap()).unwrap();
        assert_eq!(g.status, GrantStatus::Declined(DeclineReason::AtUpperLimit));
        assert_eq!(g.granted, 0);
        assert!(f.ledger.is_empty());
        // B near i32::MAX with U = i32::MAX: wide arithmetic, no wrap to negative.
        let wide = Limits {
            min_reload: 1,
            max_reload: i32::MAX as u32,
            upper: i32::MAX,
            credit_line: i32::MAX,
        };
        let mut f = fx_with(p, *b"MODULE-A", wide, i32::MAX - 5, 0, 50);
        assert_eq!(sw(f.module.initiate_reload(6)), 0x9C01);
        assert_eq!(sw(f.module.initiate_reload(i32::MAX as u32)), 0x9C01);
        let (_, grant, _) = f.round(5);
        assert_eq!(ReloadGrant::parse(&grant).unwrap().granted, 5);
        assert_eq!(f.module.state().balance, i32::MAX);
        // A grant (validly signed) beyond U − B: refused and registered, balance unchanged.
        let mut f = fx_with(p, *b"MODULE-A", wide, i32::MAX - 5, 0, 50);
        let req = f.module.initiate_reload(5).unwrap();
        let tag: [u8; 8] = req[23..31].try_into().unwrap();
        for g in [6, u32::MAX, 0] {
            let over = f.signed_grant(1, GrantStatus::Granted, g, tag);
            assert_eq!(sw(f.module.apply_grant(&over)), 0x9C06);
        }
        assert_eq!(f.module.state().window_events, 3);
        assert_eq!(
            f.module.state().fraud_log[0].kind,
            FraudKind::GrantBeyondLimits
        );
        assert_eq!(f.module.state().balance, i32::MAX - 5);
        // Huge R: refused by the module and declined by the server.
        assert_eq!(sw(fx(p).module.initiate_reload(u32::MAX)), 0x9C01);
        let mut f = fx(p);
        let huge = ReloadRequest::build(p, f.id, 0, u32::MAX, i32::MIN, &f.keys.request).unwrap();
        let g = ReloadGrant::parse(&f.serve(&huge.to_bytes()).unwrap()).unwrap();
        assert_eq!(g.status, GrantStatus::Declined(DeclineReason::AboveMaximum));
    }
}

#[test]
fn debit_below_credit_line_refused() {
    for p in Profile::ALL {
        let mut f = fx(p);
        assert_eq!(
            sw(f.module.debit(1)),
            0x9C07,
            "{p}: floor 0 without provisional"
        );
        assert_eq!(sw(f.module.debit(0)), 0x6A80);
        assert_eq!(sw(f.module.debit(0x8000_0000)), 0x6A80);
        let req = f.module.initiate_reload(200).unwrap();
        let request = ReloadRequest::parse(&req).unwrap();
        let pa = build_provisional_ack(&f.record, &request, &f.keys.grant).unwrap();
        f.module.apply_provisional(&pa).unwrap();
        assert_eq!(f.module.debit(60).unwrap(), -60);
        assert_eq!(f.module.debit(40).unwrap(), -100);
        assert_eq!(sw(f.module.debit(1)), 0x9C07, "floor is -L");
        assert_eq!(
            sw(f.module.debit(i32::MAX as u32)),
            0x9C07,
            "wide arithmetic"
        );
        assert_eq!(f.module.state().balance, -100);
        // The grant closes the credit line: balance −100 + 200, floor back to 0.
        let grant = f.serve(&req).unwrap();
        f.module.apply_grant(&grant).unwrap();
        assert_eq!(f.module.state().balance, 100);
        assert!(!f.module.state().provisional);
        assert_eq!(f.module.debit(100).unwrap(), 0);
        assert_eq!(sw(f.module.debit(1)), 0x9C07);
    }
}

#[test]
fn mac_check_oracle_blocks_after_threshold() {
    for p in Profile::ALL {
        let mut f = fx_with(p, *b"MODULE-A", LIMITS, 0, 0, 3);
        let req = f.module.initiate_reload(100).unwrap();
        let grant = f.serve(&req).unwrap();
        // An attacker guessing tags gets `threshold` answers, then only 9C08.
        for guess in 0..3u8 {
            let mut g = grant;
            g[36] ^= guess + 1;
            assert_eq!(sw(f.module.apply_grant(&g)), 0x6982, "{p}");
        }
        assert_eq!(f.module.state().lifecycle, Lifecycle::Blocked);
        assert_eq!(
            sw(f.module.apply_grant(&grant)),
            0x9C08,
            "even the real grant"
        );
        assert_eq!(f.module.state().balance, 0);
        assert_eq!(f.module.fraud_log()[0], 3);
        assert_eq!(f.module.status().bad_tags, 3);
        // The server likewise blocks after `threshold` bad tags, then refuses valid requests.
        let mut s = fx_with(p, *b"MODULE-A", LIMITS, 0, 0, 3);
        let req = s.module.initiate_reload(100).unwrap();
        for i in 0..3u8 {
            let mut r = req;
            r[30] ^= i + 1;
            assert_eq!(s.serve(&r).unwrap_err().http_status(), 403);
        }
        assert_eq!(s.record.state, ServerModuleState::Blocked);
        assert_eq!(s.serve(&req).unwrap_err().http_status(), 423);
        assert!(s.ledger.is_empty());
    }
}

#[test]
fn lost_grant_retried_5x_identical_bytes_one_debit() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let first = f.module.initiate_reload(100).unwrap();
        let mut grants = Vec::new();
        for _ in 0..5 {
            // The grant is lost on the way back; the appliance retries from the start.
            let req = f.module.initiate_reload(100).unwrap();
            assert_eq!(req, first, "{p}: request re-issued byte for byte");
            grants.push(f.serve(&req).unwrap());
        }
        assert!(grants.windows(2).all(|w| w[0] == w[1]), "identical grants");
        assert_eq!(f.ledger.len(), 1);
        assert_eq!(f.debited(), 100);
        let ack = f.module.apply_grant(&grants[4]).unwrap();
        for g in &grants[..4] {
            assert_eq!(sw(f.module.apply_grant(g)), 0x9C04);
        }
        assert_eq!(f.module.state().balance, 100);
        assert_eq!(f.module.state().n, 1);
        // The completion ack can be fetched again and is accepted idempotently.
        assert_eq!(f.module.last_completion().unwrap(), ack);
        handle_completion(&mut f.record, &ack, &f.keys.request).unwrap();
        handle_completion(&mut f.record, &ack, &f.keys.request).unwrap();
        assert_eq!(f.record.completed_through, Some(1));
        assert_eq!(f.record.failure_count, 0);
    }
}

#[test]
fn downgrade_alg_id_rejected() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let req = f.module.initiate_reload(100).unwrap();
        for other in Profile::ALL.into_iter().filter(|&o| o != p) {
            // Re-labelled: refused by algorithm before the tag, not registered.
            let mut r = req;
            r[2] = other.id();
            assert!(matches!(
                f.serve(&r),
                Err(Rejection::UnknownAlgorithm { got, expected }) if got == other && expected == p
            ));
            // Even a request genuinely MACed under the other profile (with a key of its length).
            let k = SecretKey::new(&vec![0x11; other.module_key_len()]);
            let weak = ReloadRequest::build(other, f.id, 0, 100, 0, &k).unwrap();
            assert_eq!(f.serve(&weak.to_bytes()).unwrap_err().http_status(), 400);
        }
        let mut unknown = req;
        unknown[2] = 0x00;
        assert!(matches!(f.serve(&unknown), Err(Rejection::Malformed(_))));
        assert_eq!(f.record.failure_count, 0);
        // The module refuses a grant re-labelled with another algorithm id, unregistered.
        let grant = f.serve(&req).unwrap();
        let mut g = grant;
        g[2] = if p == Profile::AesCmac { 0x03 } else { 0x01 };
        assert_eq!(sw(f.module.apply_grant(&g)), 0x9C0A);
        assert_eq!(f.module.state().bad_tags, 0);
        f.module.apply_grant(&grant).unwrap();
    }
}

#[test]
fn limit_update_replay_registered() {
    for p in Profile::ALL {
        let mut f = fx(p);
        let new = Limits {
            upper: 2000,
            ..LIMITS
        };
        let u1 = build_limit_update(&mut f.record, new, &f.keys.grant).unwrap();
        assert_eq!(LimitUpdate::parse(&u1).unwrap().sequence, 1);
        // Until the module confirms, the server decides with the stricter limits.
        assert_eq!(f.record.effective_limits().upper, 1000);
        f.module.apply_limit_update(&u1).unwrap();
        assert_eq!(f.module.status().limit_sequence, 1);
        assert_eq!(f.module.status().limits.upper, 2000);
        // Replaying it (or any older sequence): 9C09, registered as kind 03.
        assert_eq!(sw(f.module.apply_limit_update(&u1)), 0x9C09, "{p}");
        let old = LimitUpdate::build(p, f.id, 0, LIMITS, &f.keys.grant).unwrap();
        assert_eq!(sw(f.module.apply_limit_update(&old.to_bytes())), 0x9C09);
        let st = f.module.state();
        assert_eq!(st.window_events, 2);
        assert_eq!(st.fraud_log[0].kind, FraudKind::LimitReplay);
        assert_eq!(st.fraud_log[0].carried, 0);
        assert_eq!(st.fraud_log[1].carried, 1);
        assert_eq!(st.limits.unwrap().upper, 2000);
        // Invalid limits with a fresh sequence: 9C0B, not registered, nothing stored.
        let bad = LimitUpdate::build(
            p,
            f.id,
            2,
            Limits {
                min_reload: 0,
                ..LIMITS
            },
            &f.keys.grant,
        )
        .unwrap();
        assert_eq!(sw(f.module.apply_limit_update(&bad.to_bytes())), 0x9C0B);
        assert_eq!(f.module.state().window_events, 2);
        assert_eq!(f.module.state().limit_sequence, 1);
        // The server refuses to sign invalid limits at all.
        assert!(
            build_limit_update(
                &mut f.record,
                Limits {
                    min_reload: 0,
                    ..LIMITS
                },
                &f.keys.grant
            )
            .is_err()
        );
    }
}
