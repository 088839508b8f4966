//! Replace a file atomically: write a temp file beside it, fsync, rename over, fsync the
//! directory. Signals are blocked meanwhile so Ctrl-C cannot strand a temp file.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::system;

pub fn replace(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    system::with_signals_blocked(|| {
        let tmp = dir.join(format!(".{name}.tmp.{}", system::process_id()));
        let final_path = dir.join(name);
        // A stale temp from a process that was SIGKILLed holds our pid only by chance.
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            file.write_all(bytes)?;
            if durable {
                file.sync_all()?;
            }
            drop(file);
            std::fs::rename(&tmp, &final_path)?;
            if durable {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    })
}
