//! The credit-module client against the real applet on the card host, for every crypto
//! profile: personalise, lock, full reload rounds with grants from the core's server policy,
//! the replayed grant (AlreadyApplied with identical ack bytes), the lost grant (byte-identical
//! resend), a bad tag, and a tear at every persistent write of APPLY GRANT followed by a retry
//! (credited exactly once).
//!
//! Needs the card host jar, which ships the credit module (`mvn -B -q -f applets/pom.xml
//! package -DskipTests`).

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simkit_card::credit::{ApplyOutcome, CreditClient, CreditClientError};
use simkit_card::jcardsim::CardHostProcess;
use simkit_card::{
    AppletSpec, Card, CardError, CardHostConfig, CardSpec, Channel, JcardsimCard, SimulatorControl,
};
use simkit_core::credit::commands::{APPLET_AID, InitialCounters, PersonalisationData};
use simkit_core::credit::message::{GrantStatus, ReloadGrant};
use simkit_core::credit::module::Lifecycle;
use simkit_core::credit::{FraudKind, Limits, ModuleId, server};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey, derive_module_keys};
use simkit_core::status::Sw;

const CLASS: &str = "dev.simkit.credit.CreditModule";

/// A card host with one credit-module card per profile.
fn host() -> std::sync::Arc<CardHostProcess> {
    let config = CardHostConfig {
        cards: vec![CardSpec::new([AppletSpec::new(APPLET_AID.to_vec(), CLASS)])],
        copies: u32::try_from(Profile::ALL.len()).unwrap(),
        ..CardHostConfig::default()
    };
    CardHostProcess::spawn(config).unwrap_or_else(|e| {
        panic!("{e}\n(is the card host jar older than the credit module? rebuild it)")
    })
}

fn limits() -> Limits {
    Limits {
        min_reload: 10,
        max_reload: 1000,
        upper: 1_000_000,
        credit_line: 500,
    }
}

fn module_id(profile: Profile) -> ModuleId {
    [0x4D, 0x4F, 0x44, 0x00, 0x00, 0x00, 0x00, profile.id()]
}

fn keys(profile: Profile) -> ModuleKeys {
    let master: Vec<u8> = (0..profile.master_key_len())
        .map(|i| 0x40 ^ u8::try_from(i).unwrap())
        .collect();
    derive_module_keys(profile, &SecretKey::new(&master), &module_id(profile)).unwrap()
}

/// The grant the reload server's policy answers to a fresh request (spec §6 rule 3).
fn server_grant(
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
    server::finish_fresh(record, &request, outcome, &keys.grant).unwrap()
}

fn personalise_and_lock<C: Card>(c: &mut CreditClient<'_, C>, profile: Profile) {
    c.select().unwrap();
    let s = c.status().unwrap();
    assert_eq!((s.lifecycle, s.profile), (Lifecycle::Personalisation, None));
    assert_eq!(
        c.lock().unwrap_err().sw(),
        Some(Sw::PersonalisationIncomplete)
    );
    // Keys before the profile are refused; the profile alone first, then everything.
    let keys = keys(profile);
    let early = PersonalisationData {
        k_req: Some(keys.request.clone()),
        ..PersonalisationData::default()
    };
    assert_eq!(
        c.personalise(&early).unwrap_err().sw(),
        Some(Sw::ConditionsOfUseNotSatisfied)
    );
    let mut data = PersonalisationData::complete(profile, module_id(profile), &keys, limits(), 3);
    data.initial = Some(InitialCounters { balance: 0, n: 0 });
    data.server_address = Some(b"https://reload.simkit.invalid/".to_vec());
    c.personalise(&data).unwrap();
    c.lock().unwrap();
    assert_eq!(
        c.personalise(&data).unwrap_err().sw(),
        Some(Sw::ConditionsOfUseNotSatisfied),
        "PERSONALISE after LOCK"
    );
    let s = c.status().unwrap();
    assert_eq!(s.lifecycle, Lifecycle::Operational);
    assert_eq!(s.profile, Some(profile));
    assert_eq!(s.module_id, module_id(profile));
    assert_eq!((s.balance, s.n, s.limits, s.threshold), (0, 0, limits(), 3));
    assert_eq!(
        c.server_address().unwrap(),
        b"https://reload.simkit.invalid/"
    );
}

