//! The host's state under /var/lib/jitsudo (root 0700):
//!
//! ```text
//! users/<uid>.json    that user's cached grants and use counters (root 0600)
//! users/<uid>.lock    flock'd while a use is counted or the cache is rewritten
//! clock               high-water mark of the realtime clock (unix seconds)
//! revocations.json    revoked grant ids from the last `jitsudo --sync`
//! ts/<uid>/tty-<dev>  re-authentication timestamp of that user on that terminal (0600)
//! ```
//!
//! One file per user keeps the setuid path's cost independent of everyone else's grants.
//! Every write is temp file + fsync + rename + fsync of the directory, so a crash or a
//! kill leaves either the old or the new file, never a mix.
#![forbid(unsafe_code)]

mod atomic;
pub mod cache;
pub mod journal;

pub use cache::{CacheEntry, UserCache};

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::cell::OnceCell;
use std::rc::Rc;

use crate::secure_file::{self, OpenError, TrustedDir};
use crate::system::{self, Uid};

const MAX_CACHE_BYTES: u64 = 4 << 20;
const MAX_TIMESTAMP_BYTES: u64 = 4096;
/// Re-authentication timestamps, one directory per user (see `crate::reauth`).
const TIMESTAMP_DIR: &str = "ts";
/// The clock mark is rewritten at most this often, to keep runs cheap.
const CLOCK_MARK_GRANULARITY: i64 = 10;

#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError(format!("refusing grant cache: {e}"))
    }
}

/// Recordings the service acknowledged, under the store's root: each line `ID SHA256`,
/// the id and its sealed hash, so a recording is deleted locally only once the service
/// holds exactly it.
pub const RECORDINGS_ACKED: &str = "recordings.acked";

/// Recordings `jitsudo --sync` found cut (never sealed, their writer gone) and recorded
/// so in the journal: each line `ID CHUNKS SHA256`, the last chunk that verified. They
/// are uploaded flagged as cut, at exactly that chunk.
pub const RECORDINGS_CUT: &str = "recordings.cut";

/// Handle on the state directory. The directory chain is checked once per process and
/// the open handles reused for every file read; clones share them (the pipeline's store
/// and the audit journal's), so a run walks the chain once.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    root_dir: Rc<OnceCell<TrustedDir>>,
    users_dir: Rc<OnceCell<TrustedDir>>,
}

/// Held while counting a use or rewriting a user's cache; released on drop.
pub struct UserLock {
    _file: File,
}

