//! The HTTP API, versioned under /v1. Every error is a JSON body `{"error": "…"}` with
//! a 4xx status that says whose fault it is; 5xx only for the service's own failures.
//!
//! ```text
//! GET  /healthz                      database reachable
//! GET  /metrics                      Prometheus text
//! POST /v1/host/requests             host envelope: NewRequest → RequestStatus (+poll_key)
//! GET  /v1/host/requests/{id}        header x-jitsudo-poll-key → RequestStatus (+grant)
//! POST /v1/host/sync                 host envelope → grants for the host + revocation list
//! GET  /v1/revocations               the signed revocation list
//! GET  /v1/requests[?pending=true]   approver token → [RequestView]
//! GET  /v1/requests/{id}             approver token → RequestView
//! POST /v1/requests/{id}/approve     approver token, {"comment"} → RequestView
//! POST /v1/requests/{id}/deny        approver token, {"reason"} → RequestView
//! POST /v1/grants/{id}/revoke        approver token, {"reason"} → {"revoked": bool}
//! POST /v1/admin/hosts               admin token, {"name","public_key"}
//! POST /v1/admin/approvers           admin token, {"name","groups","admin"} → token (once)
//! GET  /v1/audit[?user,host,grant,request,since,until,after,limit]
//!                                    approver token → [AuditRecord] (oldest first, ≤ 1000)
//! GET  /v1/audit/verify              approver token → {"ok", "records", "head"} or the break
//! POST /v1/host/journal              reserved for host journal uploads (501 for now)
//! GET  /ui …                         the approver web page (see web/)
//! ```
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jitsudo_core::grant::keys::PublicKey;
use jitsudo_core::grant::{self, Claims, Kind};
use jitsudo_core::matcher::{ArgRule, CommandSpec};
use jitsudo_core::wire::{self, *};
use jitsudo_policy::policy::{self, Ask, Outcome, Policy};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::ServiceConfig;
use crate::db::{Approver, Db, DbError, GrantRow, RequestRow, Table};
use crate::limits::{inc, Metrics, RateLimiter};

pub struct AppState {
    pub db: Db,
    pub config: ServiceConfig,
    pub policy: RwLock<Arc<Policy>>,
    /// Seconds added to the real clock when evaluating policy hours and weekdays
    /// (`--fake-now`, for tests only). Grant times always use the real clock.
    pub policy_clock_offset: i64,
    pub host_limiter: RateLimiter,
    pub user_limiter: RateLimiter,
    pub metrics: Metrics,
    /// Webhook delivery queue (a no-op without `[[webhook]]`).
    pub notifier: crate::webhook::Notifier,
    /// Signed-in sessions of the approver web page.
    pub web: crate::web::Sessions,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_policy(&self, p: Policy) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(p);
    }
}

pub fn router(state: Shared) -> Router {
    let limit = state.config.limits.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(wire::PATH_REQUESTS, post(host_request))
        .route("/v1/host/requests/{id}", get(host_request_status))
        .route(wire::PATH_SYNC, post(host_sync))
        .route("/v1/revocations", get(revocations))
        .route("/v1/requests", get(list_requests))
        .route("/v1/requests/{id}", get(show_request))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/grants/{id}/revoke", post(revoke))
        .route("/v1/admin/hosts", post(add_host))
        .route("/v1/admin/approvers", post(add_approver))
        .route("/v1/audit", get(crate::audit::search_handler))
        .route("/v1/audit/verify", get(crate::audit::verify_handler))
        // Journal uploads carry whole records; every other route keeps the small limit.
        .route(
            wire::PATH_JOURNAL,
            post(crate::audit::host_journal_handler).layer(DefaultBodyLimit::max(2 << 20)),
        )
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

// ---- errors -----------------------------------------------------------------------------

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

pub(crate) fn err(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
        retry_after: None,
    }
}

impl ApiError {
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        let mut resp = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => err(StatusCode::NOT_FOUND, m),
            DbError::Conflict(m) => err(StatusCode::CONFLICT, m),
            DbError::Forbidden(m) => err(StatusCode::FORBIDDEN, m),
            DbError::Backend(m) => err(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("database error: {m}"),
            ),
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

async fn not_found() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "no such endpoint; the API lives under /v1 (see jitsudod(8))",
    )
}