fn run_profile(card: JcardsimCard, profile: Profile) {
    let keys = keys(profile);
    let mut record = server::ServerRecord::new(module_id(profile), profile, 0, limits(), 3);
    let mut ch = Channel::new(card);
    let mut c = CreditClient::new(&mut ch);
    personalise_and_lock(&mut c, profile);
    assert_eq!(
        c.last_completion().unwrap_err().sw(),
        Some(Sw::ReferencedDataNotFound)
    );

    // A full reload round.
    let request = c.initiate_reload(300).unwrap();
    assert!(request.verify(&keys.request).unwrap());
    assert_eq!((request.n, request.requested, request.balance), (0, 300, 0));
    let status = c.status().unwrap();
    assert!(status.pending);
    assert_eq!(status.pending_r, 300);
    let grant = server_grant(&mut record, &keys, &request.to_bytes());
    let ApplyOutcome::Applied(ack) = c.apply_grant(&grant).unwrap() else {
        panic!("{profile}: first apply was not Applied")
    };
    let apply_writes = c.channel().card_mut().write_count().unwrap();
    assert!(ack.verify(&keys.request).unwrap());
    assert_eq!(
        (ack.n_next, ack.granted, ack.balance, ack.declined),
        (1, 300, 300, false)
    );
    server::handle_completion(&mut record, &ack.to_bytes(), &keys.request).unwrap();
    let status = c.status().unwrap();
    assert_eq!((status.balance, status.n), (300, 1));
    assert!(!status.pending && status.last_completion);

    // Interrupted after the card applied it (the ack never reached the server), run again:
    // already applied, the identical ack bytes, no double credit.
    let again = c.apply_grant(&grant).unwrap();
    assert_eq!(again, ApplyOutcome::AlreadyApplied(ack.clone()));
    assert_eq!(again.ack().to_bytes(), ack.to_bytes());
    assert_eq!(c.last_completion().unwrap().to_bytes(), ack.to_bytes());
    assert_eq!(c.status().unwrap().balance, 300);

    // Lost grant: the module re-sends the pending request byte for byte, the server resends
    // its grant byte for byte, no new debit.
    let request = c.initiate_reload(200).unwrap();
    let grant = server_grant(&mut record, &keys, &request.to_bytes());
    let same = c.initiate_reload(200).unwrap();
    assert_eq!(same.to_bytes(), request.to_bytes());
    let resent = server::classify_request(&record, &same.to_bytes(), &keys.request).unwrap();
    assert_eq!(resent, server::RequestAction::Resend { grant });
    assert_eq!(
        c.initiate_reload(201).unwrap_err().sw(),
        Some(Sw::DifferentReloadPending)
    );
    assert!(matches!(
        c.apply_grant(&grant).unwrap(),
        ApplyOutcome::Applied(_)
    ));
    assert_eq!(c.status().unwrap().balance, 500);

    // Debit, and a grant with a bad tag (registered as fraud).
    assert_eq!(c.debit(50).unwrap(), 450);
    assert_eq!(
        c.debit(1_000_000).unwrap_err().sw(),
        Some(Sw::InsufficientBalance)
    );
    let request = c.initiate_reload(10).unwrap();
    let grant = server_grant(&mut record, &keys, &request.to_bytes());
    let mut forged = grant;
    forged[ReloadGrant::LEN - 1] ^= 0x01;
    let e = c.apply_grant(&forged).unwrap_err();
    assert_eq!(
        e.to_string(),
        "APPLY GRANT: 6982 security status not satisfied"
    );
    let log = c.fraud_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].kind, log[0].module_n, log[0].carried),
        (FraudKind::BadTag, 2, 3)
    );
    assert!(matches!(
        c.apply_grant(&grant).unwrap(),
        ApplyOutcome::Applied(_)
    ));
    let mut balance = 460;
    assert_eq!(c.status().unwrap().balance, balance);

    // Power cut at every persistent write of APPLY GRANT, then the appliance runs it again:
    // the old state or the new one, never a mix, and the credit lands exactly once.
    assert!(apply_writes > 0);
    for k in 1..=apply_writes {
        let n = c.status().unwrap().n;
        let request = c.initiate_reload(10).unwrap();
        let grant = server_grant(&mut record, &keys, &request.to_bytes());
        assert_eq!(
            ReloadGrant::parse(&grant).unwrap().status,
            GrantStatus::Granted
        );
        c.channel().card_mut().tear_at(k).unwrap();
        let e = c.apply_grant(&grant).unwrap_err();
        assert!(
            matches!(e, CreditClientError::Card(CardError::PowerLost)),
            "{profile} k={k}: {e}"
        );
        c.select().unwrap();
        let torn = c.status().unwrap();
        assert!(
            (torn.balance, torn.n, torn.pending) == (balance, n, true)
                || (torn.balance, torn.n, torn.pending) == (balance + 10, n + 1, false),
            "{profile} k={k}: mixed state {torn:?}"
        );
        let outcome = c.apply_grant(&grant).unwrap();
        assert_eq!(outcome.ack().balance, balance + 10);
        assert!(outcome.ack().verify(&keys.request).unwrap());
        balance += 10;
        let s = c.status().unwrap();
        assert_eq!(
            (s.balance, s.n, s.pending),
            (balance, n + 1, false),
            "{profile} k={k}"
        );
    }
}

#[test]
fn every_profile_end_to_end() {
    let host = host();
    let threads: Vec<_> = Profile::ALL
        .into_iter()
        .enumerate()
        .map(|(i, profile)| {
            let card = host.card(u8::try_from(i).unwrap()).unwrap();
            std::thread::spawn(move || run_profile(card, profile))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
