//! The judgement: given the caller's verified grants and what they asked to run, allow
//! one grant or explain the refusal. Pure apart from the pin check the caller supplies.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::time::Duration;

use crate::grant::{Grant, Kind, Rejection};
use crate::matcher::CommandSpec;

/// What was asked.
pub struct Ask<'a> {
    pub user: &'a str,
    pub host: &'a str,
    pub run_as: &'a str,
    /// Candidate program paths (one, or several for a bare name), best first.
    pub paths: &'a [String],
    /// argv without argv[0].
    pub args: &'a [OsString],
}

/// A cached grant after signature verification, with its use counter.
pub struct Cached<'a> {
    pub grant: &'a Grant,
    pub used: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Allowed {
    /// Index into the grants given to `decide`.
    pub grant: usize,
    pub path: String,
    pub pinned: bool,
}

/// Why nothing allowed the command, most useful reason first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No grant names this command as this user.
    NoGrant { invalid: Vec<Rejection> },
    /// A grant names the command but only as another user.
    OtherRunAs { grant: String, run_as: String },
    /// A grant names the command but cannot be used now.
    Unusable { grant: String, why: String },
}

/// Does the pinned file hash to what the grant says? `Err` says why not (a different
/// hash, or a file that cannot be read or run). Supplied by the pipeline, which keeps
/// the bytes hashed for exec.
pub type PinCheck<'a> = dyn FnMut(&[u8; 32], &str) -> Result<(), String> + 'a;

fn spec_matches(spec: &CommandSpec, path: &str, args: &[OsString]) -> bool {
    spec.allows(path, args)
}

/// Pick the grant to use. Unlimited grants are preferred over counted ones (no need to
/// burn a one-time grant when a window covers the command), then the soonest to expire.
pub fn decide(
    ask: &Ask<'_>,
    grants: &[Cached<'_>],
    invalid: Vec<Rejection>,
    revoked: &HashSet<String>,
    now: i64,
    skew: Duration,
    pin_check: &mut PinCheck<'_>,
) -> Result<Allowed, Denial> {
    let mut best: Option<(Allowed, (bool, i64))> = None;
    let mut unusable: Option<Denial> = None;
    let mut other_run_as: Option<Denial> = None;

    for (index, cached) in grants.iter().enumerate() {
        let g = cached.grant;
        for path in ask.paths {
            let Some(spec) = g.commands.iter().find(|s| spec_matches(s, path, ask.args)) else {
                continue;
            };
            if g.claims.run_as != ask.run_as {
                other_run_as.get_or_insert(Denial::OtherRunAs {
                    grant: g.id().to_string(),
                    run_as: g.claims.run_as.clone(),
                });
                continue;
            }
            let problem = if let Err(e) = g.check_binding(ask.host, ask.user) {
                Some(e.to_string())
            } else if g.claims.kind != Kind::Exec {
                Some(format!(
                    "grant is a {} grant, not an exec grant",
                    g.claims.kind
                ))
            } else if revoked.contains(g.id()) {
                Some("grant has been revoked".to_string())
            } else if let Err(e) = g.check_window(now, skew) {
                Some(e.to_string())
            } else if g.claims.uses.is_some_and(|n| cached.used >= n) {
                Some(match g.claims.uses.unwrap_or(0) {
                    1 => "one-time grant has already been used".to_string(),
                    n => format!("all {n} uses of the grant are used up"),
                })
            } else if let Some(pin) = &spec.pin {
                pin_check(pin, path).err()
            } else {
                None
            };
            if let Some(why) = problem {
                unusable.get_or_insert(Denial::Unusable {
                    grant: g.id().to_string(),
                    why,
                });
                continue;
            }
            let rank = (g.claims.uses.is_some(), g.exp);
            if best.as_ref().is_none_or(|(_, r)| rank < *r) {
                best = Some((
                    Allowed {
                        grant: index,
                        path: path.clone(),
                        pinned: spec.pin.is_some(),
                    },
                    rank,
                ));
            }
            break;
        }
    }
    if let Some((allowed, _)) = best {
        return Ok(allowed);
    }
    Err(unusable
        .or(other_run_as)
        .unwrap_or(Denial::NoGrant { invalid }))
}

impl Denial {
    /// Short text for the syslog line ("command not allowed: …").
    pub fn log_text(&self) -> String {
        match self {
            Denial::NoGrant { .. } => "no grant".to_string(),
            Denial::OtherRunAs { run_as, .. } => {
                format!("grant is for another run-as user ({run_as})")
            }
            Denial::Unusable { why, .. } => why.clone(),
        }
    }

    pub fn grant(&self) -> Option<&str> {
        match self {
            Denial::NoGrant { .. } => None,
            Denial::OtherRunAs { grant, .. } | Denial::Unusable { grant, .. } => Some(grant),
        }
    }
}

/// Quote a word for a shell command line the user can copy.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.,:=+@%".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests;
