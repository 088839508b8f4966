//! Helpers shared by the service's test suites: root check, a private PostgreSQL
//! server, temp directories.
#![allow(dead_code)]

pub mod browser;
pub mod hosts;
pub mod pg;
pub mod recordings;
pub mod rows;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Run a future to completion on a fresh single-threaded runtime (the suites themselves
/// are synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Fresh SQLite database URLs, one per `next`, under a temporary directory.
pub struct SqliteUrls {
    dir: TempDir,
    n: AtomicUsize,
}

impl SqliteUrls {
    pub fn new(tag: &str) -> SqliteUrls {
        SqliteUrls {
            dir: TempDir::new(tag),
            n: AtomicUsize::new(0),
        }
    }

    pub fn next(&self) -> String {
        format!(
            "sqlite://{}/db{}.sqlite",
            self.dir.path().display(),
            self.n.fetch_add(1, Ordering::SeqCst)
        )
    }
}

/// A multi-threaded runtime, as the service runs on: concurrency tests need real threads.
pub fn multi_threaded() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// A one-connection pool on the service's database, for tests that read or tamper with
/// its rows directly.
pub async fn connect_database(database: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database)
        .await
        .unwrap()
}

/// These suites start PostgreSQL as the postgres user and run setuid binaries; they
/// must fail, not skip, when not root.
pub fn require_root() {
    jitsudo_testbed::require_root(
        "this suite must run as root (it starts PostgreSQL via runuser and runs a setuid binary)",
    );
}

/// A fresh directory under /tmp, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = PathBuf::from(format!("/tmp/jitsudod-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