async fn method_not_allowed() -> ApiError {
    err(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// Parse a JSON body ourselves so that every failure is a JSON 4xx, not axum's text.
fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            err(status, "request body too large")
        } else {
            err(status, format!("cannot read request body: {e}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn now() -> i64 {
    grant::now()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn limited(state: &AppState, limiter: &RateLimiter, key: &str, what: &str) -> ApiResult<()> {
    limiter.check(key).map_err(|secs| {
        inc(&state.metrics.rate_limited);
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("rate limit for {what} reached; retry in {secs}s"),
            retry_after: Some(secs),
        }
    })
}

// ---- health and metrics -----------------------------------------------------------------

async fn healthz(State(s): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    s.db.ping().await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

async fn metrics(State(s): State<Shared>) -> ApiResult<Response> {
    let pending = s.db.count(Table::Pending).await?;
    let mut text = s.metrics.render(pending, s.policy().rules.len());
    text.push_str(&s.notifier.render_metrics());
    Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response())
}

// ---- host endpoints ---------------------------------------------------------------------

/// Verify a host envelope: registered host, signature, path, time and a fresh nonce.
pub(crate) async fn open_host_envelope(
    s: &AppState,
    body: Result<Bytes, BytesRejection>,
    path: &str,
) -> ApiResult<HostEnvelope> {
    let signed: Signed = json_body(body)?;
    let fail = |status: StatusCode, m: String| {
        inc(&s.metrics.host_auth_failures);
        tracing::warn!(error = %m, "host request rejected");
        err(status, m)
    };
    let host =
        wire::envelope_host(&signed.envelope).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let Some(key) = s.db.host_key(&host).await? else {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            format!("host {host:?} is not registered; an admin registers it with: jitsudoctl host add {host} PUBLIC_KEY (printed by jitsudo --enroll)"),
        ));
    };
    let key =
        PublicKey::from_paserk(&key).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let env = wire::open_envelope(&signed.envelope, &key, &host, path, now())
        .map_err(|e| fail(StatusCode::UNAUTHORIZED, e))?;
    limited(s, &s.host_limiter, &host, &format!("host {host}"))?;
    if !s.db.use_nonce(&host, &env.nonce, now()).await? {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "replayed request: this nonce was already used".into(),
        ));
    }
    Ok(env)
}

pub(crate) fn bad(m: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, m)
}

/// Check what the host sent and turn argv into the exact command spec of the grant.
fn validate_request(r: &NewRequest) -> ApiResult<(String, Option<IpAddr>)> {
    if !grant::valid_user_name(&r.user) {
        return Err(bad(format!("user {:?} is not a valid user name", r.user)));
    }
    if !grant::valid_user_name(&r.run_as) {
        return Err(bad(format!(
            "run_as {:?} is not a valid user name",
            r.run_as
        )));
    }
    if r.groups.len() > 1024 || r.groups.iter().any(|g| !grant::valid_user_name(g)) {
        return Err(bad("groups must be at most 1024 valid group names"));
    }
    let Some((path, args)) = r.argv.split_first() else {
        return Err(bad("argv is empty"));
    };
    if r.argv.len() > 256 || r.argv.iter().map(String::len).sum::<usize>() > 16 * 1024 {
        return Err(bad(
            "the command is too long (at most 256 words and 16 KiB)",
        ));
    }
    jitsudo_core::matcher::check_program_path(path).map_err(|e| bad(e.to_string()))?;
    let spec = CommandSpec {
        pin: None,
        path: path.clone(),
        args: if args.is_empty() {
            ArgRule::None
        } else {
            ArgRule::Exact(args.to_vec())
        },
    };
    let text = spec.to_string();
    // Round trip: control characters and the like are refused here, as hosts would.
    match CommandSpec::parse(&text) {
        Ok(back) if back == spec => {}
        Ok(_) => return Err(bad("the command cannot be written as a command spec")),
        Err(e) => return Err(bad(format!("command: {e}"))),
    }
    if r.reason.len() > 1000 || r.reason.chars().any(|c| c.is_control()) {
        return Err(bad(
            "reason must be at most 1000 characters without control characters",
        ));
    }
    if let Some(d) = r.duration {
        if d == 0 || d > policy::MAX_DURATION_CEILING {
            return Err(bad("duration must be between 1s and 12h"));
        }
    }
    let source = match &r.source {
        None => None,
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| bad(format!("source {s:?} is not an IP address")))?,
        ),
    };
    Ok((text, source))
}

