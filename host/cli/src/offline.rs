//! The offline grant signer: `simkit credit reload --offline-master-key` signs grants in this
//! process with `simkit-core`'s server policy, without a running `simkit serve`. It keeps what
//! a server must keep — S, the last request and grant, the debits — in a state file beside the
//! registration record (`REG.json.offline-state`), written atomically (temporary file, fsync,
//! rename) *before* a grant is handed out, so an interrupted reload run again is answered with
//! the identical stored grant and never debits twice.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use simkit_core::credit::registration::Registration;
use simkit_core::credit::server::{self, DebitOutcome, FreshDecision, RequestAction, ServerRecord};
use simkit_core::crypto::kdf::{ModuleKeys, derive_module_keys};
use simkit_core::crypto::key::SecretKey;

use crate::remote::CompletionAnswer;

/// The format tag of the state file.
const STATE_FORMAT: &str = "simkit-offline-signer/1";

/// One debit of the offline ledger, keyed like the real one by (module id, N).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Debit {
    /// The request's transaction number.
    pub(crate) n: u32,
    /// Credits debited.
    pub(crate) amount: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: String,
    record: ServerRecord,
    debits: Vec<Debit>,
}

/// What the signer answered a request with.
pub(crate) enum Answer {
    /// A new grant (granted or declined), already stored.
    Fresh(Vec<u8>),
    /// The stored grant for a retransmitted request, byte for byte; no new debit.
    Resent(Vec<u8>),
}

/// The offline signer for one module.
pub(crate) struct OfflineSigner {
    path: PathBuf,
    keys: ModuleKeys,
    state: State,
}

impl OfflineSigner {
    /// Opens the signer of the module registered in `registration`, creating its state on
    /// first use. Refuses a master key that does not match the registration's check values.
    pub(crate) fn open(registration: &Path, master: &SecretKey) -> Result<Self> {
        let text = fs::read_to_string(registration)
            .with_context(|| format!("reading registration {}", registration.display()))?;
        let reg: Registration = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a registration record", registration.display()))?;
        reg.check(master)
            .with_context(|| format!("registration {}", registration.display()))?;
        let keys = derive_module_keys(reg.profile, master, &reg.module_id)?;
        let mut path = registration.as_os_str().to_owned();
        path.push(".offline-state");
        let path = PathBuf::from(path);
        let state = if path.exists() {
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let state: State = serde_json::from_str(&text).with_context(|| {
                format!("{} is not an offline signer state file", path.display())
            })?;
            if state.format != STATE_FORMAT {
                bail!(
                    "{}: format {:?}, expected {STATE_FORMAT:?}",
                    path.display(),
                    state.format
                );
            }
            if state.record.module_id != reg.module_id {
                bail!("{} belongs to another module", path.display());
            }
            state
        } else {
            State {
                format: STATE_FORMAT.into(),
                record: reg.server_record(),
                debits: Vec::new(),
            }
        };
        Ok(OfflineSigner { path, keys, state })
    }

    /// Where the state lives.
    pub(crate) fn state_path(&self) -> &Path {
        &self.path
    }

    /// Answers a reload request (spec §6). The offline ledger has unlimited funds.
    pub(crate) fn reload(&mut self, request: &[u8]) -> Result<Answer> {
        let action = server::classify_request(&self.state.record, request, &self.keys.request);
        match action {
            Ok(RequestAction::Resend { grant }) => Ok(Answer::Resent(grant.to_vec())),
            Ok(RequestAction::Fresh { request, decision }) => {
                let outcome = match decision {
                    FreshDecision::Debit { amount } => {
                        self.state.debits.push(Debit {
                            n: request.n,
                            amount,
                        });
                        DebitOutcome::Debited { amount }
                    }
                    FreshDecision::Decline(reason) => DebitOutcome::Declined(reason),
                };
                let grant = server::finish_fresh(
                    &mut self.state.record,
                    &request,
                    outcome,
                    &self.keys.grant,
                )?;
                self.save()?;
                Ok(Answer::Fresh(grant.to_vec()))
            }
            Err(rejection) => {
                let event = server::register_rejection(&mut self.state.record, &rejection);
                self.save()?;
                Err(anyhow!(
                    "the signer refused the request: {rejection}{}",
                    if event.is_some() {
                        " (registered as fraud)"
                    } else {
                        ""
                    }
                ))
            }
        }
    }

    /// Takes the module's completion ack; says whether it finished a reload or was known.
    pub(crate) fn completion(&mut self, ack: &[u8]) -> Result<CompletionAnswer> {
        let before = self.state.record.completed_through;
        server::handle_completion(&mut self.state.record, ack, &self.keys.request)
            .map_err(|r| anyhow!("the signer refused the completion ack: {r}"))?;
        if before == self.state.record.completed_through {
            return Ok(CompletionAnswer::AlreadyAccepted);
        }
        self.save()?;
        Ok(CompletionAnswer::Accepted)
    }

    /// Signs a limit update for the module (spec §3.6), storing the sequence it used.
    pub(crate) fn limit_update(&mut self, limits: simkit_core::credit::Limits) -> Result<Vec<u8>> {
        let update = server::build_limit_update(&mut self.state.record, limits, &self.keys.grant)?;
        self.save()?;
        Ok(update.to_vec())
    }

    /// Records that the module reports limit sequence `sequence` (the update arrived).
    pub(crate) fn confirm_limits(&mut self, sequence: u32) -> Result<()> {
        server::confirm_limit_update(&mut self.state.record, sequence);
        self.save()
    }

    /// Writes the state atomically: a crash leaves the old file or the new one, never a mix.
    fn save(&self) -> Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut tmp, &self.state)?;
        tmp.write_all(b"\n")?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}
