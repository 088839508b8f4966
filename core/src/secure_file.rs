//! Opening files that decide who becomes root: config, keys, the grant cache.
//!
//! A file is trusted only if it and every directory above it are owned by root and not
//! writable by group or others. The path is walked one component at a time with
//! `O_NOFOLLOW`, and each check is made on the opened handle, so a symlink or a swap
//! between check and use cannot redirect us.
#![forbid(unsafe_code)]

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::system::fs::openat;

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

/// A directory that was found trusted: it and every directory above it are root-owned
/// and not writable by group or others. Files are opened relative to the held
/// descriptor, so the walk from `/` is done once however many files are read.
pub struct TrustedDir {
    dir: File,
    path: PathBuf,
}

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
// O_NONBLOCK: opening a FIFO planted here must not hang us; we refuse it below.
const FILE_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;

fn not_a_real_dir(path: &Path) -> OpenError {
    OpenError::Untrusted(UntrustedFile(format!(
        "{} is a symlink or not a directory; it must be a real directory owned by root",
        path.display()
    )))
}

impl AsFd for TrustedDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl TrustedDir {
    /// Walk from `/` to `path` one component at a time (`openat`, `O_NOFOLLOW`),
    /// checking each directory on its open handle.
    pub fn open(path: &Path) -> Result<TrustedDir, OpenError> {
        let root = Path::new("/");
        let dir = File::open(root).map_err(|e| OpenError::Io(format!("cannot open /: {e}")))?;
        let mut current = TrustedDir::checked(dir, root.to_path_buf())?;
        for component in path.components() {
            match component {
                Component::RootDir => {}
                Component::Normal(part) => {
                    let name = part
                        .to_str()
                        .ok_or_else(|| OpenError::Io(format!("{} is not UTF-8", path.display())))?;
                    current = current.subdir(name)?;
                }
                _ => {
                    return Err(OpenError::Untrusted(UntrustedFile(format!(
                        "{} is not a normalised absolute path",
                        path.display()
                    ))))
                }
            }
        }
        Ok(current)
    }

    fn checked(dir: File, path: PathBuf) -> Result<TrustedDir, OpenError> {
        let meta = dir
            .metadata()
            .map_err(|e| OpenError::Io(format!("cannot stat {}: {e}", path.display())))?;
        if !meta.is_dir() {
            return Err(not_a_real_dir(&path));
        }
        check_owner_and_mode(&path, &meta).map_err(OpenError::Untrusted)?;
        Ok(TrustedDir { dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, checked like its parents.
    pub fn subdir(&self, name: &str) -> Result<TrustedDir, OpenError> {
        let path = self.path.join(name);
        let dir =
            openat(self.dir.as_fd(), name, DIR_FLAGS, 0).map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => not_a_real_dir(&path),
                Some(libc::ENOENT) => OpenError::Missing,
                _ => OpenError::Io(format!("cannot open {}: {e}", path.display())),
            })?;
        TrustedDir::checked(dir, path)
    }

    /// Open a regular file in this directory for reading, if it is root-owned, not
    /// group/world-writable, no symlink, FIFO or device, and has exactly one link.
    pub fn open_file(&self, name: &str) -> Result<File, OpenError> {
        let path = self.path.join(name);
        let file =
            openat(self.dir.as_fd(), name, FILE_FLAGS, 0).map_err(|e| match e.raw_os_error() {
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
        check_owner_and_mode(&path, &meta).map_err(OpenError::Untrusted)?;
        Ok(file)
    }

    /// Read a trusted file whole, refusing anything larger than `limit` bytes.
    pub fn read_file(&self, name: &str, limit: u64) -> Result<Vec<u8>, OpenError> {
        let file = self.open_file(name)?;
        let path = self.path.join(name);
        read_limited(file, limit).map_err(|e| match e.kind() {
            io::ErrorKind::FileTooLarge => OpenError::Io(format!(
                "{} is larger than {} bytes; refusing to read it",
                path.display(),
                limit
            )),
            _ => OpenError::Io(format!("cannot read {}: {e}", path.display())),
        })
    }
}

/// Check every directory from `/` down to the parent of `path`.
pub fn check_parents(path: &Path) -> Result<(), OpenError> {
    match path.parent() {
        Some(parent) => TrustedDir::open(parent).map(|_| ()),
        None => Ok(()),
    }
}

fn split_file_path(path: &Path) -> Result<(TrustedDir, &str), OpenError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(OpenError::Io(format!(
            "{} is not a file path",
            path.display()
        )));
    };
    Ok((TrustedDir::open(parent)?, name))
}

/// Open a trusted regular file by absolute path (see `TrustedDir::open_file`).
pub fn open_trusted(path: &Path) -> Result<File, OpenError> {
    let (dir, name) = split_file_path(path)?;
    dir.open_file(name)
}

/// Read a trusted file whole, refusing anything larger than `limit` bytes.
pub fn read_trusted(path: &Path, limit: u64) -> Result<Vec<u8>, OpenError> {
    let (dir, name) = split_file_path(path)?;
    dir.read_file(name, limit)
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