fn sign_grant(
    s: &AppState,
    req: &RequestRow,
    approved_by: Vec<String>,
    now: i64,
) -> Result<GrantRow, String> {
    let key = s.config.active_key();
    let claims = Claims {
        jti: grant::new_grant_id()?,
        iss: s.config.issuer.clone(),
        sub: req.user.clone(),
        host: req.host.clone(),
        run_as: req.run_as.clone(),
        commands: vec![req.command.clone()],
        nbf: grant::format_time(now),
        exp: grant::format_time(now + req.duration),
        iat: grant::format_time(now),
        uses: req.uses.map(|u| u as u32),
        kind: Kind::Exec,
        reason: req.reason.clone(),
        approved_by,
        request: Some(req.id.clone()),
        session_bound: false,
        exec: req.allow_exec,
    };
    let token = grant::sign(&claims, key)?;
    Ok(GrantRow {
        id: claims.jti,
        request_id: req.id.clone(),
        host: req.host.clone(),
        user: req.user.clone(),
        token,
        key_id: key.id.clone(),
        exp: now + req.duration,
        created_at: now,
    })
}

async fn host_request(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<RequestStatus>> {
    let started = Instant::now();
    let env = open_host_envelope(&s, body, wire::PATH_REQUESTS).await?;
    let r: NewRequest =
        serde_json::from_value(env.body).map_err(|e| bad(format!("invalid request: {e}")))?;
    let (command, source) = validate_request(&r)?;
    limited(
        &s,
        &s.user_limiter,
        &format!("{}/{}", env.host, r.user),
        &format!("user {} on {}", r.user, env.host),
    )?;

    let now = now();
    let policy = s.policy();
    let ask = Ask {
        user: &r.user,
        groups: &r.groups,
        host: &env.host,
        run_as: &r.run_as,
        path: &r.argv[0],
        args: &r.argv[1..],
        reason: &r.reason,
        duration: r.duration,
        once: r.once,
        source,
        now: now + s.policy_clock_offset,
    };
    let decision = policy.decide(&ask);
    let poll_key = wire::random_hex(16).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let mut row = RequestRow {
        id: wire::random_hex(8).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?,
        host: env.host.clone(),
        user: r.user.clone(),
        uid: r.uid as i64,
        run_as: r.run_as.clone(),
        command,
        reason: r.reason.clone(),
        duration: 0,
        uses: None,
        allow_exec: false,
        source: r.source.clone(),
        status: String::new(),
        rule: decision.rule.clone(),
        message: String::new(),
        approvals_needed: 0,
        approvers: "[]".into(),
        poll_hash: sha256_hex(&poll_key),
        created_at: now,
        decided_at: None,
        decided_by: None,
    };
    let mut grant = None;
    match &decision.outcome {
        Outcome::Auto(terms) => {
            inc(&s.metrics.decisions_auto);
            row.duration = terms.duration as i64;
            row.uses = terms.uses.map(i64::from);
            row.allow_exec = terms.allow_exec;
            row.status = "approved".into();
            row.message = format!("approved automatically by policy rule {}", decision.rule);
            row.decided_at = Some(now);
            row.decided_by = Some(format!("policy:{}", decision.rule));
            grant = Some(
                sign_grant(&s, &row, vec![format!("policy:{}", decision.rule)], now)
                    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?,
            );
        }
        Outcome::Approve {
            terms,
            approvals,
            approvers,
        } => {
            inc(&s.metrics.decisions_approve);
            row.duration = terms.duration as i64;
            row.uses = terms.uses.map(i64::from);
            row.allow_exec = terms.allow_exec;
            row.status = "pending".into();
            row.approvals_needed = *approvals as i64;
            let names: Vec<String> = approvers.iter().map(|p| p.to_string()).collect();
            row.message = format!(
                "waiting for {approvals} approval(s) from {} (rule {})",
                names.join(", "),
                decision.rule
            );
            row.approvers = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        }
        Outcome::Deny(why) => {
            inc(&s.metrics.decisions_deny);
            row.status = "denied".into();
            row.message = why.clone();
            row.decided_at = Some(now);
            row.decided_by = Some(format!("policy:{}", decision.rule));
        }
    }
    s.db.insert_request(&row, grant.as_ref()).await?;
    if grant.is_some() {
        inc(&s.metrics.grants_issued);
    }
    {
        use crate::webhook::Event;
        let n = &s.notifier;
        n.send(Event::new("request.created", format!("host:{}", row.host)).request(&row));
        let policy = format!("policy:{}", row.rule);
        match (&grant, row.status.as_str()) {
            (Some(g), _) => {
                n.send(Event::new("request.approved", &policy).request(&row));
                n.send(
                    Event::new("grant.issued", &policy)
                        .request(&row)
                        .grant(&g.id, g.exp),
                );
            }
            (None, "denied") => n.send(
                Event::new("request.denied", &policy)
                    .request(&row)
                    .comment(&row.message),
            ),
            _ => {}
        }
    }
    tracing::info!(
        request = %row.id, host = %row.host, user = %row.user, run_as = %row.run_as,
        command = %row.command, rule = %row.rule, status = %row.status,
        grant = grant.as_ref().map(|g| g.id.as_str()).unwrap_or("-"), "decision"
    );
    s.metrics
        .observe_request_seconds(started.elapsed().as_secs_f64());
    let mut status = status_of(&row, 0, grant.map(|g| g.token));
    status.poll_key = Some(poll_key);
    Ok(Json(status))
}

fn status_of(row: &RequestRow, approvals: u32, grant: Option<String>) -> RequestStatus {
    RequestStatus {
        id: row.id.clone(),
        status: row.status.clone(),
        rule: row.rule.clone(),
        message: row.message.clone(),
        approvals,
        approvals_needed: row.approvals_needed as u32,
        approvers: serde_json::from_str(&row.approvers).unwrap_or_default(),
        grant,
        poll_key: None,
    }
}

fn check_request_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("{id:?} is not a request id")));
    }
    Ok(())
}

