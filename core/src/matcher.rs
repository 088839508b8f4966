//! Command specs: the one text form shared by `--command`, grants and policy files.
//!
//! ```text
//! /usr/bin/systemctl restart nginx     exactly this argv
//! /usr/bin/journalctl *                this program with any further arguments (or none)
//! /usr/bin/whoami                      this program with no arguments at all
//! sha256:<64 hex> /usr/local/bin/x *   as above, and the file must hash to this value
//! ```
//!
//! Words are separated by spaces; a backslash makes the next character literal, so an
//! argument with a space is written `a\ b` and a literal final star `\*`.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// A parsed command spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub pin: Option<[u8; 32]>,
    pub path: String,
    pub args: ArgRule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgRule {
    /// The path alone: the program must be run with no arguments.
    None,
    /// Exactly these arguments.
    Exact(Vec<String>),
    /// These arguments first, then anything (the final `*` word).
    Prefix(Vec<String>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// A word of the spec text, remembering whether it was a bare `*`.
enum Word {
    Star,
    Text(String),
}

fn split_words(text: &str) -> Result<Vec<Word>, SpecError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut escaped_in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    return Err(SpecError(
                        "a backslash at the end has nothing to escape".into(),
                    ));
                };
                // Escaping makes a character literal, not allowed: a control character
                // stays forbidden (found by fuzzing: it could not be printed back).
                if next.is_control() {
                    return Err(SpecError(format!(
                        "control character {next:?} is not allowed in a command spec"
                    )));
                }
                current.push(next);
                in_word = true;
                escaped_in_word = true;
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(finish_word(&mut current, escaped_in_word));
                    in_word = false;
                    escaped_in_word = false;
                }
            }
            c if c.is_control() => {
                return Err(SpecError(format!(
                    "control character {:?} is not allowed in a command spec",
                    c
                )))
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(finish_word(&mut current, escaped_in_word));
    }
    Ok(words)
}

fn finish_word(current: &mut String, escaped: bool) -> Word {
    let text = std::mem::take(current);
    if text == "*" && !escaped {
        Word::Star
    } else {
        Word::Text(text)
    }
}

/// Check that a program path is absolute and already in normal form, so that the text
/// compared is the text executed: no `.`/`..` parts, no empty parts, no trailing slash.
pub fn check_program_path(path: &str) -> Result<(), SpecError> {
    if !path.starts_with('/') {
        return Err(SpecError(format!(
            "'{path}' is not an absolute path; commands are named by full path, e.g. /usr/bin/{}",
            path.rsplit('/').next().unwrap_or(path)
        )));
    }
    if path.len() == 1 || path.ends_with('/') {
        return Err(SpecError(format!(
            "'{path}' names a directory, not a program"
        )));
    }
    for part in path[1..].split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(SpecError(format!(
                "'{path}' is not in normal form (no '.', '..' or '//' allowed)"
            )));
        }
    }
    Ok(())
}

/// Check a file path of an edit grant (or of `jitsudo -e`): absolute, in normal form
/// (as [`check_program_path`]), and plain, so the text compared is the one file opened:
/// no glob characters (a grant names files, never patterns), no whitespace, backslash or
/// control characters (the path is one word in grants, logs and the editor's argv), and
/// not longer than PATH_MAX.
pub fn check_edit_path(path: &str) -> Result<(), SpecError> {
    if !path.starts_with('/') {
        return Err(SpecError(format!(
            "'{path}' is not an absolute path; files are named by full path, e.g. /etc/{}",
            path.rsplit('/').next().unwrap_or(path)
        )));
    }
    if path.len() == 1 || path.ends_with('/') {
        return Err(SpecError(format!("'{path}' names a directory, not a file")));
    }
    if path.len() > 4095 {
        return Err(SpecError(format!(
            "the path is {} bytes, more than PATH_MAX",
            path.len()
        )));
    }
    if let Some(c) = path.chars().find(|c| {
        matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') || c.is_whitespace() || c.is_control()
    }) {
        return Err(SpecError(format!(
            "'{}' contains {c:?}; an edit grant names files by their exact path, without \
             patterns, spaces, backslashes or control characters",
            path.escape_debug()
        )));
    }
    for part in path[1..].split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(SpecError(format!(
                "'{path}' is not in normal form (no '.', '..' or '//' allowed)"
            )));
        }
    }
    Ok(())
}

fn parse_pin(word: &str) -> Result<Option<[u8; 32]>, SpecError> {
    let Some(hex) = word.strip_prefix("sha256:") else {
        return Ok(None);
    };
    // Check the digits before touching them: `hex` is text, and slicing it in pairs of
    // bytes panicked on a multi-byte character at an odd offset (61 'a', 'é', 'a').
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SpecError(format!(
            "sha256 pin must be 64 hexadecimal digits (0-9, a-f), got {:?} ({} characters)",
            hex,
            hex.chars().count()
        )));
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(Some(out))
}

