//! `simkit credit`: the appliance's side of the credit module — status, debit, fraud log,
//! limits, and the reload round (applet-spec/credit-module.md §4, §5).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use simkit_card::credit::{ApplyOutcome, CreditClient};
use simkit_card::{AnyCard, Channel};
use simkit_core::credit::message::{CompletionAck, Message};
use simkit_core::credit::module::{Lifecycle, Status};
use simkit_core::credit::{FraudKind, Limits};
use simkit_core::hexutil::{parse_hex, to_hex};

use crate::cardarg::CardArg;
use crate::keyarg::load_key;
use crate::offline::{Answer, OfflineSigner};
use crate::output::Output;
use crate::remote::{CompletionAnswer, ReloadAnswer, RemoteSigner};

/// Arguments of `simkit credit`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    card: CardArg,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Balance, allowed reload range, N, lifecycle, pending reload and fraud counters.
    Status,
    /// Spend credits (the handset's call charging).
    Debit {
        /// Credits to debit.
        amount: u32,
    },
    /// The module's fraud log, newest first.
    FraudLog,
    /// Show the limits, or apply a MAC'd limit update.
    Limits {
        /// A limit-update message (hex) from the reload server to apply.
        #[arg(long, value_name = "HEX", conflicts_with = "set")]
        apply: Option<String>,
        /// New limits "MIN,MAX,UPPER,CREDIT_LINE", signed by the offline signer and applied.
        #[arg(long, value_name = "M,M,U,L", requires = "offline_master_key")]
        set: Option<String>,
        #[command(flatten)]
        offline: OfflineArgs,
    },
    /// Reload credits: status → range check → initiate → server → apply grant → completion.
    /// Run again after an interruption, it finishes the same reload without double credit.
    Reload {
        /// Credits to request.
        amount: u32,
        /// URL of a running grant signer (`simkit serve`).
        #[arg(long, conflicts_with = "offline_master_key")]
        server: Option<String>,
        /// With --server: how long to wait, in seconds, for a debit the signer reports as
        /// pending (HTTP 202) before stopping. The card's credit line stays open meanwhile; run
        /// the same command again to collect the grant.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 60,
            requires = "server"
        )]
        wait: u64,
        #[command(flatten)]
        offline: OfflineArgs,
    },
}

/// Exit code when a reload stops with its debit still pending (sysexits' EX_TEMPFAIL).
const EXIT_PENDING: u8 = 75;

#[derive(Debug, clap::Args)]
struct OfflineArgs {
    /// Sign grants (and limit updates) in this process with the master key in FILE (hex), keeping the signer's
    /// state beside the registration record.
    #[arg(long, value_name = "FILE")]
    offline_master_key: Option<PathBuf>,
    /// The module's registration record (written by `simkit personalise`).
    #[arg(long, value_name = "FILE", default_value = "registration.json")]
    registration: PathBuf,
}

impl OfflineArgs {
    fn signer(&self) -> Result<Option<OfflineSigner>> {
        let Some(key_file) = &self.offline_master_key else {
            return Ok(None);
        };
        let master = load_key(None, None, Some(key_file), "offline master key")?;
        Ok(Some(OfflineSigner::open(&self.registration, &master)?))
    }
}

/// Who signs the grants of a reload: the network signer, or the in-process one.
enum Signer {
    Remote(RemoteSigner),
    Offline(Box<OfflineSigner>),
}

impl Signer {
    /// The signer's answer, and whether it is known to be a retransmission of a stored grant.
    fn reload(&mut self, request: &[u8]) -> Result<(ReloadAnswer, bool)> {
        match self {
            // The network signer answers a retransmission with the stored grant too; the
            // appliance cannot tell the two apart, and need not.
            Signer::Remote(r) => Ok((r.reload(request)?, false)),
            Signer::Offline(o) => Ok(match o.reload(request)? {
                Answer::Fresh(g) => (ReloadAnswer::Grant(g), false),
                Answer::Resent(g) => (ReloadAnswer::Grant(g), true),
            }),
        }
    }

    fn completion(&mut self, ack: &[u8]) -> Result<CompletionAnswer> {
        match self {
            Signer::Remote(r) => r.completion(ack),
            Signer::Offline(o) => o.completion(ack),
        }
    }

