//! The file being edited, as root: opened by a walk from `/` that follows no symlink,
//! checked, read, and later written back atomically if nobody changed it meanwhile.
//!
//! Refused, each with its own reason: a symlink anywhere in the path; a directory on the
//! way that anyone but root can write (its owner is not root, or it is group or world
//! writable: such a user could swap the file or a directory under it between the check
//! and the use, the CVE-2015-5602 class); a file with more than one hard link (the
//! other name may be anywhere, and would change too); anything but a regular file; a
//! file over [`MAX_FILE_BYTES`].
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use sha2::{Digest, Sha256};

use crate::secure_file::read_limited;
use crate::system;

/// Files larger than this are not copied for editing: a configuration file is far
/// smaller, and the copy is held in memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file cannot be edited. The text names the file (or the directory) and says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Symlink(String),
    WritableDir { dir: String, by: String },
    NotADirectory(String),
    Missing(String),
    HardLinked { file: String, links: u64 },
    NotRegular(String),
    TooLarge { file: String, size: u64 },
    Io { file: String, why: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Symlink(p) => write!(
                f,
                "{p} is a symbolic link; jitsudo -e follows no symlink anywhere in the path (name the real file)"
            ),
            Refusal::WritableDir { dir, by } => write!(
                f,
                "{dir} is writable by {by}, who could replace the file while it is edited; \
                 jitsudo -e edits only files in directories only root can write"
            ),
            Refusal::NotADirectory(p) => write!(f, "{p} is not a directory"),
            Refusal::Missing(p) => write!(
                f,
                "{p} does not exist (jitsudo -e edits existing files only)"
            ),
            Refusal::HardLinked { file, links } => write!(
                f,
                "{file} has {links} hard links; jitsudo -e edits only files with one name"
            ),
            Refusal::NotRegular(p) => write!(f, "{p} is not a regular file"),
            Refusal::TooLarge { file, size } => write!(
                f,
                "{file} is {size} bytes, more than the {MAX_FILE_BYTES} bytes jitsudo -e copies"
            ),
            Refusal::Io { file, why } => write!(f, "cannot read {file}: {why}"),
        }
    }
}

impl Refusal {
    /// The short reason for the log line.
    pub fn log_text(&self) -> &'static str {
        match self {
            Refusal::Symlink(_) => "symlink in the path",
            Refusal::WritableDir { .. } => "directory writable by others than root",
            Refusal::NotADirectory(_) => "not a directory in the path",
            Refusal::Missing(_) => "no such file",
            Refusal::HardLinked { .. } => "file has several hard links",
            Refusal::NotRegular(_) => "not a regular file",
            Refusal::TooLarge { .. } => "file too large",
            Refusal::Io { .. } => "cannot read the file",
        }
    }
}

/// What identifies one version of the file: if any of it differs at write-back, someone
/// else changed the file (or its owner or mode) meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// The file as root read it.
pub struct Original {
    pub path: String,
    name: String,
    pub stamp: Stamp,
    pub content: Vec<u8>,
    pub sha256: [u8; 32],
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn os_error(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

/// Open `name` in `dir` as an O_PATH handle without following it, to learn what it is
/// without opening it (opening a device or FIFO can have effects of its own).
fn peek(dir: &File, name: &str) -> io::Result<std::fs::Metadata> {
    system::openat(dir.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)?.metadata()
}

/// Only root may be able to change this directory's entries.
fn check_dir(meta: &std::fs::Metadata, shown: &str) -> Result<(), Refusal> {
    let by = if meta.uid() != 0 {
        let name = system::Uid::new(meta.uid())
            .and_then(|uid| system::user_by_uid(uid).ok().flatten())
            .map(|u| u.name);
        Some(match name {
            Some(name) => format!("its owner {name}"),
            None => format!("its owner (uid {})", meta.uid()),
        })
    } else if meta.mode() & 0o002 != 0 {
        Some("everyone".to_string())
    } else if meta.mode() & 0o020 != 0 {
        Some(format!("group {}", meta.gid()))
    } else {
        None
    };
    match by {
        Some(by) => Err(Refusal::WritableDir {
            dir: shown.to_string(),
            by,
        }),
        None => Ok(()),
    }
}

/// Walk from `/` to the directory holding `path`, one component at a time, never
/// following a symlink and checking each directory. Returns it and the final name.
fn walk(path: &str) -> Result<(File, String), Refusal> {
    let io_err = |shown: &str, e: io::Error| Refusal::Io {
        file: shown.to_string(),
        why: e.to_string(),
    };
    let mut dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open("/")
        .map_err(|e| io_err("/", e))?;
    check_dir(&dir.metadata().map_err(|e| io_err("/", e))?, "/")?;
    let parts: Vec<&str> = path[1..].split('/').collect();
    let (last, dirs) = parts.split_last().expect("a checked path has a final name");
    let mut shown = String::new();
    for part in dirs {
        shown.push('/');
        shown.push_str(part);
        let next = match system::openat(
            dir.as_fd(),
            part,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        ) {
            Ok(next) => next,
            Err(e) => {
                return Err(match os_error(&e) {
                    Some(libc::ENOENT) => Refusal::Missing(shown),
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) => match peek(&dir, part) {
                        Ok(m) if m.file_type().is_symlink() => Refusal::Symlink(shown),
                        _ => Refusal::NotADirectory(shown),
                    },
                    _ => io_err(&shown, e),
                })
            }
        };
        check_dir(&next.metadata().map_err(|e| io_err(&shown, e))?, &shown)?;
        dir = next;
    }
    Ok((dir, last.to_string()))
}

/// Open the file at the end of the walk and check it, without reading it.
fn open_checked(path: &str) -> Result<(File, String, File, std::fs::Metadata), Refusal> {
    let (dir, name) = walk(path)?;
    let io_err = |e: io::Error| Refusal::Io {
        file: path.to_string(),
        why: e.to_string(),
    };
    let peeked = match peek(&dir, &name) {
        Ok(m) => m,
        Err(e) if os_error(&e) == Some(libc::ENOENT) => return Err(Refusal::Missing(path.into())),
        Err(e) => return Err(io_err(e)),
    };
    if peeked.file_type().is_symlink() {
        return Err(Refusal::Symlink(path.into()));
    }
    if !peeked.is_file() {
        return Err(Refusal::NotRegular(path.into()));
    }
    let file = system::openat(
        dir.as_fd(),
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )
    .map_err(|e| match os_error(&e) {
        Some(libc::ELOOP) => Refusal::Symlink(path.into()),
        _ => io_err(e),
    })?;
    let meta = file.metadata().map_err(io_err)?;
    // Only root can change the directory, so this is the file peeked at; check again
    // all the same, through the descriptor that will be read.
    if !meta.is_file() || (meta.dev(), meta.ino()) != (peeked.dev(), peeked.ino()) {
        return Err(Refusal::NotRegular(path.into()));
    }
    if meta.nlink() > 1 {
        return Err(Refusal::HardLinked {
            file: path.into(),
            links: meta.nlink(),
        });
    }
    if meta.size() > MAX_FILE_BYTES {
        return Err(Refusal::TooLarge {
            file: path.into(),
            size: meta.size(),
        });
    }
    Ok((dir, name, file, meta))
}

fn read_all(path: &str, file: &File) -> Result<Vec<u8>, Refusal> {
    let content = read_limited(file, MAX_FILE_BYTES + 1).map_err(|e| Refusal::Io {
        file: path.to_string(),
        why: e.to_string(),
    })?;
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(Refusal::TooLarge {
            file: path.to_string(),
            size: content.len() as u64,
        });
    }
    Ok(content)
}

