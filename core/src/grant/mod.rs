//! Grant tokens: PASETO v4.public (Ed25519) carrying who may run what, where, and when.
//!
//! The footer is `{"key":"<trusted key id>"}` so the host knows which pinned key to try;
//! the footer is covered by the signature. The implicit assertion `jitsudo-grant-v1`
//! binds every signature to this one purpose, so no other PASETO signed by the same key
//! (a revocation list, say) can be replayed as a grant.
#![forbid(unsafe_code)]

pub mod keys;
pub mod paseto;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::grant::keys::TrustedKey;
use crate::matcher::CommandSpec;
use keys::SecretKey;

pub const IMPLICIT_ASSERTION: &[u8] = b"jitsudo-grant-v1";
/// No honest grant comes near this; anything longer is refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;
const HEADER: &str = "v4.public.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Run commands through the setuid binary.
    Exec,
    /// Log in (checked by pam_jitsudo's account phase).
    Login,
    /// Edit the listed files with `jitsudo -e` (sudoedit semantics): `commands` are
    /// absolute file paths, never programs, and the editor runs as the caller.
    Edit,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Exec => "exec",
            Kind::Login => "login",
            Kind::Edit => "edit",
        })
    }
}

/// The signed claims, exactly as they appear in the token's JSON payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub jti: String,
    pub iss: String,
    pub sub: String,
    pub host: String,
    #[serde(default = "default_run_as")]
    pub run_as: String,
    pub commands: Vec<String>,
    /// RFC 3339 times, as PASETO's registered claims are written.
    pub nbf: String,
    pub exp: String,
    pub iat: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    pub kind: Kind,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub approved_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The grant ends when the login session that used it closes: pam_jitsudo drops it
    /// from the user's cache at session close. Left out of the token when false, so
    /// grants without it are unchanged; a host too old to know the claim refuses it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session_bound: bool,
    /// The command may execute other programs (a shell escape, `find -exec`, a pager).
    /// When false, every exec after the granted program's own fails for the whole
    /// process tree. Left out of the token when false, like `session_bound`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// Every run under this grant is recorded (/var/log/jitsudo-io, sudo's I/O log
    /// format). Left out of the token when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
    /// The ticket id the request named (a policy rule's `ticket`), for the record:
    /// shown by `jitsudo -l`, logged with the grant. Left out when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The id of the grant this one replaces (`jitsudo --extend`): a command running
    /// under that grant may continue under this one. Left out when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

fn default_run_as() -> String {
    "root".to_string()
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Footer {
    key: String,
}

/// A token whose signature, key and claims have been checked.
#[derive(Clone, Debug)]
pub struct Grant {
    pub claims: Claims,
    pub commands: Vec<CommandSpec>,
    pub nbf: i64,
    pub exp: i64,
    pub iat: i64,
    pub key_id: String,
    pub token: String,
}

/// Why a token was not accepted. Each message says which check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed(String),
    UnknownKey(String),
    BadSignature(String),
    LifetimeTooLong { lifetime: u64, max: u64 },
    WrongHost { grant: String, here: String },
    WrongUser { grant: String, caller: String },
    Expired { ago: u64 },
    NotYetValid { starts_in: u64 },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(why) => write!(f, "malformed grant: {why}"),
            Rejection::UnknownKey(id) => write!(
                f,
                "grant is signed by unknown key id \"{id}\" (not a [[trusted_key]] in jitsudo.toml)"
            ),
            Rejection::BadSignature(id) => write!(f, "grant signature invalid for key \"{id}\""),
            Rejection::LifetimeTooLong { lifetime, max } => write!(
                f,
                "grant lifetime {} exceeds this host's max_grant_lifetime of {}",
                human_duration(*lifetime),
                human_duration(*max)
            ),
            Rejection::WrongHost { grant, here } => {
                write!(f, "grant is for host \"{grant}\", this host is \"{here}\"")
            }
            Rejection::WrongUser { grant, caller } => {
                write!(f, "grant is for user \"{grant}\", not \"{caller}\"")
            }
            Rejection::Expired { ago } => write!(f, "grant expired {} ago", human_duration(*ago)),
            Rejection::NotYetValid { starts_in } => {
                write!(
                    f,
                    "grant is not yet valid (starts in {})",
                    human_duration(*starts_in)
                )
            }
        }
    }
}

/// `3m`, `2h 5m`, `45s`: short and readable in one-line errors.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A POSIX-ish portable user name, as useradd accepts them.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || b == b'$')
}

/// A ticket id as requests, grants and log lines carry it: 1-64 printable ASCII
/// characters without spaces, so it needs no quoting anywhere it is shown.
pub fn valid_ticket(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{id:?} is not a ticket id (1-64 printable ASCII characters, no spaces)"
        ));
    }
    Ok(())
}

