//! Rows as the tables hold them, decoded into the service's vocabulary (`model`).
#![forbid(unsafe_code)]

use sqlx::any::AnyRow;
use sqlx::Row;

use jitsudo_core::grant::Kind;

use crate::model::{ApprovalRow, GrantRow, RequestRow};

pub(crate) const REQUEST_COLUMNS: &str = "id, host, user_name, uid, run_as, command, reason, duration, uses, source, status, rule, message, approvals_needed, approvers, poll_hash, created_at, decided_at, decided_by, kind, allow_exec, record, ticket, extends, chat_approval, approver_mfa";

pub(crate) fn request_row(r: &AnyRow) -> Result<RequestRow, sqlx::Error> {
    Ok(RequestRow {
        id: r.try_get("id")?,
        host: r.try_get("host")?,
        user: r.try_get("user_name")?,
        uid: r.try_get("uid")?,
        run_as: r.try_get("run_as")?,
        kind: kind_column(r)?,
        command: r.try_get("command")?,
        reason: r.try_get("reason")?,
        duration: r.try_get("duration")?,
        uses: r.try_get("uses")?,
        allow_exec: r.try_get::<i64, _>("allow_exec")? != 0,
        record: r.try_get::<i64, _>("record")? != 0,
        ticket: r.try_get("ticket")?,
        extends: r.try_get("extends")?,
        chat_approval: r.try_get::<i64, _>("chat_approval")? != 0,
        approver_mfa: r.try_get::<i64, _>("approver_mfa")? != 0,
        source: r.try_get("source")?,
        status: r.try_get("status")?,
        rule: r.try_get("rule")?,
        message: r.try_get("message")?,
        approvals_needed: r.try_get("approvals_needed")?,
        approvers: r.try_get("approvers")?,
        poll_hash: r.try_get("poll_hash")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
    })
}

/// The `kind` column: `exec` or `edit` (a login grant is never requested from a host).
/// Any other word is an error, not a guess.
pub(crate) fn kind_column(r: &AnyRow) -> Result<Kind, sqlx::Error> {
    let word: String = r.try_get("kind")?;
    match word.as_str() {
        "exec" => Ok(Kind::Exec),
        "edit" => Ok(Kind::Edit),
        other => Err(sqlx::Error::Decode(
            format!("requests.kind holds {other:?}, not exec or edit").into(),
        )),
    }
}

pub(crate) fn grant_row(r: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        host: r.try_get("host")?,
        user: r.try_get("user_name")?,
        token: r.try_get("token")?,
        key_id: r.try_get("key_id")?,
        exp: r.try_get("exp")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(crate) const GRANT_COLUMNS: &str =
    "id, request_id, host, user_name, token, key_id, exp, created_at";

pub(crate) fn approval_row(r: &AnyRow) -> Result<ApprovalRow, sqlx::Error> {
    Ok(ApprovalRow {
        approver: r.try_get("approver")?,
        comment: r.try_get("comment")?,
        at: r.try_get("created_at")?,
    })
}