impl Original {
    /// Open, check and read the file at `path` (absolute, in normal form).
    pub fn open(path: &str) -> Result<Original, Refusal> {
        let (_, name, file, meta) = open_checked(path)?;
        let content = read_all(path, &file)?;
        Ok(Original {
            path: path.to_string(),
            name,
            stamp: Stamp::of(&meta),
            sha256: sha256(&content),
            content,
        })
    }

    /// The final component of the path (for the name of the caller's copy).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a write-back ended when it did not.
#[derive(Debug)]
pub enum WriteBackError {
    /// The file is not the version that was copied: someone changed it meanwhile.
    Conflict(String),
    /// It could not be reopened, checked or written.
    Failed(String),
}

impl fmt::Display for WriteBackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteBackError::Conflict(why) | WriteBackError::Failed(why) => f.write_str(why),
        }
    }
}

/// Replace the file with `content`, keeping its owner and mode, if it is still exactly
/// the version `before` read: walked and checked again, locked (so two `jitsudo -e`
/// of the same file write one after the other, and the second sees the first's
/// change), and compared by inode, size, times, owner, mode and SHA-256. The new
/// content goes to a temporary file in the same directory (created O_EXCL, written,
/// owner and mode set, fsynced), which is renamed over the file; then the directory is
/// fsynced. At every moment the file is either the old version or the new one.
pub fn write_back(before: &Original, content: &[u8]) -> Result<(), WriteBackError> {
    let path = &before.path;
    let (dir, name, file, _) =
        open_checked(path).map_err(|r| WriteBackError::Failed(format!("cannot reopen: {r}")))?;
    let failed =
        |what: &str, e: io::Error| WriteBackError::Failed(format!("cannot {what} {path}: {e}"));
    system::lock_exclusive(&file).map_err(|e| failed("lock", e))?;
    // Another writer may have renamed a new version in while this one waited.
    let now_named = peek(&dir, &name).map_err(|e| failed("stat", e))?;
    let meta = file.metadata().map_err(|e| failed("stat", e))?;
    let current = Stamp::of(&meta);
    let conflict = || {
        WriteBackError::Conflict(format!(
            "{path} was changed by someone else while you edited it"
        ))
    };
    if (now_named.dev(), now_named.ino()) != (meta.dev(), meta.ino()) || current != before.stamp {
        return Err(conflict());
    }
    let on_disk = read_all(path, &file).map_err(|r| WriteBackError::Failed(r.to_string()))?;
    if sha256(&on_disk) != before.sha256 {
        return Err(conflict());
    }

    let random = crate::grant::new_grant_id().map_err(WriteBackError::Failed)?;
    let temp = format!(".{}.jitsudo-{}", truncated(&name, 200), &random[..12]);
    let mut out = system::openat(
        dir.as_fd(),
        &temp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
    )
    .map_err(|e| failed("create a temporary file beside", e))?;
    let written = (|| -> io::Result<()> {
        out.write_all(content)?;
        // Owner first: chown clears set-id bits, the mode puts them back.
        std::os::unix::fs::fchown(&out, Some(before.stamp.uid), Some(before.stamp.gid))?;
        out.set_permissions(std::fs::Permissions::from_mode(before.stamp.mode & 0o7777))?;
        out.sync_all()?;
        system::fs::renameat(dir.as_fd(), &temp, &name)
    })();
    if let Err(e) = written {
        let _ = system::fs::unlinkat(dir.as_fd(), &temp);
        return Err(failed("write", e));
    }
    dir.sync_all()
        .map_err(|e| failed("sync the directory of", e))?;
    // The lock on the replaced version is released with `file`, after the rename: a
    // writer that waited for it then finds a new inode under the name.
    drop(file);
    Ok(())
}

fn truncated(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}