async fn host_request_status(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<RequestStatus>> {
    check_request_id(&id)?;
    let key = headers
        .get(wire::POLL_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                format!("missing {} header", wire::POLL_KEY_HEADER),
            )
        })?;
    let row = s.db.request(&id).await?;
    let Some(row) = row.filter(|r| r.poll_hash == sha256_hex(key)) else {
        return Err(err(
            StatusCode::NOT_FOUND,
            format!("no request {id} for this poll key"),
        ));
    };
    let approvals = s.db.approvals(&id).await?.len() as u32;
    let grant = s.db.grant_for_request(&id).await?.map(|g| g.token);
    Ok(Json(status_of(&row, approvals, grant)))
}

async fn signed_revocations(s: &AppState) -> ApiResult<String> {
    let ids = s.db.revoked_ids(now()).await?;
    let claims = RevocationClaims {
        iss: s.config.issuer.clone(),
        issued_at: now(),
        ids,
    };
    wire::sign_revocations(&claims, s.config.active_key())
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn host_sync(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SyncResponse>> {
    let env = open_host_envelope(&s, body, wire::PATH_SYNC).await?;
    let _: SyncRequest =
        serde_json::from_value(env.body).map_err(|e| bad(format!("invalid sync request: {e}")))?;
    let grants =
        s.db.grants_for_host(&env.host, now())
            .await?
            .into_iter()
            .map(|g| SyncedGrant {
                user: g.user,
                token: g.token,
            })
            .collect();
    let revocations = signed_revocations(&s).await?;
    inc(&s.metrics.syncs);
    Ok(Json(SyncResponse {
        grants,
        revocations,
    }))
}

async fn revocations(State(s): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::json!({ "revocations": signed_revocations(&s).await? }),
    ))
}

// ---- approver endpoints -----------------------------------------------------------------

pub(crate) async fn approver(s: &AppState, headers: &HeaderMap) -> ApiResult<Approver> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| err(StatusCode::UNAUTHORIZED, "missing Authorization: Bearer TOKEN (an approver token from jitsudoctl approver add)"))?;
    approver_by_token(s, token).await
}

/// The approver holding `token` (also the web page's sign-in).
pub(crate) async fn approver_by_token(s: &AppState, token: &str) -> ApiResult<Approver> {
    match s
        .db
        .approver_by_token_hash(&sha256_hex(token.trim()))
        .await?
    {
        Some(a) => Ok(a),
        None => {
            inc(&s.metrics.approver_auth_failures);
            Err(err(StatusCode::UNAUTHORIZED, "unknown approver token"))
        }
    }
}

