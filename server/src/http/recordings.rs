//! Session recordings: hosts upload them (signed, in parts), auditors search and fetch
//! them (any approver token, like the audit trail).
//!
//! ```text
//! POST /v1/host/recordings               host envelope: status, part or finish → RecordingAck
//! GET  /v1/recordings[?user,host,grant,since,limit]
//!                                        approver token → [RecordingView] (newest first)
//! GET  /v1/recordings/{host}/{id}        approver token → {recording, files: {name: base64}}
//! ```
#![forbid(unsafe_code)]

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use jitsudo_core::wire::{self, RecordingAck, RecordingDownload, RecordingView, Signed};

use crate::http::error::ApiResult;
use crate::http::extract::{ApiPath, JsonBody};
use crate::http::state::Shared;
use crate::service::{Approver, Error, RecordingSearch};

/// `POST /v1/host/recordings`: one step of a host's upload.
pub async fn host_upload(
    State(s): State<Shared>,
    JsonBody(signed): JsonBody<Signed>,
) -> ApiResult<Json<RecordingAck>> {
    let env = s
        .service
        .open_host_envelope(signed, wire::PATH_RECORDINGS)
        .await?;
    Ok(Json(s.service.host_recording(env).await?))
}

/// `GET /v1/recordings`: search complete recordings.
pub async fn search(
    State(s): State<Shared>,
    _: Approver,
    q: Result<Query<RecordingSearch>, QueryRejection>,
) -> ApiResult<Json<Vec<RecordingView>>> {
    let Query(q) = q.map_err(|e| Error::Invalid(format!("bad query: {e}")))?;
    Ok(Json(s.service.recordings(&q).await?))
}

/// `GET /v1/recordings/{host}/{id}`: one recording with its files.
pub async fn fetch(
    State(s): State<Shared>,
    ApiPath((host, id)): ApiPath<(String, String)>,
    _: Approver,
) -> ApiResult<Json<RecordingDownload>> {
    Ok(Json(s.service.recording(&host, &id).await?))
}
