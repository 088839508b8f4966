//! Characters that change how text reads without showing themselves: Unicode format
//! characters (general category Cf: the bidi embeddings, overrides and isolates
//! U+202A–U+202E and U+2066–U+2069, the marks U+200E/U+200F, zero-width U+200B–U+200D,
//! U+2060–U+2064, the byte-order mark U+FEFF, tags, …) and the line and paragraph
//! separators U+2028 and U+2029. A reason `ok \u{202e}gnp.exe` reads as `ok exe.png`.
//!
//! The service refuses them in what people read before deciding (reasons, comments,
//! command words); what was stored before is shown with [`reveal`] wherever a person
//! reads it. The syslog line escapes them too (`log::escape`).
#![forbid(unsafe_code)]

use std::borrow::Cow;

/// Unicode 15.1's Cf (format) characters, as inclusive ranges, and Zl/Zp.
const HIDDEN: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// A format character (Cf) or a line/paragraph separator (U+2028, U+2029).
pub fn is_hidden(c: char) -> bool {
    let c = c as u32;
    HIDDEN.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// The first character of `s` that [`is_hidden`].
pub fn first_hidden(s: &str) -> Option<char> {
    s.chars().find(|&c| is_hidden(c))
}

/// `c` as a person should read it in a message: `U+202E`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// `s` with every hidden or control character written out as `\u{202e}` (and `\`
/// doubled, so that this cannot be typed to look like one), for text a person reads:
/// the approver web page, `jitsudoctl requests`, webhook messages.
pub fn reveal(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| c.is_control() || is_hidden(c) || c == '\\')
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c.is_control() || is_hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_zero_width_and_separators_are_hidden() {
        for c in [
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{200b}',
            '\u{200f}',
            '\u{2060}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{00ad}',
            '\u{e0041}',
        ] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', 'é', ' ', '→', '日', '\u{2030}', '\u{2065}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn reveal_writes_them_out() {
        assert_eq!(reveal("plain text"), "plain text");
        assert!(matches!(reveal("plain"), Cow::Borrowed(_)));
        assert_eq!(reveal("ok \u{202e}gnp.exe"), "ok \\u{202e}gnp.exe");
        assert_eq!(
            reveal("a\u{200b}b\nc\u{1b}[2J"),
            "a\\u{200b}b\\u{a}c\\u{1b}[2J"
        );
        // A typed `\u{202e}` is not mistaken for a revealed one.
        assert_eq!(reveal("\\u{202e}\u{202e}"), "\\\\u{202e}\\u{202e}");
        assert_eq!(first_hidden("ab\u{2066}c\u{202e}"), Some('\u{2066}'));
        assert_eq!(first_hidden("tab\there"), None);
        assert_eq!(first_hidden("fine"), None);
        assert_eq!(code_point('\u{202e}'), "U+202E");
        assert_eq!(code_point('\u{e0041}'), "U+E0041");
    }
}