async fn admin(s: &AppState, headers: &HeaderMap) -> ApiResult<Approver> {
    let a = approver(s, headers).await?;
    if !a.admin {
        return Err(err(
            StatusCode::FORBIDDEN,
            format!("{} is not an admin", a.name),
        ));
    }
    Ok(a)
}

async fn view(s: &AppState, mut row: RequestRow) -> ApiResult<RequestView> {
    // Three reads, not one snapshot: read the grant first, and if it was issued after
    // `row` was read, read the row again, so that a view never shows a grant on a
    // request that still looks pending (grant and status are committed together).
    let grant_id = s.db.grant_for_request(&row.id).await?.map(|g| g.id);
    if grant_id.is_some() && row.status != "approved" {
        if let Some(fresh) = s.db.request(&row.id).await? {
            row = fresh;
        }
    }
    let approvals = s.db.approvals(&row.id).await?;
    Ok(RequestView {
        id: row.id,
        host: row.host,
        user: row.user,
        run_as: row.run_as,
        command: row.command,
        reason: row.reason,
        status: row.status,
        rule: row.rule,
        message: row.message,
        created_at: row.created_at,
        duration: row.duration as u64,
        uses: row.uses.map(|u| u as u32),
        approvals_needed: row.approvals_needed as u32,
        approvers: serde_json::from_str(&row.approvers).unwrap_or_default(),
        approvals: approvals
            .into_iter()
            .map(|a| ApprovalView {
                approver: a.approver,
                comment: a.comment,
                at: a.at,
            })
            .collect(),
        grant_id,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    pending: bool,
    limit: Option<i64>,
}

async fn list_requests(
    State(s): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<RequestView>>> {
    approver(&s, &headers).await?;
    let Query(q) = q.map_err(|e| bad(format!("bad query: {e}")))?;
    let rows =
        s.db.list_requests(q.pending, q.limit.unwrap_or(100).clamp(1, 1000))
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(view(&s, r).await?);
    }
    Ok(Json(out))
}

async fn show_request(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    approver(&s, &headers).await?;
    check_request_id(&id)?;
    let row =
        s.db.request(&id)
            .await?
            .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no request {id}")))?;
    Ok(Json(view(&s, row).await?))
}

async fn approve(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<RequestView>> {
    let who = approver(&s, &headers).await?;
    let body: ApproveBody = json_body(body)?;
    let row = approve_as(&s, &who, &id, &body.comment).await?;
    Ok(Json(view(&s, row).await?))
}

/// Approve request `id` as `who` (API and web page); the request as it is afterwards.
pub(crate) async fn approve_as(
    s: &Shared,
    who: &Approver,
    id: &str,
    comment: &str,
) -> ApiResult<RequestRow> {
    check_request_id(id)?;
    if comment.len() > 1000 || comment.chars().any(|c| c.is_control()) {
        return Err(bad(
            "comment must be at most 1000 characters without control characters",
        ));
    }
    let id = id.to_string();
    let now = now();
    let state = s.clone();
    let result =
        s.db.approve(&id, who, comment, now, move |req, names| {
            sign_grant(&state, req, names, now)
        })
        .await;
    let approved = result.inspect_err(
        |e| tracing::info!(request = %id, approver = %who.name, error = %e, "approval refused"),
    )?;
    inc(&s.metrics.approvals);
    if let Some(g) = &approved.grant {
        inc(&s.metrics.grants_issued);
        tracing::info!(request = %id, approver = %who.name, grant = %g.id, "approved; grant issued");
    } else {
        tracing::info!(request = %id, approver = %who.name, approvals = approved.approvals, needed = approved.needed, "approval recorded");
    }
    let row =
        s.db.request(&id)
            .await?
            .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no request {id}")))?;
    if let Some(g) = &approved.grant {
        use crate::webhook::Event;
        s.notifier.send(
            Event::new("request.approved", &who.name)
                .request(&row)
                .comment(comment),
        );
        s.notifier.send(
            Event::new("grant.issued", &who.name)
                .request(&row)
                .grant(&g.id, g.exp),
        );
    }
    Ok(row)
}

async fn deny(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<RequestView>> {
    let who = approver(&s, &headers).await?;
    let body: ReasonBody = json_body(body)?;
    let row = deny_as(&s, &who, &id, &body.reason).await?;
    Ok(Json(view(&s, row).await?))
}

/// Deny request `id` as `who` (API and web page); the request as it is afterwards.
pub(crate) async fn deny_as(
    s: &Shared,
    who: &Approver,
    id: &str,
    reason: &str,
) -> ApiResult<RequestRow> {
    check_request_id(id)?;
    check_reason(reason)?;
    s.db.deny(id, who, reason, now()).await?;
    inc(&s.metrics.denials_by_approver);
    tracing::info!(request = %id, approver = %who.name, reason = %reason, "denied by approver");
    let row =
        s.db.request(id)
            .await?
            .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no request {id}")))?;
    s.notifier.send(
        crate::webhook::Event::new("request.denied", &who.name)
            .request(&row)
            .comment(reason),
    );
    Ok(row)
}

fn check_reason(reason: &str) -> ApiResult<()> {
    if reason.trim().is_empty() || reason.len() > 1000 || reason.chars().any(|c| c.is_control()) {
        return Err(bad(
            "reason is required: 1-1000 characters without control characters",
        ));
    }
    Ok(())
}

async fn revoke(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = approver(&s, &headers).await?;
    let body: ReasonBody = json_body(body)?;
    let revoked = revoke_as(&s, &who, &id, &body.reason).await?;
    Ok(Json(
        serde_json::json!({ "grant": id, "revoked": true, "already": !revoked }),
    ))
}

/// Revoke grant `id` as `who` (API and web page). False if it was already revoked.
pub(crate) async fn revoke_as(
    s: &Shared,
    who: &Approver,
    id: &str,
    reason: &str,
) -> ApiResult<bool> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad(format!("{id:?} is not a grant id")));
    }
    check_reason(reason)?;
    let revoked = s.db.revoke(id, &who.name, reason, now()).await?;
    if revoked {
        inc(&s.metrics.revocations);
        let mut ev = crate::webhook::Event::new("grant.revoked", &who.name).comment(reason);
        if let Some(g) = s.db.grant(id).await? {
            ev = ev.grant(&g.id, g.exp);
            if let Some(r) = s.db.request(&g.request_id).await? {
                ev = ev.request(&r);
            }
        }
        s.notifier.send(ev);
    }
    tracing::info!(grant = %id, by = %who.name, reason = %reason, new = revoked, "grant revoked");
    Ok(revoked)
}

// ---- admin endpoints --------------------------------------------------------------------

async fn add_host(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let who = admin(&s, &headers).await?;
    let body: HostAdd = json_body(body)?;
    if body.name.is_empty()
        || body.name.len() > 253
        || !body
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(bad(format!(
            "{:?} is not a valid host id (letters, digits, '-', '_' and '.')",
            body.name
        )));
    }
    let key = PublicKey::from_paserk(&body.public_key).map_err(bad)?;
    s.db.add_host_by(&body.name, &key.to_paserk(), &who.name, now())
        .await?;
    tracing::info!(host = %body.name, by = %who.name, "host registered");
    Ok(Json(serde_json::json!({ "host": body.name })))
}

pub fn new_api_token() -> Result<String, String> {
    Ok(format!("jt_{}", wire::random_hex(32)?))
}

pub fn token_hash(token: &str) -> String {
    sha256_hex(token)
}

async fn add_approver(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ApproverToken>> {
    let who = admin(&s, &headers).await?;
    let body: ApproverAdd = json_body(body)?;
    if !grant::valid_user_name(&body.name) {
        return Err(bad(format!("{:?} is not a valid approver name", body.name)));
    }
    if body.groups.iter().any(|g| !grant::valid_user_name(g)) {
        return Err(bad("group names must be valid names"));
    }
    let token = new_api_token().map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    s.db.add_approver_by(
        &body.name,
        &body.groups,
        &token_hash(&token),
        body.admin,
        &who.name,
        now(),
    )
    .await?;
    tracing::info!(approver = %body.name, groups = ?body.groups, admin = body.admin, by = %who.name, "approver added");
    Ok(Json(ApproverToken {
        name: body.name,
        token,
    }))
}