    fn describe(&self) -> String {
        match self {
            Signer::Remote(_) => "the network signer".into(),
            Signer::Offline(o) => format!("signer state {}", o.state_path().display()),
        }
    }
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let (mut channel, uri) = args.card.open()?;
    let note = CardArg::ephemeral_note(&uri);
    let code = match args.command {
        Sub::Status => status(&mut channel, out),
        Sub::Debit { amount } => debit(&mut channel, amount, out),
        Sub::FraudLog => fraud_log(&mut channel, out),
        Sub::Limits {
            apply,
            set,
            offline,
        } => limits(&mut channel, apply, set, &offline, out),
        Sub::Reload {
            amount,
            server,
            wait,
            offline,
        } => reload(&mut channel, amount, server, wait, &offline, out),
    }?;
    if let (Some(note), false) = (note, out.is_json()) {
        eprintln!("{note}");
    }
    Ok(code)
}

fn client(channel: &mut Channel<AnyCard>) -> Result<CreditClient<'_, AnyCard>> {
    let mut c = CreditClient::new(channel);
    c.select().context("selecting the credit module")?;
    Ok(c)
}

fn status_json(s: &Status) -> serde_json::Value {
    json!({
        "lifecycle": format!("{:?}", s.lifecycle),
        "profile": s.profile.map(|p| p.name()),
        "module_id": to_hex(&s.module_id),
        "balance": s.balance,
        "n": s.n,
        "limits": s.limits,
        "limit_sequence": s.limit_sequence,
        "allowed_range": s.allowed_range(),
        "pending": s.pending,
        "pending_amount": s.pending_r,
        "provisional": s.provisional,
        "last_completion": s.last_completion,
        "bad_tags": s.bad_tags,
        "window_events": s.window_events,
        "fraud_threshold": s.threshold,
    })
}

fn status(channel: &mut Channel<AnyCard>, out: &Output) -> Result<ExitCode> {
    let s = client(channel)?.status().context("GET STATUS")?;
    let lines: Vec<String> = s.to_string().lines().map(str::to_owned).collect();
    out.emit(&status_json(&s), &lines);
    Ok(ExitCode::SUCCESS)
}

fn debit(channel: &mut Channel<AnyCard>, amount: u32, out: &Output) -> Result<ExitCode> {
    let balance = client(channel)?.debit(amount).context("DEBIT")?;
    out.emit(
        &json!({ "debited": amount, "balance": balance }),
        &[format!("debited {amount}, balance {balance}")],
    );
    Ok(ExitCode::SUCCESS)
}

fn fraud_log(channel: &mut Channel<AnyCard>, out: &Output) -> Result<ExitCode> {
    let log = client(channel)?.fraud_log().context("GET FRAUD LOG")?;
    let lines = if log.is_empty() {
        vec!["fraud log empty".to_owned()]
    } else {
        log.iter()
            .map(|e| {
                format!(
                    "{:02X} {}: module N {}, message number {}",
                    e.kind.code(),
                    fraud_kind_name(e.kind),
                    e.module_n,
                    e.carried
                )
            })
            .collect()
    };
    let entries: Vec<_> = log
        .iter()
        .map(|e| {
            json!({
                "kind": e.kind,
                "code": e.kind.code(),
                "name": fraud_kind_name(e.kind),
                "module_n": e.module_n,
                "carried": e.carried,
            })
        })
        .collect();
    out.emit(&json!({ "entries": entries }), &lines);
    Ok(ExitCode::SUCCESS)
}

/// The spec's name of a fraud-log entry kind (applet-spec/credit-module.md §4.10, §7).
fn fraud_kind_name(kind: FraudKind) -> &'static str {
    match kind {
        FraudKind::BadTag => "bad tag",
        FraudKind::Window => "window event",
        FraudKind::LimitReplay => "limit update replay",
        FraudKind::GrantBeyondLimits => "grant beyond limits",
    }
}