/// The service-signed revocation list, as verified and stored by `jitsudo --sync`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Revocations {
    /// When the service issued the list (unix seconds).
    pub issued_at: i64,
    pub ids: Vec<String>,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            root_dir: Rc::default(),
            users_dir: Rc::default(),
        }
    }

    pub fn system() -> Store {
        Store::new(Path::new(crate::config::STATE_DIR))
    }

    /// The checked state directory (`OpenError::Missing` if it does not exist yet).
    fn root_dir(&self) -> Result<&TrustedDir, OpenError> {
        if let Some(dir) = self.root_dir.get() {
            return Ok(dir);
        }
        let dir = TrustedDir::open(&self.root)?;
        Ok(self.root_dir.get_or_init(|| dir))
    }

    fn checked_users_dir(&self) -> Result<&TrustedDir, OpenError> {
        if let Some(dir) = self.users_dir.get() {
            return Ok(dir);
        }
        let dir = self.root_dir()?.subdir("users")?;
        Ok(self.users_dir.get_or_init(|| dir))
    }

    /// Read a state file through the cached, already checked directory handles.
    fn read_state(&self, in_users: bool, name: &str, limit: u64) -> Result<Vec<u8>, OpenError> {
        let dir = if in_users {
            self.checked_users_dir()?
        } else {
            self.root_dir()?
        };
        dir.read_file(name, limit)
    }

    fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }

    fn cache_path(&self, uid: Uid) -> PathBuf {
        self.users_dir().join(format!("{uid}.json"))
    }

    /// Create the state directories if missing (root 0700) and check they are trusted.
    pub fn prepare(&self) -> Result<(), StoreError> {
        for dir in [self.root.clone(), self.users_dir()] {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError(format!("cannot create {}: {e}", dir.display()))),
            }
            check_state_dir(&dir)?;
        }
        Ok(())
    }

    /// A user's cache; empty if the user never imported anything.
    pub fn load_user(&self, uid: Uid) -> Result<UserCache, StoreError> {
        let path = self.cache_path(uid);
        match self.read_state(true, &format!("{uid}.json"), MAX_CACHE_BYTES) {
            Ok(bytes) => UserCache::from_bytes(&bytes).map_err(|e| {
                StoreError(format!(
                    "{}: corrupt cache ({e}); an admin must inspect and remove it",
                    path.display()
                ))
            }),
            Err(OpenError::Missing) => Ok(UserCache::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Take the user's lock. Callers re-read the cache after locking.
    pub fn lock_user(&self, uid: Uid) -> Result<UserLock, StoreError> {
        self.prepare()?;
        let path = self.users_dir().join(format!("{uid}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        let meta = file
            .metadata()
            .map_err(|e| StoreError(format!("cannot stat {}: {e}", path.display())))?;
        if !meta.file_type().is_file() || meta.uid() != 0 {
            return Err(StoreError(format!(
                "{} is not a root-owned regular file",
                path.display()
            )));
        }
        // Only this user's own runs (and root acting on this user's cache, a login
        // through pam_jitsudo say) take this lock; still, a stopped holder must not
        // freeze them forever.
        match system::lock_exclusive_within(&file, journal::LOCK_WAIT) {
            Ok(true) => Ok(UserLock { _file: file }),
            Ok(false) => Err(StoreError(format!(
                "cannot lock {}: another process has held it for over {} s; find it with `fuser -v {}`, end it, and try again",
                path.display(),
                journal::LOCK_WAIT.as_secs(),
                path.display()
            ))),
            Err(e) => Err(StoreError(format!("cannot lock {}: {e}", path.display()))),
        }
    }

    /// Replace the user's cache atomically. Requires the lock.
    pub fn save_user(
        &self,
        uid: Uid,
        cache: &UserCache,
        _lock: &UserLock,
    ) -> Result<(), StoreError> {
        let bytes = cache.to_bytes();
        // The user's lock covers the cache file.
        let writers = atomic::Writers::Locked;
        atomic::replace(
            &self.users_dir(),
            &format!("{uid}.json"),
            &bytes,
            true,
            writers,
        )
        .map_err(|e| {
            StoreError(format!(
                "cannot write {}: {e}",
                self.cache_path(uid).display()
            ))
        })
    }

    /// The highest clock value seen, if any.
    pub fn clock_mark(&self) -> Result<Option<i64>, StoreError> {
        let path = self.root.join("clock");
        match self.read_state(false, "clock", 64) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                text.trim().parse::<i64>().map(Some).map_err(|_| {
                    StoreError(format!(
                        "{} is corrupt; remove it to reset the clock check",
                        path.display()
                    ))
                })
            }
            Err(OpenError::Missing) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Move the clock mark forward to `now` (never back). Not fsync'd: losing the last
    /// few seconds of the mark in a crash costs little, and runs stay cheap.
    pub fn advance_clock(&self, now: i64, mark: Option<i64>) -> Result<(), StoreError> {
        if matches!(mark, Some(m) if now < m + CLOCK_MARK_GRANULARITY) {
            return Ok(());
        }
        self.prepare()?;
        let writers = atomic::Writers::Concurrent; // every run may move the mark
        atomic::replace(
            &self.root,
            "clock",
            format!("{now}\n").as_bytes(),
            false,
            writers,
        )
        .map_err(|e| StoreError(format!("cannot update clock mark: {e}")))
    }

    /// What identifies the current revocation list file (inode, size, change time), to
    /// notice cheaply that `jitsudo --sync` replaced it; `None` if there is none.
    pub fn revocations_stamp(&self) -> Option<(u64, u64, i64, i64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(self.root.join("revocations.json")).ok()?;
        Some((meta.ino(), meta.size(), meta.ctime(), meta.ctime_nsec()))
    }

    /// The revocation list `jitsudo --sync` stored; `None` if there is none yet. Every
    /// other failure names the file and why, so that callers can refuse on it.
    pub fn revocations(&self) -> Result<Option<Revocations>, StoreError> {
        let path = self.root.join("revocations.json");
        match self.read_state(false, "revocations.json", MAX_CACHE_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StoreError(format!(
                    "{}: corrupt revocation list ({e}); run jitsudo --sync",
                    path.display()
                ))
            }),
            Err(OpenError::Missing) => Ok(None),
            Err(e) => Err(StoreError(format!("refusing revocation list: {e}"))),
        }
    }

    /// Append an entry to the host journal (see `journal`).
    pub fn append_journal(
        &self,
        entry: journal::Entry,
        durable: bool,
    ) -> Result<journal::Appended, StoreError> {
        let dir = match self.root_dir() {
            Ok(dir) => dir,
            Err(OpenError::Missing) => {
                self.prepare()?;
                self.root_dir()?
            }
            Err(e) => return Err(e.into()),
        };
        journal::append(dir, entry, durable).map_err(StoreError)
    }

    /// The journal's text and anchor, for verification and upload.
    pub fn read_journal(&self) -> Result<(Vec<u8>, journal::Anchor), StoreError> {
        let dir = self.root_dir()?;
        let text = match dir.read_file(journal::JOURNAL, 1 << 30) {
            Ok(t) => t,
            Err(OpenError::Missing) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok((text, journal::anchor_in(dir).map_err(StoreError)?))
    }

    /// How far the service has acknowledged the journal (0: nothing yet).
    pub fn journal_acked(&self) -> Result<u64, StoreError> {
        match self.read_state(false, journal::ACKED, 64) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).trim().parse().map_err(|_| {
                StoreError(format!(
                    "{} is corrupt",
                    self.root.join(journal::ACKED).display()
                ))
            }),
            Err(OpenError::Missing) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    pub fn save_journal_acked(&self, seq: u64) -> Result<(), StoreError> {
        self.prepare()?;
        atomic::replace(
            &self.root,
            journal::ACKED,
            format!("{seq}\n").as_bytes(),
            true,
            atomic::Writers::Concurrent,
        )
        .map_err(|e| StoreError(format!("cannot record the journal upload: {e}")))
    }

    /// The recordings the service has acknowledged as stored complete: `ID SHA256` a
    /// line (see `RECORDINGS_ACKED`).
    pub fn recordings_acked(&self) -> Result<Vec<(String, String)>, StoreError> {
        let path = self.root.join(RECORDINGS_ACKED);
        match self.read_state(false, RECORDINGS_ACKED, 4 << 20) {
            Ok(bytes) => String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| match l.split_once(' ') {
                    Some((id, hash)) => Ok((id.to_string(), hash.to_string())),
                    None => Err(StoreError(format!("{} is corrupt", path.display()))),
                })
                .collect(),
            Err(OpenError::Missing) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn save_recordings_acked(&self, acked: &[(String, String)]) -> Result<(), StoreError> {
        self.prepare()?;
        let text: String = acked.iter().map(|(id, h)| format!("{id} {h}\n")).collect();
        atomic::replace(
            &self.root,
            RECORDINGS_ACKED,
            text.as_bytes(),
            true,
            atomic::Writers::Concurrent,
        )
        .map_err(|e| StoreError(format!("cannot record the recording upload: {e}")))
    }

    /// The recordings found cut, with the chunk each was cut at (see `RECORDINGS_CUT`).
    pub fn recordings_cut(&self) -> Result<Vec<(String, u64, String)>, StoreError> {
        let path = self.root.join(RECORDINGS_CUT);
        let corrupt = || StoreError(format!("{} is corrupt", path.display()));
        match self.read_state(false, RECORDINGS_CUT, 4 << 20) {
            Ok(bytes) => String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let words: Vec<&str> = l.split(' ').collect();
                    match words[..] {
                        [id, chunks, hash] => Ok((
                            id.to_string(),
                            chunks.parse().map_err(|_| corrupt())?,
                            hash.to_string(),
                        )),
                        _ => Err(corrupt()),
                    }
                })
                .collect(),
            Err(OpenError::Missing) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn save_recordings_cut(&self, cut: &[(String, u64, String)]) -> Result<(), StoreError> {
        self.prepare()?;
        let text: String = cut
            .iter()
            .map(|(id, chunks, h)| format!("{id} {chunks} {h}\n"))
            .collect();
        atomic::replace(
            &self.root,
            RECORDINGS_CUT,
            text.as_bytes(),
            true,
            atomic::Writers::Concurrent,
        )
        .map_err(|e| StoreError(format!("cannot record the cut recording: {e}")))
    }

    fn timestamp_dir(&self, uid: Uid) -> PathBuf {
        self.root.join(TIMESTAMP_DIR).join(uid.to_string())
    }

    /// A re-authentication timestamp of `uid` (one file per terminal), if there is one.
    pub fn load_timestamp(&self, uid: Uid, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let refuse = |e: OpenError| StoreError(format!("refusing authentication timestamp: {e}"));
        let dir = match self
            .root_dir()
            .and_then(|root| root.subdir(TIMESTAMP_DIR))
            .and_then(|ts| ts.subdir(&uid.to_string()))
        {
            Ok(dir) => dir,
            Err(OpenError::Missing) => return Ok(None),
            Err(e) => return Err(refuse(e)),
        };
        match dir.read_file(name, MAX_TIMESTAMP_BYTES) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(OpenError::Missing) => Ok(None),
            Err(e) => Err(refuse(e)),
        }
    }

    /// Write a timestamp (root 0600 in root 0700 directories, created if missing). Not
    /// fsync'd: a timestamp lost in a crash only means one more password prompt.
    pub fn save_timestamp(&self, uid: Uid, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.prepare()?;
        let user_dir = self.timestamp_dir(uid);
        for dir in [self.root.join(TIMESTAMP_DIR), user_dir.clone()] {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError(format!("cannot create {}: {e}", dir.display()))),
            }
            check_state_dir(&dir)?;
        }
        atomic::replace(&user_dir, name, bytes, false, atomic::Writers::Concurrent).map_err(|e| {
            StoreError(format!(
                "cannot write {}: {e}",
                user_dir.join(name).display()
            ))
        })
    }

    /// Forget every re-authentication timestamp of `uid` (`jitsudo -k`).
    pub fn clear_timestamps(&self, uid: Uid) -> Result<(), StoreError> {
        let dir = self.timestamp_dir(uid);
        match TrustedDir::open(&dir) {
            Ok(_) => {}
            Err(OpenError::Missing) => return Ok(()),
            Err(e) => {
                return Err(StoreError(format!(
                    "refusing authentication timestamps: {e}"
                )))
            }
        }
        // remove_dir_all does not follow symlinks inside the tree.
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError(format!("cannot remove {}: {e}", dir.display()))),
        }
    }

    pub fn save_revocations(&self, list: &Revocations) -> Result<(), StoreError> {
        self.prepare()?;
        let bytes = serde_json::to_vec(list).map_err(|e| StoreError(e.to_string()))?;
        atomic::replace(
            &self.root,
            "revocations.json",
            &bytes,
            true,
            atomic::Writers::Concurrent,
        )
        .map_err(|e| StoreError(format!("cannot write revocation list: {e}")))
    }
}

fn check_state_dir(dir: &Path) -> Result<(), StoreError> {
    secure_file::check_parents(&dir.join("x"))?;
    Ok(())
}
