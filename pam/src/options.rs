//! Module arguments, as written after the module path in a /etc/pam.d file.
//!
//! Every word must be known: a misspelt `exmpt_group=wheel` would otherwise silently
//! lock out the admins it was meant to let in, so an unknown word is a service error.
#![forbid(unsafe_code)]

use std::fmt;

/// What the stack line asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Members of this group pass the account check without a grant (break-glass).
    pub exempt_group: Option<String>,
    /// Log what would be denied, and allow it.
    pub audit_only: bool,
    /// Log extra detail (which grants were looked at and why they did not count).
    pub debug: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadArgument(pub String);

impl fmt::Display for BadArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; pam_jitsudo takes exempt_group=NAME, audit_only and debug (see pam_jitsudo(8))",
            self.0
        )
    }
}

/// Group names follow the same portable rules as user names.
fn valid_group_name(name: &str) -> bool {
    jitsudo_core::grant::valid_user_name(name)
}

impl TryFrom<&[String]> for Options {
    type Error = BadArgument;

    fn try_from(args: &[String]) -> Result<Self, Self::Error> {
        let mut options = Options::default();
        for word in args {
            let bad = |why: String| Err(BadArgument(why));
            match word.split_once('=') {
                Some(("exempt_group", name)) => {
                    if options.exempt_group.is_some() {
                        return bad("exempt_group= is given twice".into());
                    }
                    if !valid_group_name(name) {
                        return bad(format!("exempt_group={name:?} does not name a valid group"));
                    }
                    options.exempt_group = Some(name.to_string());
                }
                None if word == "audit_only" => {
                    if options.audit_only {
                        return bad("audit_only is given twice".into());
                    }
                    options.audit_only = true;
                }
                None if word == "debug" => {
                    if options.debug {
                        return bad("debug is given twice".into());
                    }
                    options.debug = true;
                }
                Some((key @ ("audit_only" | "debug"), _)) => {
                    return bad(format!("{key} takes no value (write just {key})"));
                }
                _ => return bad(format!("unknown module argument {word:?}")),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Options, BadArgument> {
        let owned: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Options::try_from(owned.as_slice())
    }

    #[test]
    fn known_words() {
        assert_eq!(parse(&[]), Ok(Options::default()));
        assert_eq!(
            parse(&["exempt_group=wheel", "audit_only", "debug"]),
            Ok(Options {
                exempt_group: Some("wheel".into()),
                audit_only: true,
                debug: true
            })
        );
    }

    #[test]
    fn unknown_and_malformed_words_rejected() {
        for bad in [
            &["exmpt_group=wheel"][..],
            &["audit-only"],
            &["debug=1"],
            &["exempt_group="],
            &["exempt_group=a b"],
            &["exempt_group=-x"],
            &["exempt_group=a", "exempt_group=b"],
            &["debug", "debug"],
            &["DEBUG"],
            &[""],
        ] {
            let e = parse(bad);
            assert!(e.is_err(), "{bad:?} must be rejected");
        }
        let e = parse(&["exmpt_group=wheel"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("unknown module argument \"exmpt_group=wheel\""),
            "{e}"
        );
        assert!(e.contains("exempt_group=NAME"), "{e}");
    }
}
