//! The storage's base: which database, its errors, and the write transaction every
//! writer goes through (the SQLite single-writer discipline lives here).
#![forbid(unsafe_code)]

use std::fmt;

use sqlx::AnyPool;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What storage can say went wrong: no such row, a constraint refused a row (a second
/// grant for a request, a name registered twice), or the database failed.
#[derive(Debug, PartialEq, Eq)]
pub enum DbError {
    NotFound(String),
    Conflict(String),
    Backend(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::NotFound(m) | DbError::Conflict(m) => f.write_str(m),
            DbError::Backend(m) => write!(f, "database error: {m}"),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(d) = e.as_database_error() {
            if d.is_unique_violation() {
                return DbError::Conflict(format!("already exists ({})", d.message()));
            }
        }
        DbError::Backend(e.to_string())
    }
}

/// A write transaction: begun by `begin_write`, ended by `finish`.
///
/// On SQLite it holds this process's write lock and began with `BEGIN IMMEDIATE`, so it
/// takes SQLite's write lock at once, waiting for it through `busy_timeout`. A deferred
/// `BEGIN` would take it only at the first write, as an upgrade of its read, and SQLite
/// answers a failed upgrade with SQLITE_BUSY at once, without the busy handler.
///
/// `finish` commits, or rolls back, and waits for that before the write lock is
/// released. A transaction merely dropped on an error path (a duplicate approval, a
/// repeated revocation) leaves its ROLLBACK queued on the connection's worker while the
/// next writer already runs, and finds SQLite's lock still held: that was the
/// occasional "database is locked". Dropped without `finish` (its future cancelled), it
/// rolls back on a task that holds the lock until the rollback is done.
pub struct WriteTx {
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
    pub(crate) backend: Backend,
}

/// Begin a write transaction (see `WriteTx`).
pub async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
    write_lock: &std::sync::Arc<tokio::sync::Mutex<()>>,
) -> Result<WriteTx, sqlx::Error> {
    let lock = match backend {
        Backend::Sqlite => Some(write_lock.clone().lock_owned().await),
        Backend::Postgres => None,
    };
    let tx = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        // Row locks (FOR UPDATE) and constraints serialise what must be; READ COMMITTED
        // transactions never fail to start for another writer.
        Backend::Postgres => pool.begin().await?,
    };
    Ok(WriteTx {
        tx: Some(tx),
        lock,
        backend,
    })
}

impl WriteTx {
    /// Commit when `result` is Ok, else roll back; either way the database has finished
    /// with the transaction before the write lock is released.
    pub async fn finish<T, E: From<DbError>>(mut self, result: Result<T, E>) -> Result<T, E> {
        let Some(tx) = self.tx.take() else {
            return result;
        };
        let out = match result {
            Ok(v) => tx
                .commit()
                .await
                .map(|()| v)
                .map_err(|e| E::from(DbError::from(e))),
            Err(e) => {
                if let Err(r) = tx.rollback().await {
                    tracing::warn!(error = %r, "cannot roll back a failed write transaction");
                }
                Err(e)
            }
        };
        drop(self.lock.take());
        out
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::Transaction<'static, sqlx::Any>;

    fn deref(&self) -> &Self::Target {
        // Some from `begin_write` until `finish`, which consumes the value.
        self.tx
            .as_ref()
            .expect("write transaction used after finish")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.tx
            .as_mut()
            .expect("write transaction used after finish")
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let lock = self.lock.take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = tx.rollback().await;
                    drop(lock);
                });
            }
            // No runtime left: sqlx queues the rollback itself.
            Err(_) => drop((tx, lock)),
        }
    }
}
