//! The audit trail's HTTP handlers: search, the service's own verification of the
//! chain, and host journal uploads.
#![forbid(unsafe_code)]

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use jitsudo_core::wire::{self, JournalAck, Signed};
use jitsudo_policy::audit::AuditRecord;
use serde_json::Value;

use crate::http::error::ApiResult;
use crate::http::extract::JsonBody;
use crate::http::state::Shared;
use crate::service::{Approver, AuditFilter, Error, Verified};

/// `GET /v1/audit`: any approver may search (auditors get an approver token that no
/// policy rule names).
pub async fn search_handler(
    State(s): State<Shared>,
    _: Approver,
    q: Result<Query<AuditFilter>, QueryRejection>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let Query(f) = q.map_err(|e| Error::Invalid(format!("bad query: {e}")))?;
    Ok(Json(s.service.audit_search(&f).await?))
}

/// `GET /v1/audit/verify`: the service's own walk of the whole chain.
pub async fn verify_handler(State(s): State<Shared>, _: Approver) -> ApiResult<Json<Value>> {
    Ok(Json(match s.service.audit_verify().await? {
        Ok(Verified { chain: ok, pending }) => serde_json::json!({
            "ok": true, "records": ok.records, "head": ok.head, "last_seq": ok.last_seq,
            "pending": pending,
        }),
        Err(b) => serde_json::json!({
            "ok": false, "seq": b.seq, "problem": b.problem, "error": b.to_string(),
        }),
    }))
}

/// `POST /v1/host/journal`: a host uploads records of its local journal (signed with
/// its host key, like every host call). Each (host, seq) is stored once; the answer says
/// how far this host's chain is stored, and the host resumes from there.
pub async fn host_journal_handler(
    State(s): State<Shared>,
    JsonBody(signed): JsonBody<Signed>,
) -> ApiResult<Json<JournalAck>> {
    let env = s
        .service
        .open_host_envelope(signed, wire::PATH_JOURNAL)
        .await?;
    Ok(Json(s.service.host_journal(env).await?))
}
