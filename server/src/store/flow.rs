//! Storage for the approval workflow: tickets and extensions on requests, the grant an
//! approved extension replaces (revoked in the transaction that stores its successor),
//! and approvers' Slack member ids.
#![forbid(unsafe_code)]

use sqlx::Row;

use crate::model::Approver;
use crate::store::audit::Entry;
use crate::store::{Db, DbError, WriteTx};

type R<T> = Result<T, DbError>;

pub(crate) const SQLITE_REQUESTS: &[&str] = &[
    "ALTER TABLE requests ADD COLUMN ticket TEXT",
    "ALTER TABLE requests ADD COLUMN extends TEXT",
    "ALTER TABLE requests ADD COLUMN chat_approval INTEGER NOT NULL DEFAULT 1",
    "CREATE INDEX requests_by_extends ON requests (extends)",
];
pub(crate) const POSTGRES_REQUESTS: &[&str] = &[
    "ALTER TABLE requests ADD COLUMN ticket TEXT",
    "ALTER TABLE requests ADD COLUMN extends TEXT",
    "ALTER TABLE requests ADD COLUMN chat_approval BIGINT NOT NULL DEFAULT 1",
    "CREATE INDEX requests_by_extends ON requests (extends)",
];
// NULLs are distinct in a UNIQUE index on both databases: approvers without a Slack id
// do not collide, two approvers with the same one do.
pub(crate) const SQLITE_APPROVERS: &[&str] = &[
    "ALTER TABLE approvers ADD COLUMN slack_id TEXT",
    "CREATE UNIQUE INDEX approvers_by_slack_id ON approvers (slack_id)",
];
pub(crate) const POSTGRES_APPROVERS: &[&str] = SQLITE_APPROVERS;

/// Revoke grant `old` because `new` replaces it (an approved extension), in the
/// transaction that stores `new`; the audit entry to append last. `Conflict` if `old`
/// was revoked meanwhile (revoked by someone, or replaced by another extension): a
/// grant is replaced once, and a revoked one is not extended, so the transaction rolls
/// back.
pub(crate) async fn revoke_replaced(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    old: &str,
    new: &str,
    by: &str,
    now: i64,
) -> R<Entry> {
    let Some(row) =
        sqlx::query("SELECT request_id, host, user_name, exp FROM grants WHERE id = $1")
            .bind(old)
            .fetch_optional(&mut **tx)
            .await?
    else {
        return Err(DbError::NotFound(format!("no grant {old} to replace")));
    };
    let (request, host, user, exp): (String, String, String, i64) = (
        row.try_get("request_id")?,
        row.try_get("host")?,
        row.try_get("user_name")?,
        row.try_get("exp")?,
    );
    let reason = format!("replaced by grant {new} (extension)");
    let res = sqlx::query("INSERT INTO revocations (grant_id, reason, revoked_by, exp, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (grant_id) DO NOTHING")
        .bind(old)
        .bind(&reason)
        .bind(by)
        .bind(exp)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    if res.rows_affected() == 0 {
        return Err(DbError::Conflict(format!(
            "grant {old} was revoked or extended meanwhile; ask again with jitsudo --request"
        )));
    }
    Ok(Entry::new("grant.revoked", by)
        .user(&user)
        .host(&host)
        .request(&request)
        .grant(old)
        .detail(serde_json::json!({ "reason": reason, "replaced_by": new })))
}

impl WriteTx {
    /// See [`revoke_replaced`].
    pub async fn revoke_replaced(&mut self, old: &str, new: &str, by: &str, now: i64) -> R<Entry> {
        revoke_replaced(self, old, new, by, now).await
    }
}

impl Db {
    /// The approver whose Slack member id is `slack_id`.
    pub async fn approver_by_slack_id(&self, slack_id: &str) -> R<Option<Approver>> {
        let row = sqlx::query("SELECT name, groups_json, admin, scope FROM approvers WHERE slack_id = $1 AND (expires_at IS NULL OR expires_at > $2)")
            .bind(slack_id)
            .bind(jitsudo_core::grant::now())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let groups: String = row.try_get("groups_json")?;
        Ok(Some(Approver {
            name: row.try_get("name")?,
            groups: serde_json::from_str(&groups).map_err(|e| DbError::Backend(e.to_string()))?,
            admin: row.try_get::<i64, _>("admin")? != 0,
            sign_in: None,
            read_only: row.try_get::<String, _>("scope")? == "read",
        }))
    }

    /// The Slack member id of approver `name`, if it has one.
    pub async fn slack_id_of(&self, name: &str) -> R<Option<String>> {
        Ok(
            sqlx::query("SELECT slack_id FROM approvers WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<Option<String>, _>("slack_id"))
                .transpose()?
                .flatten(),
        )
    }

    /// Give approver `name` the Slack member id `slack_id`, as admin `by`, audited.
    pub async fn set_slack_id(&self, name: &str, slack_id: &str, by: &str, now: i64) -> R<()> {
        let mut tx = self.write().await?;
        let result = async {
            let res = sqlx::query("UPDATE approvers SET slack_id = $1 WHERE name = $2")
                .bind(slack_id)
                .bind(name)
                .execute(&mut **tx)
                .await
                .map_err(|e| match DbError::from(e) {
                    DbError::Conflict(_) => DbError::Conflict(format!(
                        "another approver already has the Slack id {slack_id}"
                    )),
                    other => other,
                })?;
            if res.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("no approver {name:?}")));
            }
            let e = Entry::new("approver.slack_id", by)
                .detail(serde_json::json!({ "approver": name, "slack_id": slack_id }));
            tx.audit(now, &[e]).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    /// Whether grant `id` is on the revocation list.
    pub async fn is_revoked(&self, id: &str) -> R<bool> {
        Ok(
            sqlx::query("SELECT grant_id FROM revocations WHERE grant_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}
