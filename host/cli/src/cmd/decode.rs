//! `simkit decode`: recognise a hex string as a credit-module message, a command APDU or a
//! response APDU, print its fields, and verify a message's tag when a key is given.
//!
//! Recognition order (overridable with `--as`): a credit-module message first (its version,
//! type, algorithm and exact length make false positives unlikely), then a command APDU whose
//! CLA/INS is one the simkit applets or ISO 7816-4 define, then a response (data ‖ SW).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use simkit_core::apdu::{Command, Response};
use simkit_core::backup::commands as backup_cmd;
use simkit_core::credit::commands as credit_cmd;
use simkit_core::credit::message::Message;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;
use simkit_core::hexutil::{parse_hex, to_hex};

use crate::keyarg::{KeyArgs, MasterArgs};
use crate::output::Output;

/// What to decode the bytes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum As {
    /// Guess: message, then command, then response.
    Auto,
    /// A credit-module message (applet-spec/credit-module.md §3).
    Message,
    /// A command APDU.
    Command,
    /// A response APDU: data ‖ SW1 SW2.
    Response,
}

/// Arguments of `simkit decode`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The bytes in hex (spaces allowed).
    hex: String,
    /// How to read the bytes.
    #[arg(long = "as", value_enum, default_value = "auto")]
    as_: As,
    /// Module key to verify a message's tag: K_req for requests and completion acks, K_grant
    /// for grants, provisional acks and limit updates.
    #[command(flatten)]
    key: KeyArgs,
    /// Or the issuer master key: the module keys are derived from it and the message's module id.
    #[command(flatten)]
    master: MasterArgs,
    /// Expected crypto profile; a message of another profile is reported as a mismatch.
    #[arg(long)]
    profile: Option<Profile>,
}

