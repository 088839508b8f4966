//! The handlers of the HTTP API, versioned under /v1: each takes what the request
//! carries (extractors authenticate approvers and parse JSON bodies), calls the service
//! and shapes its answer. Every error is a JSON body `{"error": "…"}` (see `error`).
//!
//! ```text
//! GET  /healthz                      database reachable
//! GET  /metrics                      Prometheus text
//! GET  /v1/openapi.yaml              the OpenAPI 3 description of /v1 (server/openapi.yaml)
//! POST /v1/host/requests             host envelope: NewRequest → RequestStatus (+poll_key)
//! GET  /v1/host/requests/{id}        header x-jitsudo-poll-key → RequestStatus (+grant)
//! POST /v1/host/sync                 host envelope → grants for the host + its revocation list
//! GET  /v1/revocations               the fleet's signed revocation list (ETag)
//! GET  /v1/requests[?pending=true]   approver token → [RequestView]
//! GET  /v1/requests/{id}             approver token → RequestView
//! POST /v1/requests/{id}/approve     approver token, {"comment"} → RequestView
//! POST /v1/requests/{id}/deny        approver token, {"reason"} → RequestView
//! POST /v1/grants/{id}/revoke        approver token, {"reason"} → {"revoked": bool}
//! POST /v1/admin/hosts               admin token, {"name","public_key"}
//! POST /v1/admin/approvers           admin token, {"name","groups","admin","slack_id"} → token (once)
//! POST /v1/admin/approvers/{name}/slack   admin token, {"slack_id"}: link a Slack member
//! POST /v1/slack/interactions        Slack's signed button callbacks (http::slack)
//! GET  /v1/audit[?user,host,grant,request,since,until,after,limit]
//!                                    approver token → [AuditRecord] (oldest first, ≤ 1000)
//! GET  /v1/audit/verify              approver token → {"ok", "records", "head"} or the break
//! POST /v1/host/journal              host envelope: journal records → {"stored_through"}
//! POST /v1/host/recordings           host envelope: a recording upload step (http::recordings)
//! GET  /v1/recordings[?user,host,grant,since,limit]   approver token → [RecordingView]
//! GET  /v1/recordings/{host}/{id}    approver token → the recording and its files (base64)
//! GET  /ui …                         the approver web page (see web/)
//! ```
//!
//! The audit and journal handlers are in `http::audit`, the routes in `http::router`.
#![forbid(unsafe_code)]

use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jitsudo_core::wire::{
    self, ApproveBody, ApproverAdd, ApproverToken, HostAdd, ReasonBody, RequestStatus, RequestView,
    Signed, SyncResponse,
};
use serde::Deserialize;

use crate::http::error::{err, ApiError, ApiResult};
use crate::http::extract::{Admin, ApiPath, JsonBody};
use crate::http::state::Shared;
use crate::service::{Approver, Error};

pub async fn not_found() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "no such endpoint; the API lives under /v1 (see jitsudod(8))",
    )
}

