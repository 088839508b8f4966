//! The judgement: given the caller's verified grants and what they asked to run, allow
//! one grant or explain the refusal. Pure apart from the pin check the caller supplies.
//!
//! Selection itself (kind, binding, window, revocation, uses, ranking) is
//! `admission::select`, shared with the PAM module; this is what an exec grant adds:
//! the command, the run-as user and the pin.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::time::Duration;

use crate::admission::{self, Names, Request, RevocationList, Terms, Unchosen};
use crate::grant::{Grant, Kind, Rejection};

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

/// An exec grant names a command when one of its specs allows one of the candidate
/// paths with these arguments, as the run-as user asked.
struct Exec<'a, 'p> {
    ask: &'a Ask<'a>,
    pin_check: &'a mut PinCheck<'p>,
}

impl Request for Exec<'_, '_> {
    /// The candidate paths the grant allows, best first, with their specs' pins.
    type Found = Vec<(String, Option<[u8; 32]>)>;
    type Chosen = (String, bool);

    fn names(&mut self, g: &Grant) -> Names<Self::Found> {
        let found: Self::Found = self
            .ask
            .paths
            .iter()
            .filter_map(|path| {
                g.commands
                    .iter()
                    .find(|s| s.allows(path, self.ask.args))
                    .map(|spec| (path.clone(), spec.pin))
            })
            .collect();
        if found.is_empty() {
            Names::No
        } else if g.claims.run_as != self.ask.run_as {
            Names::OtherRunAs(g.claims.run_as.clone())
        } else {
            Names::Yes(found)
        }
    }

    /// The first candidate path that is unpinned or whose bytes match the pin.
    fn confirm(&mut self, _g: &Grant, found: Self::Found) -> Result<(String, bool), String> {
        let mut first_mismatch = None;
        for (path, pin) in found {
            let Some(pin) = pin else {
                return Ok((path, false));
            };
            match (self.pin_check)(&pin, &path) {
                Ok(()) => return Ok((path, true)),
                Err(why) => {
                    first_mismatch.get_or_insert(why);
                }
            }
        }
        Err(first_mismatch.unwrap_or_else(|| "no candidate path".to_string()))
    }
}

/// Pick the exec grant to use (see `admission::select` for the order of preference).
pub fn decide(
    ask: &Ask<'_>,
    grants: &[(Grant, u32)],
    invalid: Vec<Rejection>,
    revoked: &RevocationList,
    now: i64,
    skew: Duration,
    pin_check: &mut PinCheck<'_>,
) -> Result<Allowed, Denial> {
    let terms = Terms {
        host: ask.host,
        user: ask.user,
        kind: Some(Kind::Exec),
        revoked,
        now,
        skew,
    };
    let mut request = Exec { ask, pin_check };
    match admission::select(grants, &terms, &mut request) {
        Ok(chosen) => {
            let (path, pinned) = chosen.chosen;
            Ok(Allowed {
                grant: chosen.index,
                path,
                pinned,
            })
        }
        Err(Unchosen::NoGrant) => Err(Denial::NoGrant { invalid }),
        Err(Unchosen::OtherRunAs { grant, run_as }) => Err(Denial::OtherRunAs { grant, run_as }),
        Err(Unchosen::Unusable { grant, why }) => Err(Denial::Unusable { grant, why }),
    }
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
