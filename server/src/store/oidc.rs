//! Sign-in through the identity provider: the pending logins (`state`, `nonce` and the
//! PKCE verifier of an authorization request the browser was sent away with), kept in
//! the database so that the replica taking the callback need not be the one that sent
//! the browser away; each is taken once.
//!
//! SQL only; what the rows mean is the service's.
#![forbid(unsafe_code)]

use sqlx::Row;

use super::tx::DbError;
use super::Db;

type R<T> = Result<T, DbError>;

/// Schema 14: pending logins; a web session's identity-provider sign-in; a request's
/// `approver_mfa`.
pub const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE oidc_logins (state_hash TEXT PRIMARY KEY, nonce TEXT NOT NULL, pkce_verifier TEXT NOT NULL, step_up INTEGER NOT NULL, created_at INTEGER NOT NULL, expires INTEGER NOT NULL)",
    "ALTER TABLE web_sessions ADD COLUMN oidc TEXT",
    "ALTER TABLE requests ADD COLUMN approver_mfa INTEGER NOT NULL DEFAULT 0",
];

pub const POSTGRES_SCHEMA: &[&str] = &[
    "CREATE TABLE oidc_logins (state_hash TEXT PRIMARY KEY, nonce TEXT NOT NULL, pkce_verifier TEXT NOT NULL, step_up BIGINT NOT NULL, created_at BIGINT NOT NULL, expires BIGINT NOT NULL)",
    "ALTER TABLE web_sessions ADD COLUMN oidc TEXT",
    "ALTER TABLE requests ADD COLUMN approver_mfa BIGINT NOT NULL DEFAULT 0",
];

/// Schema 15: what an approver token may do and until when (NULL: never expires).
pub const SQLITE_TOKEN_TERMS: &[&str] = &[
    "ALTER TABLE approvers ADD COLUMN scope TEXT NOT NULL DEFAULT 'approve'",
    "UPDATE approvers SET scope = 'admin' WHERE admin <> 0",
    "ALTER TABLE approvers ADD COLUMN expires_at INTEGER",
];

pub const POSTGRES_TOKEN_TERMS: &[&str] = &[
    "ALTER TABLE approvers ADD COLUMN scope TEXT NOT NULL DEFAULT 'approve'",
    "UPDATE approvers SET scope = 'admin' WHERE admin <> 0",
    "ALTER TABLE approvers ADD COLUMN expires_at BIGINT",
];

/// An authorization request the browser was sent to the provider with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
    /// Sent back for a second factor (`prompt=login`, `acr_values`).
    pub step_up: bool,
    pub expires: i64,
}

impl Db {
    /// Set approver `name`'s token scope and expiry.
    pub async fn set_token_terms(&self, name: &str, scope: &str, expires_at: Option<i64>) -> R<()> {
        let _w = self.write_guard().await;
        let res = sqlx::query("UPDATE approvers SET scope = $1, expires_at = $2 WHERE name = $3")
            .bind(scope)
            .bind(expires_at)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() != 1 {
            return Err(DbError::NotFound(format!("no approver {name}")));
        }
        Ok(())
    }

    /// Store a pending login under the SHA-256 of its `state`, sweeping expired ones
    /// first; refused (false) when `max` are pending already.
    pub async fn oidc_login_create(
        &self,
        state_hash: &str,
        p: &PendingLogin,
        now: i64,
        max: i64,
    ) -> R<bool> {
        let _w = self.write_guard().await;
        sqlx::query("DELETE FROM oidc_logins WHERE expires <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM oidc_logins")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        if n >= max {
            return Ok(false);
        }
        sqlx::query("INSERT INTO oidc_logins (state_hash, nonce, pkce_verifier, step_up, created_at, expires) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(state_hash)
            .bind(&p.nonce)
            .bind(&p.pkce_verifier)
            .bind(i64::from(p.step_up))
            .bind(now)
            .bind(p.expires)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    /// Take the unexpired pending login `state_hash`: read and deleted, and returned only
    /// by the one caller whose delete removed the row, so a `state` is used once even
    /// when two replicas receive the same callback.
    pub async fn oidc_login_take(&self, state_hash: &str, now: i64) -> R<Option<PendingLogin>> {
        let _w = self.write_guard().await;
        let row = sqlx::query(
            "SELECT nonce, pkce_verifier, step_up, expires FROM oidc_logins WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let res = sqlx::query("DELETE FROM oidc_logins WHERE state_hash = $1")
            .bind(state_hash)
            .execute(&self.pool)
            .await?;
        let login = PendingLogin {
            nonce: row.try_get("nonce")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            step_up: row.try_get::<i64, _>("step_up")? != 0,
            expires: row.try_get("expires")?,
        };
        Ok((res.rows_affected() == 1 && login.expires > now).then_some(login))
    }
}
