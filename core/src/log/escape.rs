//! Escaping for syslog fields: nothing a user types can start a new line, move the
//! cursor of whoever tails the log, smuggle bytes the log pipeline would mangle, or
//! start a field of its own.
#![forbid(unsafe_code)]

/// Ends a field that was cut to its bound. Escaped text never contains a backslash
/// that does not start `\xNN`, so this cannot be typed into a field.
pub const CUT_MARK: &str = "\\...";

/// Escape a field for the audit line.
///
/// - ASCII control characters become `#ooo` (octal), as rsyslog writes them: `\n` → `#012`.
/// - Other control characters (C1, e.g. U+009B CSI) and bytes that are not UTF-8 become `\xNN`.
/// - `;` becomes `\x3b`, so no value can contain the ` ; ` that separates fields and a
///   PWD or argument cannot start a `USER=` or `COMMAND=` of its own.
/// - `\` becomes `\x5c`, so every backslash in the output starts an escape (and
///   `CUT_MARK` cannot be forged).
/// - Everything else passes through unchanged.
pub fn escape(bytes: &[u8]) -> String {
    escape_bounded(bytes, usize::MAX).0
}

/// `escape`, but at most `max` bytes of output: a longer result is cut at an escape
/// boundary and ends in `CUT_MARK`. Returns the text and whether it was cut. Stops
/// reading the input once the bound is passed, so the cost follows `max`, not the input.
pub fn escape_bounded(bytes: &[u8], max: usize) -> (String, bool) {
    let mut w = Bounded {
        out: String::with_capacity(bytes.len().min(max)),
        keep: max.saturating_sub(CUT_MARK.len()),
        max,
        fits: 0,
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let fits = if c.is_ascii_control() {
                w.push(&format!("#{:03o}", c as u32))
            } else if c.is_control() || is_invisible_format_char(c) || c == ';' || c == '\\' {
                let mut buf = [0u8; 4];
                let mut hex = String::with_capacity(16);
                for b in c.encode_utf8(&mut buf).bytes() {
                    hex.push_str(&format!("\\x{b:02x}"));
                }
                w.push(&hex)
            } else {
                let mut buf = [0u8; 4];
                w.push(c.encode_utf8(&mut buf))
            };
            if !fits {
                return w.cut();
            }
        }
        for b in chunk.invalid() {
            if !w.push(&format!("\\x{b:02x}")) {
                return w.cut();
            }
        }
    }
    (w.out, false)
}

/// Output under construction, with the length at the last escape boundary where a
/// `CUT_MARK` would still fit.
struct Bounded {
    out: String,
    keep: usize,
    max: usize,
    fits: usize,
}

impl Bounded {
    /// Add one escaped unit; false once the output is over `max`.
    fn push(&mut self, unit: &str) -> bool {
        self.out.push_str(unit);
        if self.out.len() <= self.keep {
            self.fits = self.out.len();
        }
        self.out.len() <= self.max
    }

    fn cut(mut self) -> (String, bool) {
        self.out.truncate(self.fits);
        self.out.push_str(CUT_MARK);
        (self.out, true)
    }
}

