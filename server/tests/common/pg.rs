//! A throwaway PostgreSQL server: initdb + pg_ctl as the postgres user (initdb refuses
//! root) in a temp directory, listening only on a Unix socket in that directory.
//! Stopped explicitly on drop: nothing here reaps orphans.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Pg {
    dir: super::TempDir,
    bin: PathBuf,
    next_db: AtomicUsize,
}

fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("JITSUDO_PG_BIN") {
        return PathBuf::from(dir);
    }
    for v in ["17", "16", "15", "14", "13"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return p;
        }
    }
    panic!(
        "PostgreSQL server binaries not found (apt-get install postgresql, or set JITSUDO_PG_BIN)"
    );
}

fn as_postgres(bin: &Path, program: &str, args: &[&str], dir: &Path) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(program))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pg {
    pub fn start() -> Pg {
        super::require_root();
        let bin = pg_bin();
        let dir = super::TempDir::new("pg");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "chown postgres");
        let d = dir.path().display().to_string();
        let data = format!("{d}/data");
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            dir.path(),
        );
        let opts = format!("-k {d} -c listen_addresses='' -c fsync=off -c max_connections=200");
        as_postgres(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &format!("{d}/log"),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
            dir.path(),
        );
        Pg {
            dir,
            bin,
            next_db: AtomicUsize::new(0),
        }
    }

    /// A new, empty database on this server.
    pub fn new_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{n}");
        let d = self.dir.path().display().to_string();
        as_postgres(
            &self.bin,
            "createdb",
            &["-h", &d, "-U", "postgres", &name],
            self.dir.path(),
        );
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost/{db}?host={}",
            self.dir.path().display()
        )
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &format!("{d}/data"), "-m", "immediate", "-w", "stop"])
            .current_dir(self.dir.path())
            .output();
    }
}