impl CommandSpec {
    pub fn parse(text: &str) -> Result<CommandSpec, SpecError> {
        let mut words = split_words(text)?.into_iter().peekable();
        let mut pin = None;
        if let Some(Word::Text(first)) = words.peek() {
            if first.starts_with("sha256:") {
                pin = parse_pin(first)?;
                words.next();
            }
        }
        let path = match words.next() {
            Some(Word::Text(path)) => path,
            Some(Word::Star) => {
                return Err(SpecError("the program must be a path, not '*'".into()))
            }
            None => return Err(SpecError("empty command spec".into())),
        };
        check_program_path(&path)?;

        let mut args = Vec::new();
        let mut star = false;
        for word in words {
            if star {
                return Err(SpecError(
                    "'*' is only allowed as the last word (it stands for all further arguments)"
                        .into(),
                ));
            }
            match word {
                Word::Star => star = true,
                Word::Text(arg) => args.push(arg),
            }
        }
        let args = match (star, args.is_empty()) {
            (true, _) => ArgRule::Prefix(args),
            (false, true) => ArgRule::None,
            (false, false) => ArgRule::Exact(args),
        };
        Ok(CommandSpec { pin, path, args })
    }

    /// Does `args` (argv without argv[0]) satisfy this spec's argument rule?
    /// The program path is compared separately by the caller.
    pub fn allows_args<A: AsRef<OsStr>>(&self, args: &[A]) -> bool {
        let eq = |want: &String, got: &A| want.as_bytes() == got.as_ref().as_bytes();
        match &self.args {
            ArgRule::None => args.is_empty(),
            ArgRule::Exact(want) => {
                want.len() == args.len() && want.iter().zip(args).all(|(w, g)| eq(w, g))
            }
            ArgRule::Prefix(want) => {
                want.len() <= args.len() && want.iter().zip(args).all(|(w, g)| eq(w, g))
            }
        }
    }

