//! `simkit demo`: the README's main job. Personalises a simulated card (`--card`, by default a
//! fresh jCardSim card running the credit-module applet), then plays one complete reload round
//! against it with the grant signer's store (simkit-server on a SQLite file in a temporary
//! directory, in-process), printing every message decoded. On the way the grant
//! is "lost" and the request retried, to show that a retransmission is answered byte for byte
//! without a second debit.
//!
//! `--in-memory` plays the same round, through the same client and signer, against a card backed
//! by `simkit-core`'s reference model of the applet instead of the simulator (no Java needed).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use simkit_card::credit::CreditClient;
use simkit_card::model::ModelCard;
use simkit_card::{Card, Channel};
use simkit_core::credit::Limits;
use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::Message;
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;
use simkit_core::hexutil::{parse_hex_array, to_hex};

use crate::cardarg::CardArg;
use crate::output::Output;
use simkit_server::{Answer, SoftwareKey, Store};

/// Arguments of `simkit demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Crypto profile of the demo module.
    #[arg(long, default_value = "aes-cmac")]
    profile: Profile,
    /// Credits to request.
    #[arg(long, default_value_t = 2500)]
    amount: u32,
    /// The module's balance before the reload.
    #[arg(long, default_value_t = 1500)]
    balance: i32,
    /// Funds in the account the server debits.
    #[arg(long, default_value_t = 1_000_000)]
    funds: u64,
    /// Module id (8 bytes, hex).
    #[arg(long, default_value = "0102030405060708")]
    module_id: String,
    /// Play between the pure state machines instead of a card (`--card` is then ignored).
    #[arg(long)]
    in_memory: bool,
    #[command(flatten)]
    card: CardArg,
}

/// A fixed, public demo master key per profile: the demo is reproducible and holds no secret.
fn demo_master(profile: Profile) -> SecretKey {
    let hex = match profile {
        Profile::AesCmac => "404142434445464748494A4B4C4D4E4F",
        Profile::RetailMac => "0123456789ABCDEFFEDCBA9876543210",
        Profile::DesxCbc => "0123456789ABCDEF1122334455667788A1A2A3A4A5A6A7A8",
    };
    // The constants above are valid hex of the right lengths.
    SecretKey::from_hex(hex).unwrap_or_else(|_| SecretKey::new(&[]))
}

struct Transcript {
    steps: Vec<Value>,
    text: Vec<String>,
}

impl Transcript {
    fn say(&mut self, step: &str, detail: String) {
        self.text.push(format!("{step}: {detail}"));
        self.steps.push(json!({ "step": step, "detail": detail }));
    }

    fn message(&mut self, step: &str, from: &str, to: &str, bytes: &[u8]) -> Result<()> {
        let msg = Message::parse(bytes).with_context(|| format!("{step}: undecodable message"))?;
        self.text.push(format!(
            "{step}: {from} → {to}, {} ({} bytes)",
            msg.message_type(),
            bytes.len()
        ));
        self.text.push(format!("  {}", to_hex(bytes)));
        let mut fields = BTreeMap::new();
        for (name, value) in msg.fields() {
            self.text.push(format!("  {name:<16} {value}"));
            fields.insert(name, value);
        }
        self.steps.push(json!({
            "step": step, "from": from, "to": to, "type": msg.message_type().name(),
            "hex": to_hex(bytes), "fields": fields,
        }));
        Ok(())
    }
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    if args.in_memory {
        let mut channel = Channel::new(ModelCard::new());
        play(&mut channel, "in-memory reference model", &args, out)
    } else {
        let (mut channel, uri) = args.card.open()?;
        play(&mut channel, &uri.to_string(), &args, out)
    }
}

const DEMO_LIMITS: Limits = Limits {
    min_reload: 100,
    max_reload: 50_000,
    upper: 100_000,
    credit_line: 2_000,
};

/// The account the demo's reloads are debited from, and its funds.
const DEMO_ACCOUNT: &str = "demo-account";
const DEMO_FUNDS: i64 = 1_000_000;