fn parse_limits(text: &str) -> Result<Limits> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [m, max, u, l] = parts[..] else {
        bail!("--set takes MIN,MAX,UPPER,CREDIT_LINE (4 numbers), got {text:?}");
    };
    let limits = Limits {
        min_reload: m.parse().with_context(|| format!("MIN {m:?}"))?,
        max_reload: max.parse().with_context(|| format!("MAX {max:?}"))?,
        upper: u.parse().with_context(|| format!("UPPER {u:?}"))?,
        credit_line: l.parse().with_context(|| format!("CREDIT_LINE {l:?}"))?,
    };
    limits.validate()?;
    Ok(limits)
}

fn limits(
    channel: &mut Channel<AnyCard>,
    apply: Option<String>,
    set: Option<String>,
    offline: &OfflineArgs,
    out: &Output,
) -> Result<ExitCode> {
    let mut c = client(channel)?;
    let update = match (apply, set) {
        (Some(hex), _) => Some(parse_hex(&hex).context("--apply is not valid hex")?),
        (None, Some(text)) => {
            let limits = parse_limits(&text)?;
            let mut signer = offline
                .signer()?
                .context("--set needs --offline-master-key")?;
            Some(signer.limit_update(limits)?)
        }
        (None, None) => None,
    };
    if let Some(update) = &update {
        c.apply_limit_update(update).context("APPLY LIMIT UPDATE")?;
    }
    let s = c.status().context("GET STATUS")?;
    if let (Some(_), Some(mut signer)) = (&update, offline.signer()?) {
        signer.confirm_limits(s.limit_sequence)?;
    }
    let l = s.limits;
    out.emit(
        &json!({ "applied": update.is_some(), "limits": l, "limit_sequence": s.limit_sequence }),
        &[format!(
            "limits (sequence {}): min reload {}, max reload {}, upper {}, credit line {}",
            s.limit_sequence, l.min_reload, l.max_reload, l.upper, l.credit_line
        )],
    );
    Ok(ExitCode::SUCCESS)
}