pub fn valid_grant_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub fn format_time(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = humantime::parse_rfc3339(text).map_err(|e| format!("bad time {text:?}: {e}"))?;
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| format!("time {text:?} is before 1970"))
}

/// Explain why a string is not a v4.public token, catching the usual confusions.
fn classify_format(token: &str) -> Option<String> {
    if token.starts_with(HEADER) {
        return None;
    }
    Some(if token.starts_with("v4.local.") {
        "v4.local (encrypted) tokens are not accepted; grants are v4.public".into()
    } else if let Some(v) = ["v1.", "v2.", "v3."]
        .iter()
        .find(|v| token.starts_with(**v))
    {
        format!(
            "PASETO version {} is not accepted; grants are v4.public",
            &v[1..2]
        )
    } else if token.starts_with("eyJ") {
        "this looks like a JWT; grants are PASETO v4.public tokens".into()
    } else {
        "not a PASETO v4.public token (it must start with \"v4.public.\")".into()
    })
}

/// Verify a token's format, key id, signature and claims. Binding (host, user) and the
/// time window are checked separately, because import and use treat them differently.
pub fn verify(
    token: &str,
    trusted: &[TrustedKey],
    max_lifetime: Duration,
) -> Result<Grant, Rejection> {
    verify_cached(token, trusted, max_lifetime, None)
}

/// The mark `jitsudo` stores beside a token it verified: SHA-256 over the token and the
/// key (id and public key) whose signature it checked.
pub fn verification_mark(token: &str, key: &TrustedKey) -> String {
    let mut h = Sha256::new();
    h.update(b"jitsudo-verified-v1\n");
    h.update(token.trim().as_bytes());
    h.update(b"\n");
    h.update(key.id.as_bytes());
    h.update(b"\n");
    h.update(key.key.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The mark for a grant that was just verified against `trusted`.
pub fn mark_for(grant: &Grant, trusted: &[TrustedKey]) -> Option<String> {
    trusted
        .iter()
        .find(|k| k.id == grant.key_id)
        .map(|k| verification_mark(&grant.token, k))
}

/// `verify`, except that the signature check is skipped when `mark` shows that this
/// exact token was verified before against the key this config still trusts under the
/// same id. The mark lives in the root-only grant cache, written only after a full
/// verification; a token changed, planted without its mark, or signed by a key since
/// removed or replaced is verified in full (or refused) as usual. Everything else —
/// format, key id, claims, lifetime — is checked every time.
pub fn verify_cached(
    token: &str,
    trusted: &[TrustedKey],
    max_lifetime: Duration,
    mark: Option<&str>,
) -> Result<Grant, Rejection> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed(format!(
            "token is {} bytes, the limit is {MAX_TOKEN_BYTES}",
            token.len()
        )));
    }
    if let Some(why) = classify_format(token) {
        return Err(Rejection::Malformed(why));
    }
    let untrusted = paseto::Untrusted::parse(token)
        .map_err(|e| Rejection::Malformed(format!("bad token encoding: {e}")))?;
    let footer: Footer = serde_json::from_slice(&untrusted.footer).map_err(|_| {
        Rejection::Malformed("the footer does not name a signing key ({\"key\":\"…\"})".into())
    })?;
    let key = trusted
        .iter()
        .find(|k| k.id == footer.key)
        .ok_or_else(|| Rejection::UnknownKey(footer.key.clone()))?;
    let message = &untrusted.message[..];
    let known = mark.is_some_and(|m| m == verification_mark(token, key));
    if !known && !untrusted.verifies(key.key.as_bytes(), IMPLICIT_ASSERTION) {
        return Err(Rejection::BadSignature(footer.key.clone()));
    }

    // From here on the payload is authentic: errors are the signer's, not an attacker's.
    let claims: Claims = serde_json::from_slice(message)
        .map_err(|e| Rejection::Malformed(format!("claims: {e}")))?;
    let grant = Grant::from_claims(claims, footer.key, token.to_string())?;
    let lifetime = (grant.exp - grant.nbf).max(0) as u64;
    if lifetime > max_lifetime.as_secs() {
        return Err(Rejection::LifetimeTooLong {
            lifetime,
            max: max_lifetime.as_secs(),
        });
    }
    Ok(grant)
}