pub async fn method_not_allowed() -> ApiError {
    err(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

fn bad_query(e: QueryRejection) -> ApiError {
    Error::Invalid(format!("bad query: {e}")).into()
}

// ---- health and metrics -----------------------------------------------------------------

/// The OpenAPI 3 description of this API (server/openapi.yaml, built in).
pub async fn openapi() -> Response {
    (
        [("content-type", "application/yaml")],
        include_str!("../../openapi.yaml"),
    )
        .into_response()
}

pub async fn healthz(State(s): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    s.service.ping().await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// Where `jitsudoctl login` signs in: the identity provider's issuer and the public
/// client for the device authorization grant (no credentials needed to ask).
pub async fn oidc_client(State(s): State<Shared>) -> ApiResult<Json<serde_json::Value>> {
    let (issuer, client_id) = s.service.oidc_cli_client()?;
    Ok(Json(
        serde_json::json!({"issuer": issuer, "client_id": client_id}),
    ))
}

pub async fn metrics(State(s): State<Shared>) -> ApiResult<Response> {
    let mut text = s.service.metrics_text().await?;
    text.push_str(&crate::http::listener::render_metrics());
    Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response())
}

// ---- host endpoints ---------------------------------------------------------------------

pub async fn host_request(
    State(s): State<Shared>,
    JsonBody(signed): JsonBody<Signed>,
) -> ApiResult<Json<RequestStatus>> {
    let started = Instant::now();
    let env = s
        .service
        .open_host_envelope(signed, wire::PATH_REQUESTS)
        .await?;
    let status = s.service.create(env).await?;
    s.service
        .metrics
        .observe_request_seconds(started.elapsed().as_secs_f64());
    Ok(Json(status))
}

pub async fn host_request_status(
    State(s): State<Shared>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Json<RequestStatus>> {
    crate::service::validate::request_id(&id)?;
    let key = headers
        .get(wire::POLL_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                format!("missing {} header", wire::POLL_KEY_HEADER),
            )
        })?;
    let mut status = s.service.host_status(&id, key).await?;
    if !headers.contains_key(wire::POLL_DECISION_HEADER) {
        // An older host, which refuses fields it does not know (wire::POLL_DECISION_HEADER).
        status.decided_by.clear();
        status.comments.clear();
    }
    Ok(Json(status))
}

pub async fn host_sync(
    State(s): State<Shared>,
    JsonBody(signed): JsonBody<Signed>,
) -> ApiResult<Json<SyncResponse>> {
    let env = s
        .service
        .open_host_envelope(signed, wire::PATH_SYNC)
        .await?;
    Ok(Json(s.service.sync(env).await?))
}

/// The fleet's signed list, as signed once and reused (see `service::revocations`). A
/// client that sends the entity tag it has (`If-None-Match`) gets 304 while the same
/// signed list is served.
pub async fn revocations(State(s): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    let list = s.service.signed_revocations().await?;
    let etag = list.etag.to_string();
    let cached = headers
        .get_all(axum::http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == etag || t == "*");
    let headers = [
        (axum::http::header::ETAG, etag),
        (axum::http::header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if cached {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Ok((
        headers,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        list.body.to_vec(),
    )
        .into_response())
}

// ---- approver endpoints -----------------------------------------------------------------

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pending: bool,
    limit: Option<i64>,
}

pub async fn list_requests(
    State(s): State<Shared>,
    _: Approver,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<RequestView>>> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(s.service.list(q.pending, limit).await?))
}

pub async fn show_request(
    State(s): State<Shared>,
    ApiPath(id): ApiPath<String>,
    _: Approver,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(s.service.show(&id).await?))
}

pub async fn approve(
    State(s): State<Shared>,
    ApiPath(id): ApiPath<String>,
    who: Approver,
    JsonBody(body): JsonBody<ApproveBody>,
) -> ApiResult<Json<RequestView>> {
    let done = s.service.approve(&who, &id, &body.comment).await?;
    Ok(Json(s.service.view(done.request).await?))
}

pub async fn deny(
    State(s): State<Shared>,
    ApiPath(id): ApiPath<String>,
    who: Approver,
    JsonBody(body): JsonBody<ReasonBody>,
) -> ApiResult<Json<RequestView>> {
    let row = s.service.deny(&who, &id, &body.reason).await?;
    Ok(Json(s.service.view(row).await?))
}

pub async fn revoke(
    State(s): State<Shared>,
    ApiPath(id): ApiPath<String>,
    who: Approver,
    JsonBody(body): JsonBody<ReasonBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let revoked = s.service.revoke(&who, &id, &body.reason).await?;
    Ok(Json(
        serde_json::json!({ "grant": id, "revoked": true, "already": !revoked }),
    ))
}

// ---- admin endpoints --------------------------------------------------------------------

pub async fn add_host(
    State(s): State<Shared>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<HostAdd>,
) -> ApiResult<Json<serde_json::Value>> {
    s.service
        .add_host(&who, &body.name, &body.public_key)
        .await?;
    Ok(Json(serde_json::json!({ "host": body.name })))
}

pub async fn add_approver(
    State(s): State<Shared>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<ApproverAdd>,
) -> ApiResult<Json<ApproverToken>> {
    let scope = match (body.scope.as_deref(), body.admin) {
        (None, admin) => {
            if admin {
                "admin"
            } else {
                "approve"
            }
        }
        (Some(scope), false) => scope,
        (Some("admin"), true) => "admin",
        (Some(other), true) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!("admin = true contradicts scope {other:?}"),
            ))
        }
    };
    let (token, scope, expires_at) = s
        .service
        .add_approver_with(&who, &body.name, &body.groups, Some(scope), body.expires_in)
        .await?;
    if let Some(id) = &body.slack_id {
        s.service.set_slack_id(&who, &body.name, id).await?;
    }
    Ok(Json(ApproverToken {
        name: body.name,
        token,
        scope: Some(scope),
        expires_at,
    }))
}
