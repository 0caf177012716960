//! The HTTP API (axum): `POST /v1/reload`, `POST /v1/completion`, the admin endpoints behind a
//! bearer token, `GET /healthz` and `GET /metrics`. See `applet-spec/server-api.md`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use simkit_core::credit::Limits;
use simkit_core::credit::registration::Registration;
use subtle_free::ct_str_eq;

use crate::metrics::Metrics;
use crate::store::{Answer, Completion, Store, StoreError};
use simkit_core::credit::server::FraudEvent;

/// The largest body any endpoint accepts (a registration record is well under this).
const BODY_LIMIT: usize = 16 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Store>,
    admin_token: Arc<Option<String>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `store`; admin endpoints answer 401 unless `admin_token` is set and given.
    pub fn new(store: Store, admin_token: Option<String>) -> Self {
        AppState {
            store: Arc::new(store),
            admin_token: Arc::new(admin_token.filter(|t| !t.is_empty())),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

mod subtle_free {
    /// Compares two strings in time independent of where they differ.
    pub(super) fn ct_str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/reload", post(reload))
        .route("/v1/reload/{module_id}/{n}", get(reload_result))
        .route("/v1/completion", post(completion))
        .route("/v1/modules", post(import))
        .route("/v1/modules/{id}", get(module))
        .route("/v1/modules/{id}/unblock", post(unblock))
        .route("/v1/modules/{id}/resync", post(resync))
        .route("/v1/modules/{id}/limits", post(limits))
        .route("/v1/modules/{id}/limits/confirm", post(confirm_limits))
        .route("/v1/fraud", get(fraud))
        .route("/v1/ledger", get(ledger))
        .route("/v1/accounts/{id}", get(account))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

fn error_response(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(serde_json::json!({ "error": message, "code": code })),
    )
        .into_response()
}

fn store_error(state: &AppState, e: &StoreError) -> Response {
    if e.is_db() {
        state.metrics.db_error();
    }
    let (status, code) = (e.http_status(), e.code());
    if is_internal(e) {
        // The detail (SQL, driver or parser text) is for the operator's log only.
        eprintln!("simkit serve: {status} {code}: {e}");
        return error_response(
            status,
            code,
            &format!("internal error ({code}); the detail is in the server's log"),
        );
    }
    error_response(status, code, &e.to_string())
}

/// Whether an error is the server's own (database, stored record, key, policy) rather than the
/// caller's: its text is logged, and the answer carries only a generic message and the code.
fn is_internal(e: &StoreError) -> bool {
    e.http_status() >= 500 && !matches!(e, StoreError::AuthorityUnavailable(_))
}

/// The one media type `/v1/reload` and `/v1/completion` take.
const OCTETS: &str = "application/octet-stream";

/// `Some(415 answer)` unless the request's Content-Type is `application/octet-stream`
/// (parameters after `;` ignored, case-insensitive).
fn wrong_media_type(headers: &HeaderMap) -> Option<Response> {
    let given = headers.get(header::CONTENT_TYPE);
    let ok = given
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(OCTETS));
    if ok {
        return None;
    }
    let message = match given {
        None => format!("no Content-Type given; module messages are {OCTETS}"),
        Some(v) => format!(
            "Content-Type {:?} is not {OCTETS}, the only type module messages travel as",
            String::from_utf8_lossy(v.as_bytes())
        ),
    };
    Some(error_response(415, "unsupported-media-type", &message))
}

fn join_error() -> Response {
    error_response(500, "internal", "the handler task failed")
}

fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

async fn reload(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    if let Some(r) = wrong_media_type(&headers) {
        state
            .metrics
            .observe("reload", "unsupported-media-type", start.elapsed());
        return r;
    }
    let store = state.store.clone();
    let result = tokio::task::spawn_blocking(move || store.reload(&body)).await;
    let (outcome, response) = reload_response(&state, result);
    state.metrics.observe("reload", outcome, start.elapsed());
    response
}

/// `GET /v1/reload/{module_id}/{n}`: collects the grant of a reload answered with a
/// provisional ack (or the last grant, resent).
async fn reload_result(
    State(state): State<AppState>,
    Path((module_id, n)): Path<(String, String)>,
) -> Response {
    let start = Instant::now();
    let Ok(n) = n.parse::<u32>() else {
        return error_response(
            400,
            "bad-input",
            &format!("{n:?} is not a transaction number"),
        );
    };
    let store = state.store.clone();
    let result = tokio::task::spawn_blocking(move || store.reload_result(&module_id, n)).await;
    let (outcome, response) = reload_response(&state, result);
    state
        .metrics
        .observe("reload-result", outcome, start.elapsed());
    response
}

/// Seconds the appliance is asked to wait before collecting a pending grant.
const RETRY_AFTER_SECONDS: u32 = 1;

type ReloadResult = Result<
    Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)>,
    tokio::task::JoinError,
>;

fn reload_response(state: &AppState, result: ReloadResult) -> (&'static str, Response) {
    match result {
        Err(_) => ("internal", join_error()),
        Ok(Ok((answer, _))) => match answer {
            Answer::Fresh(b) => ("fresh", octets(b)),
            Answer::Resent(b) => ("resent", octets(b)),
            Answer::Pending {
                provisional_ack,
                module_id,
                n,
            } => (
                "pending",
                (
                    StatusCode::ACCEPTED,
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                        (header::LOCATION, format!("/v1/reload/{module_id}/{n}")),
                        (header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()),
                    ],
                    provisional_ack,
                )
                    .into_response(),
            ),
        },
        Ok(Err((e, event))) => {
            if event.is_some() {
                state.metrics.fraud_event();
            }
            (e.code(), store_error(state, &e))
        }
    }
}

