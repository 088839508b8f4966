//! HTML text: one escaping function that every piece of stored or user-supplied text
//! goes through before it is written into a page, and the page frame.
#![forbid(unsafe_code)]

/// Escape text for an HTML text node or a double- or single-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters never belong in a page; show them as U+FFFD.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            // Bidi overrides, zero-width and other format characters (refused since,
            // but maybe in rows stored before) would make the page read otherwise than
            // what runs: written out as text, `\u{202e}` (plain text, so that this stays
            // safe in attribute values too).
            c if jitsudo_core::text::is_hidden(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A whole page. `title` is escaped here; `body` must already be safe HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"same-origin\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/ui/style.css\">\n</head>\n\
         <body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

/// "42s", "5m", "3h", "2d".
/// A byte count as people read it: `812 B`, `14.2 KiB`, `3.0 MiB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub const STYLE: &str = "\
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:#1d2330;color:#fff}
header h1{font-size:1.1rem;margin:0}
header form{margin:0}
header a{color:#fff}
main{max-width:60rem;margin:0 auto;padding:1rem}
h2{font-size:1.05rem;margin:1.25rem 0 .5rem}
.card{background:#fff;border:1px solid #d9dce3;border-radius:.5rem;padding:.75rem 1rem;margin:.5rem 0}
.card p{margin:.25rem 0;overflow-wrap:anywhere}
.who{font-weight:600}
.muted{color:#5b6273;font-size:.9rem}
code{font:.92rem ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef0f4;padding:.05rem .3rem;border-radius:.25rem;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.5rem}
.actions form{display:flex;flex:1 1 16rem;gap:.4rem;margin:0}
input[type=text],input[type=password]{flex:1;min-width:0;font:inherit;padding:.45rem .6rem;border:1px solid #b9becb;border-radius:.35rem}
button{font:inherit;padding:.45rem .9rem;border:0;border-radius:.35rem;background:#3556d8;color:#fff;cursor:pointer}
button.deny,button.revoke{background:#b42318}
header button{background:#434b5e}
.flash{background:#e7f6ec;border:1px solid #9fd3b0;padding:.5rem .75rem;border-radius:.35rem}
.error{background:#fdecea;border:1px solid #f1a8a0;padding:.5rem .75rem;border-radius:.35rem}
.status{font-size:.8rem;padding:.05rem .4rem;border-radius:.25rem;background:#eef0f4}
.status.active{background:#e7f6ec}.status.revoked{background:#fdecea}
.status.cut,.state.cut{background:#fdecea}
.state{font-size:.8rem;padding:.05rem .4rem;border-radius:.25rem;background:#eef0f4}
ul.runs,ul.recordings{margin:.25rem 0;padding-left:1.25rem;font-size:.92rem}
.outcome{font-weight:600}.outcome.denied,.outcome.error{color:#b42318}
.player{align-items:center}
pre.screen{background:#10131a;color:#e6e9ef;padding:.75rem;border-radius:.5rem;min-height:12rem;max-height:70vh;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere;font:.85rem/1.3 ui-monospace,SFMono-Regular,Menlo,monospace}
.login{max-width:26rem;margin:3rem auto}
.login form{display:flex;flex-direction:column;gap:.6rem}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(escape("a & b"), "a &amp; b");
        assert_eq!(
            escape("\" onmouseover='x'"),
            "&quot; onmouseover=&#39;x&#39;"
        );
        assert_eq!(
            escape("&lt;"),
            "&amp;lt;",
            "already-escaped text is escaped again"
        );
        assert_eq!(escape("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
        assert_eq!(escape("a\u{0}b\u{1b}c"), "a\u{fffd}b\u{fffd}c");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn nothing_dangerous_survives() {
        let nasty = "<img src=x onerror=alert(1)>\"'&<>`";
        let out = escape(nasty);
        assert!(
            !out.contains('<') && !out.contains('>') && !out.contains('"') && !out.contains('\'')
        );
    }

    #[test]
    fn page_escapes_title_and_sets_viewport() {
        let p = page("<b>", "<p>x</p>");
        assert!(p.contains("<title>&lt;b&gt;</title>"));
        assert!(p.contains("width=device-width"));
        assert!(p.contains("<p>x</p>"));
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m");
        assert_eq!(age(7300), "2h");
        assert_eq!(age(200_000), "2d");
        assert_eq!(age(-3), "0s");
    }
}
