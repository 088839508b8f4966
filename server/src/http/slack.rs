//! Slack's side of chat approvals (see `service::slack`).
//!
//! ```text
//! POST /v1/slack/interactions            Slack's signed callback for a button click
//!                                        → {"response_type":"ephemeral","text":"…"}
//! POST /v1/admin/approvers/{name}/slack  admin token, {"slack_id":"U…"}
//! ```
#![forbid(unsafe_code)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use crate::http::error::ApiResult;
use crate::http::extract::{Admin, JsonBody};
use crate::http::state::Shared;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The raw body is what Slack signed, so it is taken as bytes and checked before it is
/// parsed.
pub async fn interactions(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let reply = s
        .service
        .slack_interaction(
            header(&headers, "x-slack-request-timestamp"),
            header(&headers, "x-slack-signature"),
            &body,
        )
        .await?;
    // Ephemeral: only the member who clicked sees it; the message with the buttons stays.
    Ok(Json(serde_json::json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": reply.text,
        "counted": reply.counted,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackIdBody {
    slack_id: String,
}

pub async fn set_slack_id(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<SlackIdBody>,
) -> ApiResult<Json<serde_json::Value>> {
    s.service.set_slack_id(&who, &name, &body.slack_id).await?;
    Ok(Json(
        serde_json::json!({ "approver": name, "slack_id": body.slack_id }),
    ))
}
