//! The one `GrantSigner` trait, implemented by the store in-process and by the HTTP client
//! against a real listener: the same reload round gives the same answers through both, and a
//! refusal keeps what the signer said (the fraud event in-process, status and code over HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use simkit_core::credit::ModuleId;
use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::credit::signer::{CompletionAnswer, GrantSigner, PendingReload, ReloadAnswer};
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;
use simkit_core::vectors::{EXAMPLE_LIMITS, EXAMPLE_MODULE_ID, example_master};
use simkit_server::{AppState, SignerClient, SoftwareKey, Store};

const PROFILE: Profile = Profile::AesCmac;

fn module_for(master: &SecretKey, id: ModuleId) -> (Registration, Module) {
    let reg =
        Registration::new(id, PROFILE, master, 0, 0, EXAMPLE_LIMITS, 3, String::new()).unwrap();
    let keys = derive_module_keys(PROFILE, master, &id).unwrap();
    let module = Module::personalised(&PersonalisationData::complete(
        PROFILE,
        id,
        &keys,
        EXAMPLE_LIMITS,
        3,
    ))
    .unwrap();
    (reg, module)
}

fn store(dir: &tempfile::TempDir, master: &SecretKey) -> Store {
    let key = Box::new(SoftwareKey::new(master.clone()));
    Store::open(&dir.path().join("s.sqlite"), key).unwrap()
}

fn grant_of(answer: ReloadAnswer) -> (Vec<u8>, bool) {
    match answer {
        ReloadAnswer::Grant { grant, resent } => (grant, resent),
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn the_store_is_a_grant_signer_and_keeps_its_fraud_events() {
    let dir = tempfile::tempdir().unwrap();
    let master = example_master(PROFILE);
    let store = store(&dir, &master);
    let (reg, mut module) = module_for(&master, EXAMPLE_MODULE_ID);
    store.import(&reg, "acct", 10_000).unwrap();
    let signer: &dyn GrantSigner<Error = simkit_server::store::SignerError> = &store;

    let request = module.initiate_reload(1_000).unwrap();
    let (grant, resent) = grant_of(signer.reload(&request).unwrap());
    assert!(!resent, "a fresh grant");
    let (again, resent) = grant_of(signer.reload(&request).unwrap());
    assert!(resent, "the same request again is the stored grant resent");
    assert_eq!(again, grant);
    // Collecting request N gives the stored grant too.
    let pending = PendingReload {
        provisional_ack: Vec::new(),
        module_id: EXAMPLE_MODULE_ID,
        n: module.state().n,
        retry_after: None,
    };
    assert_eq!(
        grant_of(signer.collect(&pending).unwrap()),
        (grant.clone(), true)
    );

    let ack = module.apply_grant(&grant).unwrap();
    assert_eq!(signer.complete(&ack).unwrap(), CompletionAnswer::Accepted);
    assert_eq!(
        signer.complete(&ack).unwrap(),
        CompletionAnswer::AlreadyAccepted
    );
    assert_eq!(store.account_balance("acct").unwrap(), Some(9_000));

    // A bad tag is refused, and the fraud event registered comes with the error.
    let mut forged = module.initiate_reload(500).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let e = signer.reload(&forged).unwrap_err();
    assert!(
        e.fraud.is_some(),
        "the fraud event reaches the caller: {e:?}"
    );
    assert_eq!(e.to_string(), e.error.to_string());
    // Garbage is refused without a fraud event.
    let e = signer.reload(b"not a request").unwrap_err();
    assert!(e.fraud.is_none());
    assert_eq!(store.fraud_log().unwrap().len(), 1);
}

#[test]
fn the_http_client_is_a_grant_signer_and_names_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let master = example_master(PROFILE);
    let store = store(&dir, &master);
    let (reg, mut module) = module_for(&master, EXAMPLE_MODULE_ID);
    store.import(&reg, "acct", 10_000).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(simkit_server::api::serve(
        listener,
        AppState::new(store, Some("tok".into())),
        async {
            let _ = stopped.await;
        },
    ));
    let client = SignerClient::new(&format!("http://{addr}/"))
        .unwrap()
        .with_token(Some("tok".into()));
    assert!(
        !format!("{client:?}").contains("tok\""),
        "the token is never printed"
    );

    let request = module.initiate_reload(1_000).unwrap();
    let (grant, _) = grant_of(client.reload(&request).unwrap());
    let (again, _) = grant_of(client.reload(&request).unwrap());
    assert_eq!(again, grant, "resent byte for byte");
    let pending = PendingReload {
        provisional_ack: Vec::new(),
        module_id: EXAMPLE_MODULE_ID,
        n: module.state().n,
        retry_after: None,
    };
    assert_eq!(grant_of(client.collect(&pending).unwrap()).0, grant);
    let ack = module.apply_grant(&grant).unwrap();
    assert_eq!(client.complete(&ack).unwrap(), CompletionAnswer::Accepted);
    assert_eq!(
        client.complete(&ack).unwrap(),
        CompletionAnswer::AlreadyAccepted
    );

    // A refusal keeps the HTTP status and the server's code.
    let e = client.reload(b"not a request").unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    let code = e.code().expect("the server's code").to_owned();
    assert!(e.to_string().contains(&format!("({code})")), "{e}");
    assert!(e.to_string().contains("answered HTTP 400"), "{e}");
    assert!(!e.retryable());

    // Admin calls carry the token; typed rows parse.
    let ledger: Vec<serde_json::Value> = client.get_admin_as("/v1/ledger").unwrap();
    assert_eq!(ledger.len(), 1);
    let e = SignerClient::new(&format!("http://{addr}"))
        .unwrap()
        .get_admin("/v1/ledger")
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    stop.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();

    // Nobody listening: a transport error, retryable.
    let e = client.reload(&request).unwrap_err();
    assert_eq!(e.kind(), "transport", "{e}");
    assert!(e.retryable());
    assert!(e.to_string().starts_with("reaching the signer at "), "{e}");
}