/// The round on a card, through the same client as `simkit credit reload` and the same signer
/// store as `simkit serve` (SQLite).
fn play<C: Card>(
    channel: &mut Channel<C>,
    card_name: &str,
    args: &Args,
    out: &Output,
) -> Result<ExitCode> {
    let profile = args.profile;
    let module_id: [u8; 8] =
        parse_hex_array(&args.module_id, "module id").context("--module-id")?;
    let master = demo_master(profile);
    let keys = derive_module_keys(profile, &master, &module_id)?;
    let mut t = Transcript {
        steps: Vec::new(),
        text: Vec::new(),
    };

    // The grant signer — simkit-server's store, the one `simkit serve` runs, here in-process —
    // keeps its SQLite database in a temporary directory that goes with the demo.
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let registration = Registration::new(
        module_id,
        profile,
        &master,
        0,
        args.balance,
        DEMO_LIMITS,
        5,
        "https://reload.example/v1".into(),
    )?;
    let db_path = dir.path().join("signer.db");
    let signer = Store::open(&db_path, Box::new(SoftwareKey::new(master.clone())))
        .with_context(|| format!("opening the signer's database {}", db_path.display()))?;
    signer
        .import(&registration, DEMO_ACCOUNT, DEMO_FUNDS)
        .context("importing the module's registration into the signer")?;

    let mut card = CreditClient::new(channel);
    card.select().context("selecting the credit module")?;
    let mut data = PersonalisationData::complete(profile, module_id, &keys, DEMO_LIMITS, 5);
    data.initial = Some(InitialCounters {
        balance: args.balance,
        n: 0,
    });
    data.server_address = Some(registration.server_address.clone().into_bytes());
    card.personalise(&data).context("PERSONALISE")?;
    card.lock().context("LOCK")?;
    t.say(
        "personalise",
        format!(
            "card {card_name}: module {} profile {profile}, master KCV {}, request key KCV {}, grant key KCV {}, balance {}",
            to_hex(&module_id), registration.master_key_kcv, registration.request_key_kcv,
            registration.grant_key_kcv, args.balance,
        ),
    );

    let status = card.status().context("GET STATUS")?;
    let Some((lo, hi)) = status.allowed_range() else {
        bail!(
            "the balance {} leaves no reload range under the upper limit {}",
            args.balance,
            DEMO_LIMITS.upper
        );
    };
    ensure!(
        (lo..=hi).contains(&args.amount),
        "amount {} is outside the module's allowed range {lo}..={hi}",
        args.amount
    );
    t.say(
        "status",
        format!(
            "balance {}, N {}, allowed reload range {lo}..={hi}",
            status.balance, status.n
        ),
    );

    let request = card
        .initiate_reload(args.amount)
        .context("INITIATE RELOAD")?
        .to_bytes();
    t.message("request", "card", "signer", &request)?;
    let Answer::Fresh(grant) = signer.reload(&request).map_err(|(e, _)| e)?.0 else {
        bail!("a fresh request was taken for a retransmission");
    };
    t.message("grant", "signer", "card", &grant)?;

    let again = card
        .initiate_reload(args.amount)
        .context("INITIATE RELOAD (retry)")?
        .to_bytes();
    ensure!(
        again == request,
        "the re-issued request differs from the pending one"
    );
    let Answer::Resent(resent) = signer.reload(&again).map_err(|(e, _)| e)?.0 else {
        bail!("a retransmission was taken for a new request");
    };
    ensure!(
        resent == grant,
        "the resent grant differs from the stored one"
    );
    t.say("retry", "grant lost; the card re-issued the same request and the signer answered the stored grant byte for byte, no new debit".into());

    let ack = card
        .apply_grant(&grant)
        .context("APPLY GRANT")?
        .ack()
        .to_bytes();
    t.message("completion", "card", "signer", &ack)?;
    signer.completion(&ack).map_err(|(e, _)| e)?;
    let after = card.status().context("GET STATUS")?;
    let record = signer.module(&to_hex(&module_id))?.record;
    let debits: Vec<(u32, u32)> = signer.ledger()?.iter().map(|d| (d.n, d.amount)).collect();
    t.say(
        "done",
        format!(
            "balance {} → {}, N {} → {}, signer S = {}, debits {:?}",
            status.balance, after.balance, status.n, after.n, record.s, debits,
        ),
    );
    out.emit(
        &json!({ "profile": profile.name(), "card": card_name, "steps": t.steps }),
        &t.text,
    );
    Ok(ExitCode::SUCCESS)
}
