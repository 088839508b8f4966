//! What several replicas on one database share, so that the fleet behaves as one
//! service: the approver web page's sessions, the rate-limit counters, and which
//! signing key the fleet has activated (decided here, in one transaction, so three
//! replicas starting at once record one activation and a rolling rotation cannot
//! flip-flop).
//!
//! SQL only; what the rows mean is the service's.
#![forbid(unsafe_code)]

use sqlx::Row;

use super::audit::Entry;
use super::tx::{Backend, DbError};
use super::{audit, Db};

type R<T> = Result<T, DbError>;

/// Schema 8: web sessions, rate-limit windows, the fleet's active key and its history.
pub const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE web_sessions (id_hash TEXT PRIMARY KEY, approver TEXT NOT NULL, token_hash TEXT NOT NULL, csrf TEXT NOT NULL, flash_ok INTEGER, flash TEXT, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires INTEGER NOT NULL)",
    "CREATE INDEX web_sessions_by_expiry ON web_sessions (expires)",
    "CREATE TABLE rate_windows (bucket TEXT NOT NULL, window_start INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (bucket, window_start))",
    "CREATE TABLE fleet_state (id INTEGER PRIMARY KEY CHECK (id = 1), active_key TEXT, public_key TEXT, changed_at INTEGER)",
    "INSERT INTO fleet_state (id) VALUES (1)",
    "CREATE TABLE fleet_keys (key_id TEXT NOT NULL, public_key TEXT NOT NULL, activated_at INTEGER NOT NULL, PRIMARY KEY (key_id, public_key))",
];

pub const POSTGRES_SCHEMA: &[&str] = &[
    "CREATE TABLE web_sessions (id_hash TEXT PRIMARY KEY, approver TEXT NOT NULL, token_hash TEXT NOT NULL, csrf TEXT NOT NULL, flash_ok BIGINT, flash TEXT, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL, expires BIGINT NOT NULL)",
    "CREATE INDEX web_sessions_by_expiry ON web_sessions (expires)",
    "CREATE TABLE rate_windows (bucket TEXT NOT NULL, window_start BIGINT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (bucket, window_start))",
    "CREATE TABLE fleet_state (id BIGINT PRIMARY KEY CHECK (id = 1), active_key TEXT, public_key TEXT, changed_at BIGINT)",
    "INSERT INTO fleet_state (id) VALUES (1)",
    "CREATE TABLE fleet_keys (key_id TEXT NOT NULL, public_key TEXT NOT NULL, activated_at BIGINT NOT NULL, PRIMARY KEY (key_id, public_key))",
];

/// Schema 9: the hash of the policy file that decided each request.
pub const POLICY_HASH_SCHEMA: &[&str] =
    &["ALTER TABLE requests ADD COLUMN policy_hash TEXT NOT NULL DEFAULT ''"];

/// A signed-in browser of the web page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    pub approver: String,
    /// The approver's token hash: the approver is looked up again on every page.
    pub token_hash: String,
    pub csrf: String,
    pub expires: i64,
    /// For a person signed in through the identity provider (token_hash empty): their
    /// groups and how they authenticated, as JSON the service wrote.
    pub oidc: Option<String>,
    /// A message for the next page shown (ok, text), taken when read.
    pub flash: Option<(bool, String)>,
}

/// What `activate_key` found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChange {
    /// The fleet's active key is this one already: nothing recorded.
    Unchanged,
    /// The fleet switched to this key; `key.activated` was recorded.
    Activated { previous: Option<String> },
    /// This key was the fleet's active key before and another one has replaced it: a
    /// replica still configured with it (a rolling rotation not finished) records no
    /// switch back. `active` is the fleet's key.
    Superseded { active: String },
}

impl Db {
    // ---- web sessions -----------------------------------------------------------------

