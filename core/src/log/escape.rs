//! Escaping for syslog fields: nothing a user types can start a new line, move the
//! cursor of whoever tails the log, or smuggle bytes the log pipeline would mangle.
#![forbid(unsafe_code)]

/// Escape a field for the audit line.
///
/// - ASCII control characters become `#ooo` (octal), as rsyslog writes them: `\n` → `#012`.
/// - Other control characters (C1, e.g. U+009B CSI) and bytes that are not UTF-8 become `\xNN`.
/// - Everything else passes through unchanged.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_control() {
                out.push_str(&format!("#{:03o}", c as u32));
            } else if c.is_control() || is_invisible_format_char(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Characters that reorder or hide text when the log is viewed (bidi overrides, line
/// and paragraph separators).
fn is_invisible_format_char(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
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
        fn printable_text_is_unchanged(text in "[ -~]{0,64}") {
            prop_assert_eq!(escape(text.as_bytes()), text);
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
