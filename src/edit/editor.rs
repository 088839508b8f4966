//! Which editor `jitsudo -e` runs, as sudo picks it: the first of `SUDO_EDITOR`,
//! `VISUAL` and `EDITOR` that is set and not blank, else `vi`. The value is split at
//! spaces and tabs into the program and its options, with no quoting.
//!
//! The value may carry options (`EDITOR="vim -u NONE"`) but never files: jitsudo
//! appends `--` and then the temporary copies, and a `--` in the value would make every
//! word after it a file the editor opens. That is CVE-2023-22809 in sudo, where
//! `EDITOR="vi -- /etc/shadow"` opened /etc/shadow as root; here the editor never runs
//! as root, but a file name in the value is refused all the same, with the reason.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The variables consulted, in order.
pub const VARIABLES: [&str; 3] = ["SUDO_EDITOR", "VISUAL", "EDITOR"];
/// Used when none of them is set.
pub const DEFAULT: &str = "vi";

/// The editor to run: the program (a name looked up in the caller's PATH, or a path)
/// and the options to put before `--`.
#[derive(Debug, PartialEq, Eq)]
pub struct Editor {
    /// Which variable it came from, for messages; `None` for the default.
    pub from: Option<&'static str>,
    pub words: Vec<OsString>,
}

/// Pick the editor from the caller's environment (`lookup` reads one variable).
pub fn choose(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Editor, String> {
    for name in VARIABLES {
        let Some(value) = lookup(name) else {
            continue;
        };
        let words = split(&value);
        if words.is_empty() {
            continue;
        }
        if words.iter().any(|w| w.as_bytes() == b"--") {
            return Err(format!(
                "{name}={:?} contains '--', after which the editor would take the words that \
                 follow as files to open; give the editor and its options only (jitsudo adds \
                 the files itself)",
                value.to_string_lossy()
            ));
        }
        return Ok(Editor {
            from: Some(name),
            words,
        });
    }
    Ok(Editor {
        from: None,
        words: vec![OsString::from(DEFAULT)],
    })
}

/// Split at spaces and tabs, as sudo does (no quotes, no escapes).
fn split(value: &OsStr) -> Vec<OsString> {
    value
        .as_bytes()
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from_vec(w.to_vec()))
        .collect()
}

impl Editor {
    /// The editor's argv: its words, `--`, then the files.
    pub fn argv(&self, files: &[OsString]) -> Vec<OsString> {
        let mut argv = self.words.clone();
        argv.push(OsString::from("--"));
        argv.extend(files.iter().cloned());
        argv
    }

    /// What to call it in messages: `vim (from EDITOR)`.
    pub fn describe(&self) -> String {
        let program = self.words[0].to_string_lossy();
        match self.from {
            Some(name) => format!("{program} (from {name})"),
            None => format!("{program} (the default; set SUDO_EDITOR, VISUAL or EDITOR)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn words(e: &Editor) -> Vec<&str> {
        e.words.iter().map(|w| w.to_str().unwrap()).collect()
    }

    #[test]
    fn sudo_editor_then_visual_then_editor_then_vi() {
        let all = [("SUDO_EDITOR", "nano"), ("VISUAL", "vim"), ("EDITOR", "ed")];
        assert_eq!(words(&choose(env(&all)).unwrap()), ["nano"]);
        assert_eq!(words(&choose(env(&all[1..])).unwrap()), ["vim"]);
        assert_eq!(words(&choose(env(&all[2..])).unwrap()), ["ed"]);
        let default = choose(env(&[])).unwrap();
        assert_eq!(words(&default), ["vi"]);
        assert_eq!(default.from, None);
    }

    #[test]
    fn blank_values_are_skipped() {
        let e = choose(env(&[
            ("SUDO_EDITOR", ""),
            ("VISUAL", " \t "),
            ("EDITOR", "ed"),
        ]))
        .unwrap();
        assert_eq!(words(&e), ["ed"]);
        assert_eq!(e.from, Some("EDITOR"));
    }

    #[test]
    fn options_are_split_at_blanks_without_quoting() {
        let e = choose(env(&[("EDITOR", "  vim\t-u  NONE  '-c x' ")])).unwrap();
        assert_eq!(words(&e), ["vim", "-u", "NONE", "'-c", "x'"]);
        let argv = e.argv(&["/var/tmp/d/hosts".into()]);
        assert_eq!(
            argv,
            ["vim", "-u", "NONE", "'-c", "x'", "--", "/var/tmp/d/hosts"]
        );
    }

    /// CVE-2023-22809: a `--` would turn the words after it into files to open.
    #[test]
    fn double_dash_in_the_editor_is_refused() {
        for value in ["vi -- /etc/shadow", "vi --", "--", "vi\t--\t/etc/shadow"] {
            let err = choose(env(&[("EDITOR", value)])).unwrap_err();
            assert!(err.starts_with("EDITOR="), "{err}");
            assert!(err.contains("contains '--'"), "{err}");
        }
        // Wherever it is, and even when a later variable is harmless: no fallback.
        let err = choose(env(&[
            ("SUDO_EDITOR", "vi -- /etc/shadow"),
            ("EDITOR", "vi"),
        ]))
        .unwrap_err();
        assert!(err.starts_with("SUDO_EDITOR="), "{err}");
        // Options that merely start with dashes are fine.
        assert!(choose(env(&[("EDITOR", "vi --noplugin -n")])).is_ok());
    }
}
