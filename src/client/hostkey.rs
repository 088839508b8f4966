//! The host identity key, /etc/jitsudo/host.key (root 0600): an Ed25519 key in the
//! same file format as signing keys (`id = "host"`). It signs this host's requests and
//! syncs; the approval service knows only its public half.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::grant::keys::SecretKey;
use crate::secure_file::{self, OpenError};

pub const HOST_KEY_PATH: &str = "/etc/jitsudo/host.key";
const KEY_ID: &str = "host";

/// Load the host key, refusing one that is not root-owned or is readable by others.
pub fn load(path: &Path) -> Result<SecretKey, String> {
    let file = secure_file::open_trusted(path).map_err(|e| match e {
        OpenError::Missing => format!(
            "{} does not exist; enroll this host first: jitsudo --enroll (as root)",
            path.display()
        ),
        other => format!("refusing host key: {other}"),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is accessible by group or others (mode {:o}); fix with: chmod 600 {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    SecretKey::from_file_text(path, &text)
}

/// Create the host key if it does not exist. Returns the key and whether it was created.
pub fn create_if_absent(path: &Path) -> Result<(SecretKey, bool), String> {
    secure_file::check_parents(path)
        .map_err(|e| format!("refusing to create {}: {e}", path.display()))?;
    let key = SecretKey::generate(KEY_ID)?;
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    match created {
        Ok(mut f) => {
            let text = key.to_file_text();
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((key, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((load(path)?, false)),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}
