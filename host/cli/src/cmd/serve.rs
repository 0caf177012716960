//! `simkit serve`: the reload grant signer (simkit-server) on SQLite or PostgreSQL, over HTTP.
//!
//! Logs the master key's check values, never the key. Stops gracefully on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use simkit_core::crypto::Profile;
use simkit_server::{
    AppState, Authority, KeySource, Pkcs11Key, SoftwareKey, Store, Webhook, WebhookConfig,
};
use zeroize::Zeroizing;

use crate::output::Output;

/// Arguments of `simkit serve`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("master").required(true).args(["master_key_file", "master_key_env", "pkcs11_module"])))]
pub(crate) struct Args {
    /// The database, as `sqlite:PATH` (created and migrated if needed) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (migrated if needed; any number of
    /// `simkit serve` processes may share one PostgreSQL database).
    #[arg(long, value_name = "sqlite:PATH|postgres://…")]
    db: String,
    /// PostgreSQL only: connections this process keeps open at most (each request in flight
    /// holds one).
    #[arg(long, value_name = "N", default_value_t = simkit_server::PgOptions::default().pool_size)]
    db_pool_size: usize,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// File holding the issuer master key as hex.
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// Environment variable holding the issuer master key as hex.
    #[arg(long, value_name = "VAR")]
    master_key_env: Option<String>,
    /// The master key in a PKCS#11 token instead.
    #[command(flatten)]
    pkcs11: crate::keyarg::Pkcs11Args,
    /// Debit reloads at this financial authority webhook (`http://HOST[:PORT]/PATH`,
    /// applet-spec/server-api.md "Financial authority webhook") instead of the built-in ledger.
    /// A bank that answers `pending` gets the module a provisional ack (HTTP 202).
    #[arg(long, value_name = "URL")]
    authority_webhook: Option<String>,
    /// Environment variable holding the bearer token sent to the webhook.
    #[arg(long, value_name = "VAR", requires = "authority_webhook")]
    authority_token_env: Option<String>,
    /// Environment variable holding the admin bearer token (without it, admin endpoints answer
    /// 401).
    #[arg(long, value_name = "VAR")]
    admin_token_env: Option<String>,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let key: Box<dyn KeySource> = match (&args.master_key_file, &args.master_key_env) {
        (Some(file), _) => Box::new(SoftwareKey::from_file(file)?),
        (None, Some(var)) => Box::new(SoftwareKey::from_env(var)?),
        (None, None) => match args.pkcs11.config()? {
            Some(config) => {
                let token = Pkcs11Key::open(&config)?;
                // What the token can do, profile by profile: the operator sees at start which
                // modules this server can serve.
                for c in token.capabilities() {
                    let line = match &c.missing {
                        None => format!(
                            "simkit serve: PKCS#11 token {:?}: {} yes",
                            token.token_label(),
                            c.profile
                        ),
                        Some(why) => format!(
                            "simkit serve: PKCS#11 token {:?}: {} no — {why}",
                            token.token_label(),
                            c.profile
                        ),
                    };
                    out.emit(
                        &json!({"pkcs11_token": token.token_label(), "profile": c.profile.name(), "supported": c.missing.is_none(), "reason": c.missing}),
                        &[line],
                    );
                }
                Box::new(token)
            }
            None => bail!("give --master-key-file, --master-key-env or --pkcs11-module"),
        },
    };
    let kcvs: Vec<(Profile, String)> = key
        .profiles()?
        .into_iter()
        .map(|p| Ok((p, key.kcv_hex(p)?)))
        .collect::<Result<_, simkit_server::KeyError>>()?;
    if kcvs.is_empty() {
        bail!("the master key fits no profile this key store can serve");
    }
    let admin_token = match &args.admin_token_env {
        Some(var) => {
            Some(Zeroizing::new(std::env::var(var).with_context(|| {
                format!("environment variable {var} is not set")
            })?))
        }
        None => None,
    };
    let options = simkit_server::PgOptions {
        pool_size: args.db_pool_size,
        ..simkit_server::PgOptions::default()
    };
    let mut store = Store::open_url_with(&args.db, options, key).context("opening the database")?;
    if let Some(url) = &args.authority_webhook {
        let mut config = WebhookConfig::new(url);
        if let Some(var) = &args.authority_token_env {
            config.bearer_token = Some(
                std::env::var(var)
                    .with_context(|| format!("environment variable {var} is not set"))?,
            );
        }
        let webhook = Webhook::new(config).context("--authority-webhook")?;
        store = store.with_authority(Authority::External(std::sync::Arc::new(webhook)));
        out.emit(
            &json!({"authority": "webhook", "url": url}),
            &[format!("simkit serve: debits go to the webhook {url}")],
        );
    }
    let db = store.describe();
    let state = AppState::new(store, admin_token.map(|t| t.to_string()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let kcv_text: Vec<String> = kcvs
            .iter()
            .map(|(p, k)| format!("{}={k}", p.name()))
            .collect();
        out.emit(
            &json!({
                "listening": addr.to_string(),
                "db": db,
                "master_key_kcv": kcvs.iter().map(|(p, k)| (p.name().to_owned(), serde_json::Value::from(k.clone()))).collect::<serde_json::Map<_, _>>(),
            }),
            &[format!(
                "simkit serve: listening on http://{addr} (db {db}, master key KCV {})",
                kcv_text.join(", ")
            )],
        );
        simkit_server::api::serve(listener, state, simkit_server::api::shutdown_signal())
            .await
            .context("serving")?;
        out.emit(
            &json!({ "stopped": true }),
            &["simkit serve: stopped".to_owned()],
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