/// The reload round, played as the appliance (BRIEF §2): every step can be interrupted, and
/// running the same command again finishes the same reload.
fn reload(
    channel: &mut Channel<AnyCard>,
    amount: u32,
    server: Option<String>,
    wait: u64,
    offline: &OfflineArgs,
    out: &Output,
) -> Result<ExitCode> {
    let mut signer = match server {
        Some(url) => Signer::Remote(RemoteSigner::new(&url)?),
        None => Signer::Offline(Box::new(offline.signer()?.context(
            "give --server URL (a running `simkit serve`), or --offline-master-key FILE and \
             --registration FILE to sign grants in this process",
        )?)),
    };
    let mut c = client(channel)?;
    let mut lines = Vec::new();
    let mut steps = Vec::new();
    let mut log = |lines: &mut Vec<String>, step: &str, text: String| {
        lines.push(format!("{step}: {text}"));
        steps.push(json!({ "step": step, "detail": text }));
    };

    let before = c.status().context("GET STATUS")?;
    if before.lifecycle != Lifecycle::Operational {
        bail!("the module is {:?}, not operational", before.lifecycle);
    }
    // A reload that was applied on the card but whose completion may never have reached the
    // signer: send the card's last completion ack (the signer takes it idempotently). If that
    // finished a reload, stop: the user asked for *this* reload, not another one.
    if !before.pending && before.last_completion {
        let ack = c.last_completion().context("GET LAST COMPLETION")?;
        if signer.completion(&ack.to_bytes())? == CompletionAnswer::Accepted {
            log(
                &mut lines,
                "resumed",
                format!(
                    "the previous reload (N {}) was applied but not confirmed; sent its completion ack, no new reload started",
                    ack.n_next
                ),
            );
            return finish(out, lines, steps, &c.status()?);
        }
    }
    if before.pending {
        if before.pending_r != amount {
            bail!(
                "a reload of {} is pending; finish it with `simkit credit reload {}`",
                before.pending_r,
                before.pending_r
            );
        }
        log(
            &mut lines,
            "resume",
            format!(
                "a reload of {amount} is pending (N {}); resuming it",
                before.n
            ),
        );
    } else {
        match before.allowed_range() {
            Some((lo, hi)) if (lo..=hi).contains(&amount) => {}
            Some((lo, hi)) => {
                bail!("amount {amount} is outside the module's allowed range {lo}..={hi}")
            }
            None => bail!(
                "no reload is possible: balance {} is at the upper limit {}",
                before.balance,
                before.limits.upper
            ),
        }
    }
    let request = c.initiate_reload(amount).context("INITIATE RELOAD")?;
    log(&mut lines, "request", describe(&request.to_bytes()));
    interrupt_point("request")?;
    let request_bytes = request.to_bytes();
    let (mut answer, resent) = signer.reload(&request_bytes)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    let mut provisional_applied = before.provisional;
    let grant = loop {
        match answer {
            ReloadAnswer::Grant(g) => break g,
            ReloadAnswer::Pending {
                provisional_ack,
                location,
                retry_after,
            } => {
                if !provisional_applied {
                    c.apply_provisional_ack(&provisional_ack)
                        .context("APPLY PROVISIONAL ACK")?;
                    provisional_applied = true;
                    log(
                        &mut lines,
                        "provisional",
                        format!(
                            "{}: the debit is pending at the bank; the card's credit line is open",
                            describe(&provisional_ack)
                        ),
                    );
                }
                let now = std::time::Instant::now();
                if now + retry_after > deadline {
                    let status = c.status().context("GET STATUS")?;
                    log(
                        &mut lines,
                        "pending",
                        format!(
                            "the debit was not confirmed within {wait} s; run the same command again to collect the grant"
                        ),
                    );
                    finish(out, lines, steps, &status)?;
                    return Ok(ExitCode::from(EXIT_PENDING));
                }
                std::thread::sleep(retry_after);
                let Signer::Remote(remote) = &signer else {
                    bail!("the offline signer never leaves a debit pending");
                };
                answer = remote.poll(&location)?;
            }
        }
    };
    if resent {
        log(
            &mut lines,
            "server",
            "retransmission recognised: the stored grant, byte for byte, no new debit".into(),
        );
    }
    log(&mut lines, "grant", describe(&grant));
    interrupt_point("grant")?;
    let ack: CompletionAck = match c.apply_grant(&grant).context("APPLY GRANT")? {
        ApplyOutcome::Applied(a) => a,
        ApplyOutcome::AlreadyApplied(a) => {
            log(
                &mut lines,
                "card",
                "grant was already applied (9C04); using the stored completion ack".into(),
            );
            a
        }
    };
    log(&mut lines, "completion", describe(&ack.to_bytes()));
    interrupt_point("apply")?;
    signer.completion(&ack.to_bytes())?;
    let after = c.status().context("GET STATUS")?;
    log(
        &mut lines,
        "done",
        format!(
            "balance {} → {}, N {} → {}; {}",
            before.balance,
            after.balance,
            before.n,
            after.n,
            signer.describe()
        ),
    );
    finish(out, lines, steps, &after)
}

/// Fault injection for tests and demonstrations: `SIMKIT_INTERRUPT_AFTER=request|grant|apply`
/// stops the reload right after that step (after the card built the request; after the signer
/// stored the grant; after the card applied it), as a killed process or a lost link would.
/// Running the same command again must then finish the same reload exactly once.
pub(crate) const INTERRUPT_ENV: &str = "SIMKIT_INTERRUPT_AFTER";

fn interrupt_point(step: &str) -> Result<()> {
    if std::env::var(INTERRUPT_ENV).is_ok_and(|v| v == step) {
        bail!(
            "interrupted after the {step} step ({INTERRUPT_ENV}={step}); run the same command again to finish this reload"
        );
    }
    Ok(())
}

fn finish(
    out: &Output,
    lines: Vec<String>,
    steps: Vec<serde_json::Value>,
    after: &Status,
) -> Result<ExitCode> {
    out.emit(
        &json!({ "steps": steps, "status": status_json(after) }),
        &lines,
    );
    Ok(ExitCode::SUCCESS)
}

fn describe(bytes: &[u8]) -> String {
    match Message::parse(bytes) {
        Ok(m) => {
            let fields: Vec<String> = m
                .fields()
                .into_iter()
                .filter(|(k, _)| !matches!(*k, "version" | "algorithm" | "module id"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} {}", to_hex(bytes), fields.join(" "))
        }
        Err(_) => to_hex(bytes),
    }
}