async fn completion(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    if let Some(r) = wrong_media_type(&headers) {
        state
            .metrics
            .observe("completion", "unsupported-media-type", start.elapsed());
        return r;
    }
    let store = state.store.clone();
    let result = tokio::task::spawn_blocking(move || store.completion(&body)).await;
    let (outcome, response) = match result {
        Err(_) => ("internal", join_error()),
        Ok(Ok(done)) => {
            let status = match done {
                Completion::Accepted => "accepted",
                Completion::AlreadyAccepted => "already-accepted",
            };
            (
                status,
                (
                    StatusCode::OK,
                    Json(serde_json::json!({ "status": status })),
                )
                    .into_response(),
            )
        }
        Ok(Err((e, event))) => {
            if event.is_some() {
                state.metrics.fraud_event();
            }
            (e.code(), store_error(&state, &e))
        }
    };
    state
        .metrics
        .observe("completion", outcome, start.elapsed());
    response
}

/// `Some(401 answer)` unless the request carries the admin bearer token.
/// An admin endpoint's JSON body, or the `400 bad-input` answer naming what is wrong with it.
fn admin_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error_response(400, "bad-input", &e.to_string())))
}

fn unauthorised(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (state.admin_token.as_ref(), given) {
        (Some(token), Some(given)) if ct_str_eq(token, given) => None,
        _ => Some(error_response(
            401,
            "unauthorised",
            "admin endpoints need the bearer token",
        )),
    }
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Err(_) => Err(join_error()),
        Ok(Err(e)) => Err(store_error(state, &e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Body of `POST /v1/modules`. The registration is read in two steps so that its nested
/// `limits` object refuses unknown fields too ([`StrictLimits`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    registration: serde_json::Value,
    account_id: String,
    #[serde(default)]
    initial_funds: i64,
}

/// [`Limits`] as the admin API reads them: every field required, no other field allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictLimits {
    min_reload: u32,
    max_reload: u32,
    upper: i32,
    credit_line: i32,
}

impl From<StrictLimits> for Limits {
    fn from(l: StrictLimits) -> Limits {
        Limits {
            min_reload: l.min_reload,
            max_reload: l.max_reload,
            upper: l.upper,
            credit_line: l.credit_line,
        }
    }
}

/// The registration of an import body, or the `400 bad-input` answer naming what is wrong.
fn registration_of(value: serde_json::Value) -> Result<Registration, Box<Response>> {
    let bad = |what: &str, e: serde_json::Error| {
        Box::new(error_response(400, "bad-input", &format!("{what}: {e}")))
    };
    if let Some(limits) = value.get("limits") {
        StrictLimits::deserialize(limits).map_err(|e| bad("registration.limits", e))?;
    }
    Registration::deserialize(value).map_err(|e| bad("registration", e))
}

async fn import(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    let parsed: ImportBody = match admin_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let registration = match registration_of(parsed.registration) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    match blocking(&state, move |s| {
        s.import(&registration, &parsed.account_id, parsed.initial_funds)
    })
    .await
    {
        Ok(record) => (StatusCode::CREATED, Json(record)).into_response(),
        Err(r) => r,
    }
}

async fn module(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    match blocking(&state, move |s| s.module(&id)).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn unblock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    match blocking(&state, move |s| s.unblock(&id)).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Body of `POST /v1/modules/{id}/resync`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResyncBody {
    n: u32,
    /// Drop a request whose debit is pending at the bank (server-api.md, resync).
    #[serde(default)]
    abandon_pending: bool,
}

async fn resync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    let parsed: ResyncBody = match admin_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match blocking(&state, move |s| {
        if parsed.abandon_pending {
            s.resync_abandoning_pending(&id, parsed.n)
        } else {
            s.resync(&id, parsed.n)
        }
    })
    .await
    {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Body of `POST /v1/modules/{id}/limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    limits: StrictLimits,
}

async fn limits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    let parsed: LimitsBody = match admin_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match blocking(&state, move |s| s.limit_update(&id, parsed.limits.into())).await {
        Ok((record, update)) => Json(serde_json::json!({
            "update": hex::encode_upper(update),
            "record": record,
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// Body of `POST /v1/modules/{id}/limits/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    sequence: u32,
}

async fn confirm_limits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    let parsed: ConfirmBody = match admin_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match blocking(&state, move |s| s.confirm_limits(&id, parsed.sequence)).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn fraud(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    match blocking(&state, |s| s.fraud_log()).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn ledger(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    match blocking(&state, |s| s.ledger()).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `GET /v1/accounts/{id}` (admin): an account's balance — `float` is the issuer's float, so
/// reconciliation (`simkit server crashtest`) can check that funds are conserved.
async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    let key = id.clone();
    match blocking(&state, move |s| s.account_balance(&key)).await {
        Ok(Some(balance)) => {
            Json(serde_json::json!({ "id": id, "balance": balance })).into_response()
        }
        Ok(None) => error_response(404, "unknown-account", &format!("unknown account {id:?}")),
        Err(r) => r,
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match blocking(&state, |s| s.schema_version()).await {
        Ok(v) => Json(serde_json::json!({ "status": "ok", "schema_version": v })).into_response(),
        Err(r) => r,
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI 3.1 document of this API (`applet-spec/openapi.json`), served at
/// `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../../../applet-spec/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM (for [`serve`]).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
