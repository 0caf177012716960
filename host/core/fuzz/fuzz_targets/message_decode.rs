//! Fuzz target: every credit-module decoder, and the module and server on arbitrary bytes.
//!
//! Checks that no input panics, that whatever decodes re-encodes to the same bytes, and that
//! unauthenticated bytes never move a module's or a server record's numbers or balance.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simkit_core::credit::Limits;
use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::message::{
    CompletionAck, LimitUpdate, Message, ProvisionalAck, ReloadGrant, ReloadRequest,
};
use simkit_core::credit::module::{FraudEntry, Module, Status};
use simkit_core::credit::server::{ServerRecord, classify_request, handle_completion};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey};

const ID: [u8; 8] = *b"FUZZ-MOD";
const LIMITS: Limits = Limits {
    min_reload: 1,
    max_reload: 1000,
    upper: 10_000,
    credit_line: 100,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ReloadRequest::parse(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(m) = ReloadGrant::parse(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(m) = ProvisionalAck::parse(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(m) = CompletionAck::parse(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(m) = LimitUpdate::parse(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(m) = Message::parse(data) {
        assert_eq!(m.to_bytes(), data);
        let _ = m.to_string();
    }
    if let Ok(s) = Status::parse(data) {
        assert_eq!(s.to_bytes(), data);
        let _ = s.to_string();
    }
    if let Ok(d) = PersonalisationData::parse(data) {
        assert_eq!(PersonalisationData::parse(&d.to_tlv()), Ok(d));
    }
    let _ = FraudEntry::parse_log(data);

    // The first byte picks a profile; the module and the server then see the rest.
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let p = Profile::ALL[usize::from(sel) % Profile::ALL.len()];
    let keys = ModuleKeys {
        request: SecretKey::new(&vec![0x11; p.module_key_len()]),
        grant: SecretKey::new(&vec![0x22; p.module_key_len()]),
    };
    let Ok(mut module) =
        Module::personalised(&PersonalisationData::complete(p, ID, &keys, LIMITS, 3))
    else {
        return;
    };
    let _ = module.initiate_reload(100);
    let _ = module.apply_grant(rest);
    let _ = module.apply_provisional(rest);
    let _ = module.apply_limit_update(rest);
    assert_eq!((module.state().n, module.state().balance), (0, 0));
    let mut record = ServerRecord::new(ID, p, 0, LIMITS, 3);
    let _ = classify_request(&record, rest, &keys.request);
    let _ = handle_completion(&mut record, rest, &keys.request);
    assert_eq!(record.s, 0);
});
