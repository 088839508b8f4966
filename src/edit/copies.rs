//! The caller's copies: a fresh directory of their own (mode 0700, a random name under
//! /var/tmp, else /tmp) holding one file per edited file (mode 0600). Made, read and
//! removed with the caller's effective uid and gid, so that whatever they put there
//! (a symlink to /etc/shadow, a FIFO, a hard link) can only ever be opened with rights
//! they have anyway.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::file::MAX_FILE_BYTES;
use crate::secure_file::read_limited;
use crate::system::{self, User};

/// Where the directory may go, first choice first. /var/tmp survives a reboot, so a
/// copy kept after a conflict is not lost with it.
const BASES: [&str; 2] = ["/var/tmp", "/tmp"];

pub struct Copies {
    pub dir: PathBuf,
    handle: File,
    uid: system::Uid,
    gid: system::Gid,
    /// File names inside `dir`, one per edited file, in order.
    pub names: Vec<String>,
}

/// A base directory fit to hold the copies: a real directory owned by root whose other
/// users cannot remove or rename what they do not own (sticky when world-writable).
fn usable_base(base: &str) -> bool {
    match std::fs::symlink_metadata(base) {
        Ok(m) => m.is_dir() && m.uid() == 0 && (m.mode() & 0o002 == 0 || m.mode() & 0o1000 != 0),
        Err(_) => false,
    }
}

impl Copies {
    /// Make the directory as the caller: mkdir fails on any name that already exists, so
    /// nothing planted is reused. Its handle is what the copies are made in.
    pub fn create(caller: &User) -> Result<Copies, String> {
        let (uid, gid) = (caller.uid, caller.gid);
        let mut last = "no usable temporary directory (/var/tmp, /tmp)".to_string();
        for base in BASES.iter().filter(|b| usable_base(b)) {
            let random = crate::grant::new_grant_id()?;
            let dir = PathBuf::from(format!("{base}/jitsudo-edit.{}", &random[..16]));
            let made = system::as_user_temporarily(uid, gid, || {
                std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                    .open(&dir)
            });
            match made {
                Ok(handle) => {
                    let m = handle
                        .metadata()
                        .map_err(|e| format!("cannot stat {}: {e}", dir.display()))?;
                    if m.uid() != uid.get() || !m.is_dir() || m.mode() & 0o077 != 0 {
                        return Err(format!(
                            "{} is not the private directory just made",
                            dir.display()
                        ));
                    }
                    return Ok(Copies {
                        dir,
                        handle,
                        uid,
                        gid,
                        names: Vec::new(),
                    });
                }
                Err(e) => last = format!("cannot make a directory in {base}: {e}"),
            }
        }
        Err(last)
    }

    /// Write a copy named after `name` (unique in the directory) holding `content`.
    pub fn add(&mut self, name: &str, content: &[u8]) -> Result<(), String> {
        let name = if self.names.iter().any(|n| n == name) {
            format!("{}.{name}", self.names.len() + 1)
        } else {
            name.to_string()
        };
        let handle = &self.handle;
        system::as_user_temporarily(self.uid, self.gid, || {
            let mut f = system::openat(
                handle.as_fd(),
                &name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
            )?;
            f.write_all(content)?;
            f.sync_all()
        })
        .map_err(|e| format!("cannot write {}: {e}", self.dir.join(&name).display()))?;
        self.names.push(name);
        Ok(())
    }

    /// The full paths of the copies, for the editor's argv.
    pub fn paths(&self) -> Vec<OsString> {
        self.names
            .iter()
            .map(|n| self.dir.join(n).into_os_string())
            .collect()
    }

    pub fn path_of(&self, index: usize) -> PathBuf {
        self.dir.join(&self.names[index])
    }

    /// Read copy `index` back as the caller: a regular file, within the size limit.
    pub fn read(&self, index: usize) -> Result<Vec<u8>, String> {
        let name = &self.names[index];
        let shown = self.dir.join(name);
        let handle = &self.handle;
        let file = system::as_user_temporarily(self.uid, self.gid, || {
            system::openat(
                handle.as_fd(),
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
                0,
            )
        })
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW's answer; said in words, not in the C library's (glibc and musl
            // word ELOOP differently).
            Some(libc::ELOOP) => format!(
                "cannot read your edited copy {}: it is a symbolic link, which is not followed",
                shown.display()
            ),
            _ => format!("cannot read your edited copy {}: {e}", shown.display()),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", shown.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "your edited copy {} is not a regular file",
                shown.display()
            ));
        }
        let content = read_limited(&file, MAX_FILE_BYTES + 1)
            .map_err(|e| format!("cannot read {}: {e}", shown.display()))?;
        if content.len() as u64 > MAX_FILE_BYTES {
            return Err(format!(
                "your edited copy {} is larger than {MAX_FILE_BYTES} bytes",
                shown.display()
            ));
        }
        Ok(content)
    }

    /// Remove the directory and what is in it, as the caller.
    pub fn remove(self) -> io::Result<()> {
        let dir: &Path = &self.dir;
        system::as_user_temporarily(self.uid, self.gid, || std::fs::remove_dir_all(dir))
    }
}