    /// Does this spec allow running `path` with `args`?
    pub fn allows<A: AsRef<OsStr>>(&self, path: &str, args: &[A]) -> bool {
        self.path == path && self.allows_args(args)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, word: &str) -> fmt::Result {
    if word == "*" {
        return f.write_str("\\*");
    }
    for c in word.chars() {
        if c == ' ' || c == '\t' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    Ok(())
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pin) = &self.pin {
            f.write_str("sha256:")?;
            for b in pin {
                write!(f, "{b:02x}")?;
            }
            f.write_str(" ")?;
        }
        write_escaped(f, &self.path)?;
        let (args, star) = match &self.args {
            ArgRule::None => (&[][..], false),
            ArgRule::Exact(a) => (&a[..], false),
            ArgRule::Prefix(a) => (&a[..], true),
        };
        for arg in args {
            f.write_str(" ")?;
            write_escaped(f, arg)?;
        }
        if star {
            f.write_str(" *")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> CommandSpec {
        CommandSpec::parse(s).unwrap()
    }

    #[test]
    fn path_alone_allows_no_arguments() {
        let s = spec("/usr/bin/whoami");
        assert!(s.allows::<&str>("/usr/bin/whoami", &[]));
        assert!(!s.allows("/usr/bin/whoami", &["--help"]));
        assert!(!s.allows::<&str>("/usr/bin/id", &[]));
    }

    #[test]
    fn exact_arguments_must_match_exactly() {
        let s = spec("/usr/bin/systemctl restart nginx");
        assert!(s.allows("/usr/bin/systemctl", &["restart", "nginx"]));
        assert!(!s.allows("/usr/bin/systemctl", &["restart", "nginx", "x"]));
        assert!(!s.allows("/usr/bin/systemctl", &["restart"]));
        assert!(!s.allows("/usr/bin/systemctl", &["stop", "nginx"]));
    }

    #[test]
    fn trailing_star_allows_any_further_arguments() {
        let s = spec("/usr/bin/journalctl -u *");
        assert!(s.allows("/usr/bin/journalctl", &["-u"]));
        assert!(s.allows("/usr/bin/journalctl", &["-u", "nginx", "-f"]));
        assert!(!s.allows::<&str>("/usr/bin/journalctl", &[]));
        assert!(!s.allows("/usr/bin/journalctl", &["-k"]));
        let any = spec("/usr/bin/journalctl *");
        assert!(any.allows::<&str>("/usr/bin/journalctl", &[]));
    }

    #[test]
    fn star_only_at_the_end() {
        assert!(CommandSpec::parse("/bin/ls * -l").is_err());
        assert!(CommandSpec::parse("*").is_err());
    }

    #[test]
    fn escaped_words() {
        let s = spec(r"/bin/echo a\ b \*");
        assert_eq!(s.args, ArgRule::Exact(vec!["a b".into(), "*".into()]));
        assert!(s.allows("/bin/echo", &["a b", "*"]));
        assert_eq!(s.to_string(), r"/bin/echo a\ b \*");
        assert_eq!(CommandSpec::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn paths_must_be_absolute_and_normal() {
        for bad in [
            "whoami",
            "./x",
            "/usr/../bin/sh",
            "/usr//bin/id",
            "/usr/bin/",
            "/",
            "/a/./b",
        ] {
            assert!(CommandSpec::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn sha256_pin() {
        let hex = "ab".repeat(32);
        let s = spec(&format!("sha256:{hex} /usr/local/bin/deploy *"));
        assert_eq!(s.pin, Some([0xab; 32]));
        assert_eq!(s.path, "/usr/local/bin/deploy");
        assert_eq!(
            s.to_string(),
            format!("sha256:{hex} /usr/local/bin/deploy *")
        );
        assert!(CommandSpec::parse("sha256:abcd /bin/true").is_err());
        assert!(CommandSpec::parse(&format!("sha256:{} /bin/true", "zz".repeat(32))).is_err());
        let upper = spec(&format!("sha256:{} /bin/true", "AB".repeat(32)));
        assert_eq!(upper.pin, Some([0xab; 32]));
    }

    #[test]
    fn non_ascii_pin_is_refused_not_a_panic() {
        // Multi-byte characters at odd and even offsets, in 64 bytes (the length check
        // passes) and in 65. The odd ones made the old byte-pair slicing panic.
        for hex in [
            format!("{}é", "a".repeat(63)),
            format!("{}é", "a".repeat(62)),
            format!("{}éa", "a".repeat(61)),
            format!("a{}a", "é".repeat(31)),
            format!("{}€a", "a".repeat(60)),
            "\u{ff10}".repeat(21) + "a",
        ] {
            let text = format!("sha256:{hex} /bin/true");
            let err = CommandSpec::parse(&text).unwrap_err();
            assert!(err.0.contains("64 hexadecimal digits"), "{text}: {err}");
        }
        // A sign is not a digit, though u8::from_str_radix would take "+a".
        let plus = format!("sha256:+a{} /bin/true", "a".repeat(62));
        assert!(CommandSpec::parse(&plus).is_err());
    }

    #[test]
    fn control_characters_rejected() {
        // Regression (fuzz): an escaped control character is still refused.
        assert!(CommandSpec::parse("/\\\u{1c}(").is_err());
        assert!(CommandSpec::parse("/bin/echo \\\n").is_err());
        assert!(CommandSpec::parse("/bin/echo a\nb").is_err());
        assert!(CommandSpec::parse("").is_err());
        assert!(CommandSpec::parse("   ").is_err());
    }

    #[test]
    fn non_utf8_arguments_never_match_text() {
        use std::os::unix::ffi::OsStrExt;
        let s = spec("/bin/echo *");
        let arg = OsStr::from_bytes(b"\xff");
        assert!(s.allows("/bin/echo", &[arg]));
        let exact = spec("/bin/echo x");
        assert!(!exact.allows("/bin/echo", &[arg]));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        // Printable text including spaces, backslashes and stars: the characters the
        // escaping has to get right.
        "[ -~é]{1,12}"
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(
            dirs in proptest::collection::vec("[a-z0-9_.-]{1,8}", 1..4),
            args in proptest::collection::vec(word(), 0..5),
            star in any::<bool>(),
        ) {
            prop_assume!(dirs.iter().all(|d| d != "." && d != ".."));
            let path = format!("/{}", dirs.join("/"));
            let rule = match (star, args.is_empty()) {
                (true, _) => ArgRule::Prefix(args.clone()),
                (false, true) => ArgRule::None,
                (false, false) => ArgRule::Exact(args.clone()),
            };
            let spec = CommandSpec { pin: None, path, args: rule };
            let text = spec.to_string();
            prop_assert_eq!(CommandSpec::parse(&text).unwrap(), spec);
        }

        #[test]
        fn exact_spec_allows_only_its_own_argv(
            args in proptest::collection::vec(word(), 0..5),
            other in proptest::collection::vec(word(), 0..5),
        ) {
            let spec = CommandSpec {
                pin: None,
                path: "/usr/bin/x".into(),
                args: if args.is_empty() { ArgRule::None } else { ArgRule::Exact(args.clone()) },
            };
            prop_assert!(spec.allows("/usr/bin/x", &args));
            prop_assert_eq!(spec.allows("/usr/bin/x", &other), other == args);
            prop_assert!(!spec.allows("/usr/bin/y", &args));
        }

        #[test]
        fn prefix_spec_allows_exactly_the_extensions(
            prefix in proptest::collection::vec(word(), 0..3),
            rest in proptest::collection::vec(word(), 0..3),
            other in proptest::collection::vec(word(), 0..5),
        ) {
            let spec = CommandSpec { pin: None, path: "/bin/p".into(), args: ArgRule::Prefix(prefix.clone()) };
            let mut full = prefix.clone();
            full.extend(rest);
            prop_assert!(spec.allows("/bin/p", &full));
            prop_assert_eq!(spec.allows("/bin/p", &other), other.starts_with(&prefix));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,64}") {
            let _ = CommandSpec::parse(&text);
        }

        #[test]
        fn pin_parse_never_panics(hex in "[0-9a-fA-Fé€\u{ff10}z+ -]{0,70}") {
            let _ = CommandSpec::parse(&format!("sha256:{hex} /bin/true"));
        }
    }
}