/// The files of an edit grant, each an absolute path in normal form (see
/// [`check_edit_path`](crate::matcher::check_edit_path)), as specs with no arguments: a
/// path then names the file for `jitsudo -e`, and `jitsudo FILE` finds the grant but is
/// refused because it is not an exec grant.
fn edit_files(claims: &Claims) -> Result<Vec<CommandSpec>, String> {
    if claims.commands.is_empty() {
        return Err("an edit grant must list at least one file".into());
    }
    // The editor runs as the caller and the file is written back by root, keeping its
    // owner: there is no other user to act as.
    if claims.run_as != "root" {
        return Err(format!(
            "an edit grant has no run_as user (got {:?}); files are written back by root",
            claims.run_as
        ));
    }
    claims
        .commands
        .iter()
        .map(|path| {
            crate::matcher::check_edit_path(path).map_err(|e| format!("file {path:?}: {e}"))?;
            Ok(CommandSpec {
                pin: None,
                path: path.clone(),
                args: crate::matcher::ArgRule::None,
            })
        })
        .collect()
}

impl Grant {
    fn from_claims(claims: Claims, key_id: String, token: String) -> Result<Grant, Rejection> {
        let bad = |what: String| Rejection::Malformed(what);
        if !valid_grant_id(&claims.jti) {
            return Err(bad("jti must be 1-64 letters, digits or '-'".into()));
        }
        if !valid_user_name(&claims.sub) {
            return Err(bad(format!(
                "sub {:?} is not a valid user name",
                claims.sub
            )));
        }
        if !valid_user_name(&claims.run_as) {
            return Err(bad(format!(
                "run_as {:?} is not a valid user name",
                claims.run_as
            )));
        }
        if claims.host.is_empty() {
            return Err(bad("host is empty".into()));
        }
        if claims.uses == Some(0) {
            return Err(bad("uses = 0 would allow nothing".into()));
        }
        if let Some(t) = &claims.ticket {
            valid_ticket(t).map_err(|e| bad(format!("ticket: {e}")))?;
        }
        if let Some(old) = &claims.extends {
            if !valid_grant_id(old) || *old == claims.jti {
                return Err(bad("extends must name another grant id".into()));
            }
        }
        let commands = match claims.kind {
            Kind::Exec if claims.commands.is_empty() => {
                return Err(bad("an exec grant must list at least one command".into()))
            }
            Kind::Edit => edit_files(&claims).map_err(bad)?,
            _ => claims
                .commands
                .iter()
                .map(|c| CommandSpec::parse(c).map_err(|e| bad(format!("command {c:?}: {e}"))))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let nbf = parse_time(&claims.nbf).map_err(bad)?;
        let exp = parse_time(&claims.exp).map_err(bad)?;
        let iat = parse_time(&claims.iat).map_err(bad)?;
        if exp <= nbf {
            return Err(bad("exp is not after nbf".into()));
        }
        Ok(Grant {
            claims,
            commands,
            nbf,
            exp,
            iat,
            key_id,
            token,
        })
    }

    pub fn id(&self) -> &str {
        &self.claims.jti
    }

    /// Is this grant for this host and this user?
    pub fn check_binding(&self, host: &str, user: &str) -> Result<(), Rejection> {
        if self.claims.host != host {
            return Err(Rejection::WrongHost {
                grant: self.claims.host.clone(),
                here: host.to_string(),
            });
        }
        if self.claims.sub != user {
            return Err(Rejection::WrongUser {
                grant: self.claims.sub.clone(),
                caller: user.to_string(),
            });
        }
        Ok(())
    }

    pub fn check_not_expired(&self, now: i64, skew: Duration) -> Result<(), Rejection> {
        let skew = skew.as_secs() as i64;
        if now - skew >= self.exp {
            return Err(Rejection::Expired {
                ago: (now - self.exp).max(0) as u64,
            });
        }
        Ok(())
    }

    /// Inside [nbf - skew, exp + skew)?
    pub fn check_window(&self, now: i64, skew: Duration) -> Result<(), Rejection> {
        self.check_not_expired(now, skew)?;
        if now + (skew.as_secs() as i64) < self.nbf {
            return Err(Rejection::NotYetValid {
                starts_in: (self.nbf - now) as u64,
            });
        }
        Ok(())
    }
}

/// Sign claims with a secret key. The claims are checked the way a host would check
/// them, so a minted token is never one that every host would refuse.
pub fn sign(claims: &Claims, key: &SecretKey) -> Result<String, String> {
    Grant::from_claims(claims.clone(), key.id.clone(), String::new()).map_err(|e| e.to_string())?;
    let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let footer = serde_json::to_vec(&Footer {
        key: key.id.clone(),
    })
    .map_err(|e| e.to_string())?;
    Ok(paseto::sign(
        &key.key,
        &payload,
        &footer,
        IMPLICIT_ASSERTION,
    ))
}

/// A fresh random grant id: 128 bits as 32 hex digits.
pub fn new_grant_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