/// Bidi controls, zero-width and other format characters, line and paragraph
/// separators: they would reorder or hide what a person reads in the log.
fn is_invisible_format_char(c: char) -> bool {
    crate::text::is_hidden(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes() {
        assert_eq!(escape(b"/usr/bin/id -u"), "/usr/bin/id -u");
        assert_eq!(escape("café".as_bytes()), "café");
    }

    #[test]
    fn controls_escaped() {
        assert_eq!(escape(b"a\nb"), "a#012b");
        assert_eq!(escape(b"\r\t\x1b[31m"), "#015#011#033[31m");
        assert_eq!(escape(b"\x7f"), "#177");
        assert_eq!(escape("\u{9b}".as_bytes()), "\\xc2\\x9b");
        assert_eq!(escape("\u{202e}".as_bytes()), "\\xe2\\x80\\xae");
    }

    #[test]
    fn invalid_utf8_escaped() {
        assert_eq!(escape(b"a\xffb"), "a\\xffb");
        assert_eq!(escape(b"\xe2\x82"), "\\xe2\\x82");
    }

    #[test]
    fn field_separators_escaped() {
        assert_eq!(
            escape(b"x ; USER=root ; COMMAND=/bin/sh"),
            "x \\x3b USER=root \\x3b COMMAND=/bin/sh"
        );
        assert_eq!(escape(b"a\\x3b"), "a\\x5cx3b");
        assert_eq!(escape(b"\\..."), "\\x5c...");
    }

    #[test]
    fn bounded_output_is_cut_at_an_escape() {
        assert_eq!(escape_bounded(b"abcdef", 6), ("abcdef".to_string(), false));
        assert_eq!(escape_bounded(b"abcdefg", 6), ("ab\\...".to_string(), true));
        // Never half an escape: `\n` is four bytes (#012).
        let (cut, was_cut) = escape_bounded(b"abc\n\n\n", 9);
        assert!(was_cut);
        assert_eq!(cut, "abc\\...");
        let (cut, _) = escape_bounded("éééé".as_bytes(), 7);
        assert_eq!(cut, "\u{e9}\\...");
        // Only about `max` bytes of the input are looked at.
        let huge = vec![b'a'; 8 << 20];
        let (cut, was_cut) = escape_bounded(&huge, 100);
        assert!(was_cut && cut.len() == 100);
    }

    #[test]
    fn output_never_contains_control_bytes() {
        let all: Vec<u8> = (0u8..=255).collect();
        let out = escape(&all);
        assert!(out.chars().all(|c| !c.is_control()));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn escaped_text_has_no_control_characters(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let out = escape(&bytes);
            prop_assert!(out.chars().all(|c| !c.is_control()));
            prop_assert!(!out.contains('\n') && !out.contains('\r'));
        }

        #[test]
        fn printable_text_is_unchanged(text in "[ -:<-\\[\\]-~]{0,64}") {
            prop_assert_eq!(escape(text.as_bytes()), text);
        }

        #[test]
        fn no_separator_survives_and_every_backslash_is_an_escape(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let out = escape(&bytes);
            prop_assert!(!out.contains(';'));
            prop_assert!(!out.contains(CUT_MARK));
            for (i, _) in out.match_indices('\\') {
                let hex = out.get(i + 1..i + 4).unwrap_or("");
                prop_assert!(hex.len() == 3 && hex.starts_with('x'), "{}", out);
                prop_assert!(hex[1..].chars().all(|c| c.is_ascii_hexdigit()), "{}", out);
            }
        }

        #[test]
        fn bounded_is_a_marked_prefix(bytes in proptest::collection::vec(any::<u8>(), 0..256), max in 4usize..300) {
            let full = escape(&bytes);
            let (cut, was_cut) = escape_bounded(&bytes, max);
            prop_assert!(cut.len() <= max);
            if was_cut {
                let kept = cut.strip_suffix(CUT_MARK).unwrap();
                prop_assert!(full.starts_with(kept));
                prop_assert!(full.len() > max);
            } else {
                prop_assert_eq!(cut, full);
            }
        }

        #[test]
        fn split_lines_fit_and_keep_everything(words in proptest::collection::vec("[a-z]{1,300}", 1..40)) {
            let line = format!("alice : COMMAND={}", words.join(" "));
            let parts = crate::log::split_line(&line, "alice", crate::log::MAX_MESSAGE_BYTES);
            prop_assert!(parts.iter().all(|p| p.len() <= crate::log::MAX_MESSAGE_BYTES));
            let kept: usize = parts.iter().map(|p| p.chars().filter(|c| c.is_ascii_lowercase()).count()).sum();
            let marker = "alicecommandcontinued".len() * (parts.len() - 1);
            let original = line.chars().filter(|c| c.is_ascii_lowercase()).count();
            prop_assert_eq!(kept, original + marker);
        }
    }
}