    /// Store a new session (by the SHA-256 of its id), sweeping expired ones first.
    pub async fn web_session_create(&self, id_hash: &str, s: &WebSession, now: i64) -> R<()> {
        let _w = self.write_guard().await;
        sqlx::query("DELETE FROM web_sessions WHERE expires <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO web_sessions (id_hash, approver, token_hash, csrf, created_at, last_seen, expires, oidc) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)")
            .bind(id_hash)
            .bind(&s.approver)
            .bind(&s.token_hash)
            .bind(&s.csrf)
            .bind(now)
            .bind(s.expires)
            .bind(s.oidc.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The unexpired session `id_hash`, with its pending message taken: the message is
    /// cleared by a compare-and-set on its text, so of two replicas reading it at once
    /// only one shows it. Its last-seen time is set.
    pub async fn web_session_take(&self, id_hash: &str, now: i64) -> R<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT approver, token_hash, csrf, expires, flash_ok, flash, oidc FROM web_sessions WHERE id_hash = $1 AND expires > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let flash_ok: Option<i64> = row.try_get("flash_ok")?;
        let flash_text: Option<String> = row.try_get("flash")?;
        let _w = self.write_guard().await;
        let flash = match (flash_ok, flash_text) {
            (Some(ok), Some(text)) => {
                let res = sqlx::query(
                    "UPDATE web_sessions SET flash_ok = NULL, flash = NULL, last_seen = $1 WHERE id_hash = $2 AND flash = $3",
                )
                .bind(now)
                .bind(id_hash)
                .bind(&text)
                .execute(&self.pool)
                .await?;
                (res.rows_affected() == 1).then_some((ok != 0, text))
            }
            _ => {
                sqlx::query("UPDATE web_sessions SET last_seen = $1 WHERE id_hash = $2")
                    .bind(now)
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                None
            }
        };
        Ok(Some(WebSession {
            approver: row.try_get("approver")?,
            token_hash: row.try_get("token_hash")?,
            csrf: row.try_get("csrf")?,
            expires: row.try_get("expires")?,
            oidc: row.try_get("oidc")?,
            flash,
        }))
    }

    /// Leave a message for the session's next page.
    pub async fn web_session_flash(&self, id_hash: &str, ok: bool, text: &str) -> R<()> {
        let _w = self.write_guard().await;
        sqlx::query("UPDATE web_sessions SET flash_ok = $1, flash = $2 WHERE id_hash = $3")
            .bind(i64::from(ok))
            .bind(text)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sign a session out. False if there was none.
    pub async fn web_session_delete(&self, id_hash: &str) -> R<bool> {
        let _w = self.write_guard().await;
        let res = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Remove expired sessions; how many.
    pub async fn web_sessions_sweep(&self, now: i64) -> R<u64> {
        let _w = self.write_guard().await;
        let res = sqlx::query("DELETE FROM web_sessions WHERE expires <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    /// Unexpired sessions (the cap on open sessions).
    pub async fn web_session_count(&self, now: i64) -> R<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM web_sessions WHERE expires > $1")
                .bind(now)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    // ---- rate limits ------------------------------------------------------------------

    /// Count one more request of `bucket` in the fixed window starting at
    /// `window_start`, in one upsert; the count including this one, and the count of the
    /// window starting at `previous`.
    pub async fn rate_count(
        &self,
        bucket: &str,
        window_start: i64,
        previous: i64,
    ) -> R<(i64, i64)> {
        let cur: i64 = {
            let _w = self.write_guard().await;
            sqlx::query(
                "INSERT INTO rate_windows (bucket, window_start, n) VALUES ($1, $2, 1) \
                 ON CONFLICT (bucket, window_start) DO UPDATE SET n = rate_windows.n + 1 \
                 RETURNING n",
            )
            .bind(bucket)
            .bind(window_start)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?
        };
        let prev: i64 =
            sqlx::query("SELECT n FROM rate_windows WHERE bucket = $1 AND window_start = $2")
                .bind(bucket)
                .bind(previous)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("n"))
                .transpose()?
                .unwrap_or(0);
        Ok((cur, prev))
    }

    /// Take back one count of `bucket` in the window at `window_start` (a refused
    /// request does not use up the limit).
    /// A host request's two writes in one transaction, so one commit (each is a WAL
    /// flush on PostgreSQL, and `--sync` from a fleet is the service's busiest path):
    /// spend the envelope's nonce and count the request in `bucket`'s window. A nonce
    /// already used keeps nothing: `None`. Otherwise this window's count (with this
    /// request) and the previous window's.
    pub async fn spend_nonce_and_count(
        &self,
        (host, nonce, now): (&str, &str, i64),
        (bucket, window_start, previous): (&str, i64, i64),
    ) -> R<Option<(i64, i64)>> {
        let mut tx = self.write().await?;
        let result = async {
            let fresh = sqlx::query(
                "INSERT INTO nonces (host, nonce, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(host)
            .bind(nonce)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                return Ok(None);
            }
            let cur: i64 = sqlx::query(
                "INSERT INTO rate_windows (bucket, window_start, n) VALUES ($1, $2, 1) \
                 ON CONFLICT (bucket, window_start) DO UPDATE SET n = rate_windows.n + 1 \
                 RETURNING n",
            )
            .bind(bucket)
            .bind(window_start)
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?;
            let prev: i64 =
                sqlx::query("SELECT n FROM rate_windows WHERE bucket = $1 AND window_start = $2")
                    .bind(bucket)
                    .bind(previous)
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(|r| r.try_get("n"))
                    .transpose()?
                    .unwrap_or(0);
            Ok::<_, DbError>(Some((cur, prev)))
        }
        .await;
        tx.finish(result).await
    }

    pub async fn rate_uncount(&self, bucket: &str, window_start: i64) -> R<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "UPDATE rate_windows SET n = n - 1 WHERE bucket = $1 AND window_start = $2 AND n > 0",
        )
        .bind(bucket)
        .bind(window_start)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forget windows that started before `before`.
    pub async fn rate_sweep(&self, before: i64) -> R<u64> {
        let _w = self.write_guard().await;
        let res = sqlx::query("DELETE FROM rate_windows WHERE window_start < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    // ---- the fleet's active key -------------------------------------------------------

    /// Make `key_id` (with `public_key`) the fleet's active key unless it is already,
    /// or was before and has been replaced (see `KeyChange`); decided under the lock of
    /// the one `fleet_state` row, and `key.activated` recorded in the same transaction.
    pub async fn activate_key(
        &self,
        key_id: &str,
        public_key: &str,
        actor: &str,
        detail: serde_json::Value,
        now: i64,
    ) -> R<KeyChange> {
        let mut tx = self.write().await?;
        let result = async {
            let lock = if self.backend == Backend::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let row = sqlx::query(&format!(
                "SELECT active_key, public_key FROM fleet_state WHERE id = 1{lock}"
            ))
            .fetch_one(&mut **tx)
            .await?;
            let mut active: Option<String> = row.try_get("active_key")?;
            let mut active_public: Option<String> = row.try_get("public_key")?;
            if active.is_none() {
                // A database from before schema 8: the trail's last activation says
                // which key the fleet had.
                if let Some(d) = tx.last_key_activation().await? {
                    active = d["key_id"].as_str().map(str::to_string);
                    active_public = d["public_key"].as_str().map(str::to_string);
                    if let (Some(k), Some(p)) = (&active, &active_public) {
                        remember_key(&mut tx, k, p, now).await?;
                    }
                }
            }
            if active.as_deref() == Some(key_id) && active_public.as_deref() == Some(public_key) {
                set_active(&mut tx, key_id, public_key, now).await?;
                return Ok(KeyChange::Unchanged);
            }
            let seen: Option<i64> = sqlx::query(
                "SELECT activated_at FROM fleet_keys WHERE key_id = $1 AND public_key = $2",
            )
            .bind(key_id)
            .bind(public_key)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get("activated_at"))
            .transpose()?;
            if seen.is_some() {
                return Ok(KeyChange::Superseded {
                    active: active.unwrap_or_default(),
                });
            }
            set_active(&mut tx, key_id, public_key, now).await?;
            remember_key(&mut tx, key_id, public_key, now).await?;
            let e = Entry::new("key.activated", actor).detail(detail);
            audit::append(&mut tx, self.backend, now, &[e]).await?;
            Ok(KeyChange::Activated { previous: active })
        }
        .await;
        tx.finish(result).await
    }

    /// The fleet's active key id, as the database records it.
    pub async fn fleet_active_key(&self) -> R<Option<String>> {
        Ok(
            sqlx::query("SELECT active_key FROM fleet_state WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<Option<String>, _>("active_key"))
                .transpose()?
                .flatten(),
        )
    }
}

async fn set_active(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key_id: &str,
    public_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE fleet_state SET active_key = $1, public_key = $2, changed_at = $3 WHERE id = 1 \
         AND (active_key IS NULL OR active_key <> $1 OR public_key <> $2)",
    )
    .bind(key_id)
    .bind(public_key)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn remember_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key_id: &str,
    public_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO fleet_keys (key_id, public_key, activated_at) VALUES ($1, $2, $3) ON CONFLICT (key_id, public_key) DO NOTHING")
        .bind(key_id)
        .bind(public_key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_db(tag: &str, f: impl AsyncFnOnce(&Db)) {
        let dir = std::env::temp_dir().join(format!("jitsudod-fleet-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = Db::connect(&url).await.unwrap();
            f(&db).await;
            db.close().await;
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn activations(db: &Db) -> Vec<String> {
        sqlx::query("SELECT detail FROM audit_log WHERE kind = 'key.activated' ORDER BY seq")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let d: serde_json::Value =
                    serde_json::from_str(&r.get::<String, _>("detail")).unwrap();
                d["key_id"].as_str().unwrap().to_string()
            })
            .collect()
    }

    async fn activate(db: &Db, key: &str) -> KeyChange {
        let detail = serde_json::json!({ "key_id": key, "public_key": format!("pub-{key}") });
        db.activate_key(key, &format!("pub-{key}"), "test", detail, 1)
            .await
            .unwrap()
    }

    #[test]
    fn the_fleet_key_changes_forward_only() {
        with_db("keys", async |db| {
            assert_eq!(
                activate(db, "k1").await,
                KeyChange::Activated { previous: None }
            );
            assert_eq!(activate(db, "k1").await, KeyChange::Unchanged);
            assert_eq!(
                activate(db, "k2").await,
                KeyChange::Activated {
                    previous: Some("k1".into())
                }
            );
            assert_eq!(
                activate(db, "k1").await,
                KeyChange::Superseded {
                    active: "k2".into()
                },
                "a replica lagging on k1 records no switch back"
            );
            assert_eq!(activate(db, "k2").await, KeyChange::Unchanged);
            assert_eq!(activations(db).await, ["k1", "k2"]);
            assert_eq!(db.fleet_active_key().await.unwrap().as_deref(), Some("k2"));
            // A database from before the fleet's state was kept: the trail's last
            // activation is the fleet's key.
            sqlx::query("UPDATE fleet_state SET active_key = NULL, public_key = NULL")
                .execute(&db.pool)
                .await
                .unwrap();
            sqlx::query("DELETE FROM fleet_keys")
                .execute(&db.pool)
                .await
                .unwrap();
            assert_eq!(activate(db, "k2").await, KeyChange::Unchanged);
            assert_eq!(activations(db).await, ["k1", "k2"]);
        });
    }

    #[test]
    fn rate_counts_and_sessions_are_rows() {
        with_db("rows", async |db| {
            assert_eq!(db.rate_count("user:h/a", 120, 60).await.unwrap(), (1, 0));
            assert_eq!(db.rate_count("user:h/a", 120, 60).await.unwrap(), (2, 0));
            db.rate_uncount("user:h/a", 120).await.unwrap();
            assert_eq!(db.rate_count("user:h/a", 180, 120).await.unwrap(), (1, 1));
            assert_eq!(db.rate_sweep(180).await.unwrap(), 1);

            let s = WebSession {
                approver: "bob".into(),
                token_hash: "t".into(),
                csrf: "c".into(),
                expires: 100,
                oidc: None,
                flash: None,
            };
            db.web_session_create("h1", &s, 10).await.unwrap();
            db.web_session_flash("h1", true, "done").await.unwrap();
            let got = db.web_session_take("h1", 20).await.unwrap().unwrap();
            assert_eq!(got.flash, Some((true, "done".to_string())));
            let again = db.web_session_take("h1", 21).await.unwrap().unwrap();
            assert_eq!(again.flash, None, "a message is shown once");
            assert_eq!(
                db.web_session_take("h1", 100).await.unwrap(),
                None,
                "expired"
            );
            assert_eq!(db.web_sessions_sweep(100).await.unwrap(), 1);
            assert!(!db.web_session_delete("h1").await.unwrap());
        });
    }
}
