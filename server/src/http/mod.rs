//! The HTTP layer: the routes, their handlers (`api`, `audit`, the web page in `web`),
//! the extractors that authenticate approvers and parse bodies (`extract`), the one
//! place where service errors become status codes (`error`), and what bounds a
//! connection before any handler runs (`listener`). Handlers only translate
//! between HTTP and the service; they hold no rules and run no SQL.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod error;
pub mod extract;
pub mod listener;
pub mod recordings;
pub mod slack;
pub mod state;
pub mod web;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use jitsudo_core::wire;

pub use state::{AppState, Shared};

/// The largest body any route takes (journal uploads, recording parts).
const MAX_ROUTE_BODY: usize = 2 << 20;

pub fn router(state: Shared) -> Router {
    let limit = state.service.config.limits.max_body_bytes;
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/v1/openapi.yaml", get(api::openapi))
        .route("/v1/oidc", get(api::oidc_client))
        .route(wire::PATH_REQUESTS, post(api::host_request))
        .route("/v1/host/requests/{id}", get(api::host_request_status))
        .route(wire::PATH_SYNC, post(api::host_sync))
        .route("/v1/revocations", get(api::revocations))
        .route("/v1/requests", get(api::list_requests))
        .route("/v1/requests/{id}", get(api::show_request))
        .route("/v1/requests/{id}/approve", post(api::approve))
        .route("/v1/requests/{id}/deny", post(api::deny))
        .route("/v1/grants/{id}/revoke", post(api::revoke))
        .route("/v1/admin/hosts", post(api::add_host))
        .route("/v1/admin/approvers", post(api::add_approver))
        .route("/v1/audit", get(audit::search_handler))
        .route("/v1/audit/verify", get(audit::verify_handler))
        // Journal uploads carry whole records; every other route keeps the small limit.
        .route(
            wire::PATH_JOURNAL,
            post(audit::host_journal_handler).layer(DefaultBodyLimit::max(MAX_ROUTE_BODY)),
        )
        // Recording parts carry up to 512 KiB of one file, in base64, in an envelope.
        .route(
            wire::PATH_RECORDINGS,
            post(recordings::host_upload).layer(DefaultBodyLimit::max(MAX_ROUTE_BODY)),
        )
        .route("/v1/slack/interactions", post(slack::interactions))
        .route(
            "/v1/admin/approvers/{name}/slack",
            post(slack::set_slack_id),
        )
        .route("/v1/recordings", get(recordings::search))
        .route("/v1/recordings/{host}/{id}", get(recordings::fetch))
        .merge(web::routes())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // A body that trickles in fails once its time is up (408), whichever extractor
        // waits on it.
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_secs(state.service.config.limits.body_timeout_seconds),
            listener::body_deadline,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}