enum Verifier {
    None,
    ModuleKey(SecretKey),
    Master(SecretKey),
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let bytes = parse_hex(&args.hex).context("the input is not valid hex")?;
    let verifier = verifier(&args)?;
    let (value, text, ok) = match args.as_ {
        As::Message => decode_message(&Message::parse(&bytes)?, &verifier, args.profile)?,
        As::Command => decode_command(&Command::parse(&bytes)?, &verifier, args.profile)?,
        As::Response => decode_response(&Response::parse(&bytes)?, &verifier, args.profile)?,
        As::Auto => {
            if let Ok(msg) = Message::parse(&bytes) {
                decode_message(&msg, &verifier, args.profile)?
            } else if let Some(cmd) = Command::parse(&bytes).ok().filter(is_known_command) {
                decode_command(&cmd, &verifier, args.profile)?
            } else if let Ok(resp) = Response::parse(&bytes) {
                decode_response(&resp, &verifier, args.profile)?
            } else {
                bail!(
                    "{} bytes are neither a credit-module message, a command APDU nor a response",
                    bytes.len()
                );
            }
        }
    };
    out.emit(&value, &text);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verifier(args: &Args) -> Result<Verifier> {
    Ok(match (args.key.is_given(), args.master.is_given()) {
        (false, false) => Verifier::None,
        (true, false) => Verifier::ModuleKey(args.key.load("module key")?),
        (false, true) => Verifier::Master(args.master.load()?),
        (true, true) => bail!("give either a module key or a master key, not both"),
    })
}

/// A command is "known" when an applet or ISO 7816-4 defines its CLA/INS: otherwise almost any
/// byte string of 4+ bytes would parse as some command.
fn is_known_command(cmd: &Command) -> bool {
    let cla = cmd.cla & !0x10; // chaining bit
    match cla {
        0x00 => matches!(cmd.ins, 0xA4 | 0x20 | 0x24 | 0xC0 | 0xB0 | 0xCA),
        0x80 => !command_names(cmd.ins).is_empty(),
        _ => false,
    }
}

/// Names of `ins` in the two applets (their INS values overlap, so both may answer).
fn command_names(ins: u8) -> Vec<String> {
    let mut names = Vec::new();
    if let Some((_, name)) = credit_cmd::INS_TABLE.iter().find(|(i, _)| *i == ins) {
        names.push(format!("{name} (credit module)"));
    }
    if let Some((_, name)) = backup_cmd::INS_TABLE.iter().find(|(i, _)| *i == ins) {
        names.push(format!("{name} (backup store)"));
    }
    names
}

type Decoded = (Value, Vec<String>, bool);

fn decode_message(msg: &Message, verifier: &Verifier, profile: Option<Profile>) -> Result<Decoded> {
    let mut text = vec![format!("credit-module message: {}", msg.message_type())];
    let mut fields = serde_json::Map::new();
    for (name, value) in msg.fields() {
        text.push(format!("  {name:<16} {value}"));
        fields.insert(name.to_owned(), json!(value));
    }
    let mut ok = true;
    if let Some(p) = profile.filter(|p| *p != msg.profile()) {
        text.push(format!(
            "  profile mismatch: expected {p}, the message says {}",
            msg.profile()
        ));
        ok = false;
    }
    let tag_valid = match verifier {
        Verifier::None => None,
        Verifier::ModuleKey(key) => Some(verify_with_key(msg, key)?),
        Verifier::Master(master) => {
            let keys = derive_module_keys(msg.profile(), master, &msg.module_id())?;
            Some(msg.verify(&keys)?)
        }
    };
    match tag_valid {
        None => text.push("  tag not verified (give --key or --master)".into()),
        Some(true) => text.push("  tag valid".into()),
        Some(false) => {
            text.push("  tag INVALID".into());
            ok = false;
        }
    }
    let value = json!({
        "kind": "message",
        "type": msg.message_type().name(),
        "fields": fields,
        "tag_valid": tag_valid,
    });
    Ok((value, text, ok))
}

fn verify_with_key(msg: &Message, key: &SecretKey) -> Result<bool> {
    Ok(match msg {
        Message::Request(m) => m.verify(key)?,
        Message::Grant(m) => m.verify(key)?,
        Message::ProvisionalAck(m) => m.verify(key)?,
        Message::CompletionAck(m) => m.verify(key)?,
        Message::LimitUpdate(m) => m.verify(key)?,
    })
}

fn decode_command(cmd: &Command, verifier: &Verifier, profile: Option<Profile>) -> Result<Decoded> {
    let names = command_names(cmd.ins);
    let name = if cmd.cla & !0x10 == 0x00 {
        iso_name(cmd.ins).to_owned()
    } else if names.is_empty() {
        "unknown".to_owned()
    } else {
        names.join(" / ")
    };
    let mut text = vec![
        format!("command APDU ({:?}): {name}", cmd.case()),
        format!(
            "  CLA {:02X}{}",
            cmd.cla,
            if cmd.cla & 0x10 != 0 {
                " (chained, more follows)"
            } else {
                ""
            }
        ),
        format!("  INS {:02X}", cmd.ins),
        format!("  P1  {:02X}", cmd.p1),
        format!("  P2  {:02X}", cmd.p2),
    ];
    if !cmd.data.is_empty() {
        text.push(format!("  Lc  {} bytes", cmd.data.len()));
        text.push(format!("  data {}", to_hex(&cmd.data)));
    }
    if let Some(le) = cmd.le {
        text.push(format!("  Le  {le}"));
    }
    let mut value = json!({
        "kind": "command",
        "case": format!("{:?}", cmd.case()),
        "name": name,
        "cla": format!("{:02X}", cmd.cla),
        "ins": format!("{:02X}", cmd.ins),
        "p1": format!("{:02X}", cmd.p1),
        "p2": format!("{:02X}", cmd.p2),
        "data": to_hex(&cmd.data),
        "le": cmd.le,
    });
    let mut ok = true;
    if let Ok(msg) = Message::parse(&cmd.data) {
        let (v, t, o) = decode_message(&msg, verifier, profile)?;
        text.extend(t.into_iter().map(|l| format!("  {l}")));
        value["message"] = v;
        ok = o;
    }
    Ok((value, text, ok))
}

fn decode_response(
    resp: &Response,
    verifier: &Verifier,
    profile: Option<Profile>,
) -> Result<Decoded> {
    let mut text = vec![format!("response APDU: {}", resp.sw)];
    if !resp.data.is_empty() {
        text.push(format!(
            "  data ({} bytes) {}",
            resp.data.len(),
            to_hex(&resp.data)
        ));
    }
    let mut value = json!({
        "kind": "response",
        "data": to_hex(&resp.data),
        "sw": format!("{:04X}", resp.sw.to_u16()),
        "meaning": resp.sw.meaning(),
    });
    let mut ok = true;
    if let Ok(msg) = Message::parse(&resp.data) {
        let (v, t, o) = decode_message(&msg, verifier, profile)?;
        text.extend(t.into_iter().map(|l| format!("  {l}")));
        value["message"] = v;
        ok = o;
    }
    Ok((value, text, ok))
}

fn iso_name(ins: u8) -> &'static str {
    match ins {
        0xA4 => "SELECT",
        0x20 => "VERIFY",
        0x24 => "CHANGE REFERENCE DATA",
        0xC0 => "GET RESPONSE",
        0xB0 => "READ BINARY",
        0xCA => "GET DATA",
        _ => "unknown",
    }
}
