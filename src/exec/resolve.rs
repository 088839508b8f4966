//! From what the user typed to the program paths a grant may name.
//!
//! A path with a slash must be absolute and in normal form; it is compared as written.
//! A bare name is looked up in `secure_path` only (never the caller's PATH); every
//! directory there that holds it is a candidate, in `secure_path` order, so a grant for
//! `/bin/systemctl` and one for `/usr/bin/systemctl` both serve `jitsudo systemctl`.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::matcher::check_program_path;

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Candidate absolute paths for the program the user named, best first.
pub fn candidates(typed: &OsStr, secure_path: &[PathBuf]) -> Result<Vec<String>, String> {
    let Some(typed) = typed.to_str() else {
        return Err("the program name is not valid UTF-8".into());
    };
    if typed.contains('/') {
        check_program_path(typed).map_err(|e| e.to_string())?;
        if !is_executable_file(Path::new(typed)) {
            return Err(format!(
                "{typed}: command not found (or not an executable file)"
            ));
        }
        return Ok(vec![typed.to_string()]);
    }
    if typed.is_empty() || typed == "." || typed == ".." {
        return Err(format!("'{typed}' is not a command name"));
    }
    let found: Vec<String> = secure_path
        .iter()
        .map(|dir| dir.join(typed))
        .filter(|p| is_executable_file(p))
        .filter_map(|p| p.to_str().map(str::to_string))
        .filter(|p| check_program_path(p).is_ok())
        .collect();
    if found.is_empty() {
        let dirs: Vec<String> = secure_path
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(format!(
            "{typed}: command not found in secure_path ({})",
            dirs.join(":")
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_use_secure_path_only() {
        let dirs = vec![
            PathBuf::from("/nonexistent"),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/bin"),
        ];
        let c = candidates(OsStr::new("true"), &dirs).unwrap();
        assert_eq!(c[0], "/usr/bin/true");
        let e = candidates(OsStr::new("true"), &[PathBuf::from("/nonexistent")]).unwrap_err();
        assert!(e.contains("not found in secure_path"), "{e}");
    }

    #[test]
    fn paths_must_be_absolute_normal_and_exist() {
        let dirs = vec![PathBuf::from("/usr/bin")];
        assert_eq!(
            candidates(OsStr::new("/usr/bin/true"), &dirs).unwrap(),
            vec!["/usr/bin/true"]
        );
        assert!(candidates(OsStr::new("./true"), &dirs).is_err());
        assert!(candidates(OsStr::new("bin/true"), &dirs).is_err());
        assert!(candidates(OsStr::new("/usr/bin/../bin/true"), &dirs).is_err());
        assert!(candidates(OsStr::new("/usr/bin/no-such-program"), &dirs).is_err());
        assert!(candidates(OsStr::new(".."), &dirs).is_err());
    }
}
