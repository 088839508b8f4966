//! Opening files that decide who becomes root: config, keys, the grant cache.
//!
//! A file is trusted only if it and every directory above it are owned by root and not
//! writable by group or others. The path is walked one component at a time with
//! `O_NOFOLLOW`, and each check is made on the opened handle, so a symlink or a swap
//! between check and use cannot redirect us.
#![forbid(unsafe_code)]

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path};

/// Why a file was not trusted; the text names the file and the fix.
#[derive(Debug)]
pub struct UntrustedFile(pub String);

impl std::fmt::Display for UntrustedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
pub enum OpenError {
    /// The file does not exist (its parents were fine).
    Missing,
    Untrusted(UntrustedFile),
    Io(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Missing => f.write_str("file does not exist"),
            OpenError::Untrusted(u) => u.fmt(f),
            OpenError::Io(e) => f.write_str(e),
        }
    }
}

const GROUP_OR_WORLD_WRITABLE: u32 = 0o022;

fn check_owner_and_mode(path: &Path, meta: &Metadata) -> Result<(), UntrustedFile> {
    if meta.uid() != 0 {
        return Err(UntrustedFile(format!(
            "{} is owned by uid {}, not root; fix with: chown root:root {}",
            path.display(),
            meta.uid(),
            path.display()
        )));
    }
    if meta.mode() & GROUP_OR_WORLD_WRITABLE != 0 {
        return Err(UntrustedFile(format!(
            "{} is writable by group or others (mode {:o}); fix with: chmod go-w {}",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        )));
    }
    Ok(())
}

fn open_dir_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Check every directory from `/` down to the parent of `path`.
pub fn check_parents(path: &Path) -> Result<(), OpenError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let mut current = std::path::PathBuf::new();
    for component in parent.components() {
        match component {
            Component::RootDir => current.push("/"),
            Component::Normal(part) => current.push(part),
            _ => {
                return Err(OpenError::Untrusted(UntrustedFile(format!(
                    "{} is not a normalised absolute path",
                    path.display()
                ))))
            }
        }
        let dir = open_dir_nofollow(&current).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                OpenError::Untrusted(UntrustedFile(format!(
                    "{} is a symlink or not a directory; it must be a real directory owned by root",
                    current.display()
                )))
            }
            Some(libc::ENOENT) => OpenError::Missing,
            _ => OpenError::Io(format!("cannot open {}: {e}", current.display())),
        })?;
        let meta = dir
            .metadata()
            .map_err(|e| OpenError::Io(format!("cannot stat {}: {e}", current.display())))?;
        check_owner_and_mode(&current, &meta).map_err(OpenError::Untrusted)?;
    }
    Ok(())
}

/// Open a regular file for reading if it and its parents are root-owned and not
/// group/world-writable, it is no symlink, FIFO or device, and it has exactly one link.
pub fn open_trusted(path: &Path) -> Result<File, OpenError> {
    check_parents(path)?;
    let file = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a FIFO planted here must not hang us; we refuse it below.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => OpenError::Missing,
            Some(libc::ELOOP) => OpenError::Untrusted(UntrustedFile(format!(
                "{} is a symlink; it must be a regular file owned by root",
                path.display()
            ))),
            _ => OpenError::Io(format!("cannot open {}: {e}", path.display())),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| OpenError::Io(format!("cannot stat {}: {e}", path.display())))?;
    if !meta.file_type().is_file() {
        return Err(OpenError::Untrusted(UntrustedFile(format!(
            "{} is not a regular file",
            path.display()
        ))));
    }
    if meta.nlink() != 1 {
        return Err(OpenError::Untrusted(UntrustedFile(format!(
            "{} has {} hard links; a trusted file must have exactly one",
            path.display(),
            meta.nlink()
        ))));
    }
    check_owner_and_mode(path, &meta).map_err(OpenError::Untrusted)?;
    Ok(file)
}

/// Read a trusted file whole, refusing anything larger than `limit` bytes.
pub fn read_trusted(path: &Path, limit: u64) -> Result<Vec<u8>, OpenError> {
    let file = open_trusted(path)?;
    read_limited(file, limit).map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => OpenError::Io(format!(
            "{} is larger than {} bytes; refusing to read it",
            path.display(),
            limit
        )),
        _ => OpenError::Io(format!("cannot read {}: {e}", path.display())),
    })
}

/// Read at most `limit` bytes; more is an error rather than a silent truncation.
pub fn read_limited(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "input too large",
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_limited_refuses_oversize() {
        assert_eq!(read_limited(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(read_limited(&b"abcd"[..], 3).is_err());
    }
}
