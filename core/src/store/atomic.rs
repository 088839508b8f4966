//! Replace a file atomically: write a temp file beside it, fsync, rename over, fsync the
//! directory. Signals are blocked meanwhile so Ctrl-C cannot strand a temp file; SIGKILL
//! still can, which is what `Writers` is about.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::system;

/// Who may be replacing the same file at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writers {
    /// The caller holds a lock that covers the file, so one temp name serves every
    /// writer: a temp file stranded by a writer killed mid-write is removed by the next
    /// one instead of staying behind for good.
    Locked,
    /// Writers may overlap (no lock): each uses a temp name of its own, with its pid.
    Concurrent,
}

pub fn replace(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durable: bool,
    writers: Writers,
) -> io::Result<()> {
    system::with_signals_blocked(|| {
        let tmp = match writers {
            Writers::Locked => dir.join(format!(".{name}.tmp")),
            Writers::Concurrent => dir.join(format!(".{name}.tmp.{}", system::process_id())),
        };
        let final_path = dir.join(name);
        // A stale temp of a writer that was SIGKILLed (with the same pid only by chance,
        // unless Locked).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn locked_writers_reuse_a_stranded_temp_file() {
        let dir = std::env::temp_dir().join(format!("jitsudo-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        // What a writer killed between create and rename leaves behind.
        std::fs::write(dir.join(".c.json.tmp"), b"half a").unwrap();
        replace(&dir, "c.json", b"whole", false, Writers::Locked).unwrap();
        assert_eq!(names(&dir), ["c.json"]);
        assert_eq!(std::fs::read(dir.join("c.json")).unwrap(), b"whole");
        replace(&dir, "clock", b"1\n", false, Writers::Concurrent).unwrap();
        assert_eq!(names(&dir), ["c.json", "clock"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
