//! /etc/jitsudo/jitsudod.toml, parsed strictly: unknown keys, bad values and missing
//! files are errors naming the file and line.
//!
//! ```toml
//! listen = "0.0.0.0:8443"
//! database = "sqlite:///var/lib/jitsudod/jitsudod.db"   # or postgres://…
//! policy = "/etc/jitsudo/policy.toml"
//! issuer = "approvals.example.internal"                 # iss of grants (default: jitsudod)
//! active_key = "approvals-2026"                         # the key that signs new grants
//! replica = "approvals-a"                               # this process among several on one
//!                                                       # database (default: the host name)
//!
//! [tls]                                                 # required unless listen is loopback
//! cert = "/etc/jitsudo/tls/cert.pem"
//! key = "/etc/jitsudo/tls/key.pem"
//!
//! [[signing_key]]                                       # one per key file; rotation: add a
//! file = "/etc/jitsudo/keys/approvals-2026.key"         # key, pin it on hosts, then switch
//!                                                       # active_key
//! [limits]
//! host_requests_per_minute = 600
//! user_requests_per_minute = 30
//! max_body_bytes = 65536
//! max_recording_bytes = 67108864                        # per session recording (64 MiB)
//! max_connections = 8192                                # open at once; more are closed
//! header_timeout_seconds = 10                           # to send a request's headers
//! body_timeout_seconds = 30                             # to send its body
//!
//! [recordings]
//! keep = "90d"                # delete stored recordings this long after they arrived
//!                             # (default: keep them forever)
//! [slack]                                               # Approve/Deny buttons in Slack
//! signing_secret_file = "/etc/jitsudo/slack.secret"     # the Slack app's signing secret
//! page_url = "https://approvals.example.internal/ui"    # linked when chat votes are off
//!
//! [oidc]                                                # approvers sign in to the web page
//! issuer = "https://idp.example.com"                    # through the identity provider
//! client_id = "jitsudod"
//! client_secret_file = "/etc/jitsudo/oidc.secret"       # root-only, as the Slack secret
//! redirect_url = "https://approvals.example.internal/ui/oidc/callback"
//! username_claim = "preferred_username"                 # the default
//! groups_claim = "groups"                               # the default
//! acr_values = "mfa"                                    # asked for at step-up; an ID token
//!                                                       # whose acr equals it shows MFA
//! cli_client_id = "jitsudoctl"                          # public client: jitsudoctl login
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jitsudo_core::config::line_of;
use jitsudo_core::grant::keys::SecretKey;
use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

pub const DEFAULT_CONFIG: &str = "/etc/jitsudo/jitsudod.toml";

pub struct ServiceConfig {
    pub path: PathBuf,
    pub listen: SocketAddr,
    pub database: String,
    pub policy: PathBuf,
    pub issuer: String,
    pub tls: Option<Tls>,
    /// All configured keys; `active` indexes the one that signs.
    pub keys: Vec<SecretKey>,
    pub active: usize,
    pub limits: Limits,
    /// `[[webhook]]` tables (see `webhook.rs`).
    pub webhooks: Vec<crate::webhook::Webhook>,
    /// `[recordings] keep`: stored recordings older than this (since they were received)
    /// are deleted by the retention sweep. None: kept forever.
    pub recordings_keep: Option<std::time::Duration>,
    /// This replica's name in the audit trail and in /metrics (default: the host name).
    pub replica: String,
    /// `[slack]`: votes from Slack's buttons (see `service::slack`); `None` refuses them.
    pub slack: Option<Slack>,
    /// `[oidc]`: sign-in to the web page through the identity provider (see `oidc`).
    pub oidc: Option<Oidc>,
}

pub struct Oidc {
    /// The provider's issuer URL, exactly as its ID tokens' `iss`.
    pub issuer: String,
    pub client_id: String,
    /// The client secret, from a file only its owner can read.
    pub client_secret: Zeroizing<Vec<u8>>,
    /// This service's callback, as registered with the provider.
    pub redirect_url: String,
    pub username_claim: String,
    pub groups_claim: String,
    /// Asked for when an approval needs MFA; an ID token whose `acr` equals it shows MFA.
    pub acr_values: Option<String>,
    /// The provider's public client for `jitsudoctl login` (the device authorization
    /// grant); its ID tokens are accepted as API bearer tokens. None: no CLI sign-in.
    pub cli_client_id: Option<String>,
}

/// This machine's host name (the kernel's), or `localhost` when it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A replica name: 1-64 letters, digits and `.-_:`, so that it can stand as a
/// Prometheus label value and in a log line as it is.
fn valid_replica(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
}

pub struct Slack {
    /// The Slack app's signing secret, from a file only its owner can read.
    pub signing_secret: Zeroizing<Vec<u8>>,
    pub page_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub host_per_minute: u32,
    pub user_per_minute: u32,
    pub max_body_bytes: usize,
    /// The most one uploaded session recording may hold, all its files together.
    pub max_recording_bytes: u64,
    /// Client connections open at once (see `listener`).
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and then its body.
    pub header_timeout_seconds: u64,
    pub body_timeout_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            host_per_minute: 600,
            user_per_minute: 30,
            max_body_bytes: 64 * 1024,
            max_recording_bytes: 64 << 20,
            max_connections: 8192,
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
        }
    }
}

impl ServiceConfig {
    pub fn active_key(&self) -> &SecretKey {
        &self.keys[self.active]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Spanned<String>,
    database: Spanned<String>,
    policy: Spanned<String>,
    issuer: Option<Spanned<String>>,
    active_key: Spanned<String>,
    replica: Option<Spanned<String>>,
    tls: Option<RawTls>,
    #[serde(default)]
    signing_key: Vec<RawKey>,
    limits: Option<RawLimits>,
    #[serde(default)]
    webhook: Vec<crate::webhook::RawWebhook>,
    recordings: Option<RawRecordings>,
    slack: Option<RawSlack>,
    oidc: Option<RawOidc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: Spanned<String>,
    client_id: Spanned<String>,
    client_secret_file: Spanned<String>,
    redirect_url: Spanned<String>,
    username_claim: Option<Spanned<String>>,
    groups_claim: Option<Spanned<String>>,
    acr_values: Option<Spanned<String>>,
    cli_client_id: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecordings {
    keep: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    signing_secret_file: Spanned<String>,
    page_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    file: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    host_requests_per_minute: Option<Spanned<i64>>,
    user_requests_per_minute: Option<Spanned<i64>>,
    max_body_bytes: Option<Spanned<i64>>,
    max_recording_bytes: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    header_timeout_seconds: Option<Spanned<i64>>,
    body_timeout_seconds: Option<Spanned<i64>>,
}

struct At<'a> {
    file: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        what: impl std::fmt::Display,
    ) -> Result<T, String> {
        Err(format!(
            "{}:{}: {what}",
            self.file.display(),
            line_of(self.text, span.start)
        ))
    }

    /// Relative paths are taken relative to the config file's directory.
    fn path(&self, v: &Spanned<String>) -> PathBuf {
        let p = PathBuf::from(v.get_ref());
        if p.is_absolute() {
            p
        } else {
            self.file.parent().unwrap_or(Path::new("/")).join(p)
        }
    }
}

pub fn load(path: &Path) -> Result<ServiceConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(path, &text, &|p| read_key_file(p))
}

/// Parse config text; `read_key` loads a signing key file (a parameter for tests).
pub fn parse(
    file: &Path,
    text: &str,
    read_key: &dyn Fn(&Path) -> Result<SecretKey, String>,
) -> Result<ServiceConfig, String> {
    let at = At { file, text };
    let raw: Raw = toml::from_str(text).map_err(|e| match e.span() {
        Some(s) => format!(
            "{}:{}: {}",
            file.display(),
            line_of(text, s.start),
            e.message().trim()
        ),
        None => format!("{}: {}", file.display(), e.message().trim()),
    })?;
    let listen: SocketAddr = match raw.listen.get_ref().parse() {
        Ok(a) => a,
        Err(_) => {
            return at.err(
                raw.listen.span(),
                format!("listen {:?} is not ADDRESS:PORT", raw.listen.get_ref()),
            )
        }
    };
    let tls = raw.tls.as_ref().map(|t| Tls {
        cert: at.path(&t.cert),
        key: at.path(&t.key),
    });
    if tls.is_none() && !listen.ip().is_loopback() {
        return at.err(
            raw.listen.span(),
            format!("listen {listen} is not a loopback address, so a [tls] table with cert and key is required (plain HTTP is only allowed on loopback)"),
        );
    }
    let db = raw.database.get_ref();
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        return at.err(
            raw.database.span(),
            "database must be sqlite:///PATH or postgres://…",
        );
    }
    if raw.signing_key.is_empty() {
        return at.err(raw.active_key.span(), "no [[signing_key]] is configured");
    }
    let mut keys: Vec<SecretKey> = Vec::new();
    for k in &raw.signing_key {
        let key = read_key(&at.path(&k.file)).or_else(|e| at.err(k.file.span(), e))?;
        if keys.iter().any(|other| other.id == key.id) {
            return at.err(
                k.file.span(),
                format!("two signing keys have the id {:?}", key.id),
            );
        }
        keys.push(key);
    }
    let Some(active) = keys.iter().position(|k| &k.id == raw.active_key.get_ref()) else {
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        return at.err(
            raw.active_key.span(),
            format!(
                "active_key {:?} is not the id of any [[signing_key]] ({})",
                raw.active_key.get_ref(),
                ids.join(", ")
            ),
        );
    };
    let issuer = match &raw.issuer {
        None => "jitsudod".to_string(),
        Some(i) if i.get_ref().is_empty() || i.get_ref().len() > 200 => {
            return at.err(i.span(), "issuer must be 1-200 characters")
        }
        Some(i) => i.get_ref().clone(),
    };
    let replica = match &raw.replica {
        None => Some(host_name())
            .filter(|h| valid_replica(h))
            .unwrap_or_else(|| "jitsudod".to_string()),
        Some(r) if !valid_replica(r.get_ref()) => {
            return at.err(
                r.span(),
                "replica must be 1-64 letters, digits, '.', '-', '_' or ':'",
            )
        }
        Some(r) => r.get_ref().clone(),
    };
    let mut limits = Limits::default();
    if let Some(l) = &raw.limits {
        let num = |v: &Option<Spanned<i64>>,
                   key: &str,
                   min: i64,
                   max: i64|
         -> Result<Option<i64>, String> {
            match v {
                None => Ok(None),
                Some(n) if (min..=max).contains(n.get_ref()) => Ok(Some(*n.get_ref())),
                Some(n) => at.err(
                    n.span(),
                    format!("limits.{key} must be between {min} and {max}"),
                ),
            }
        };
        if let Some(n) = num(
            &l.host_requests_per_minute,
            "host_requests_per_minute",
            1,
            10_000_000,
        )? {
            limits.host_per_minute = n as u32;
        }
        if let Some(n) = num(
            &l.user_requests_per_minute,
            "user_requests_per_minute",
            1,
            10_000_000,
        )? {
            limits.user_per_minute = n as u32;
        }
        if let Some(n) = num(&l.max_body_bytes, "max_body_bytes", 1024, 16 << 20)? {
            limits.max_body_bytes = n as usize;
        }
        if let Some(n) = num(&l.max_recording_bytes, "max_recording_bytes", 1024, 1 << 40)? {
            limits.max_recording_bytes = n as u64;
        }
        if let Some(n) = num(&l.max_connections, "max_connections", 16, 1 << 20)? {
            limits.max_connections = n as usize;
        }
        if let Some(n) = num(&l.header_timeout_seconds, "header_timeout_seconds", 1, 600)? {
            limits.header_timeout_seconds = n as u64;
        }
        if let Some(n) = num(&l.body_timeout_seconds, "body_timeout_seconds", 1, 3600)? {
            limits.body_timeout_seconds = n as u64;
        }
    }
    let recordings_keep = match raw.recordings.as_ref().and_then(|r| r.keep.as_ref()) {
        None => None,
        Some(k) => match jitsudo_core::config::parse_duration(k.get_ref()) {
            Ok(d) if d.as_secs() >= 1 => Some(d),
            Ok(_) => return at.err(k.span(), "recordings.keep must be at least 1s"),
            Err(e) => return at.err(k.span(), format!("recordings.keep: {e}")),
        },
    };
    let mut webhooks = Vec::new();
    for w in &raw.webhook {
        let err = |span: std::ops::Range<usize>, m: String| {
            format!("{}:{}: {m}", file.display(), line_of(text, span.start))
        };
        webhooks.push(crate::webhook::from_raw(w, &err, &|v| at.path(v))?);
    }
    let slack = match &raw.slack {
        None => None,
        Some(s) => {
            let path = at.path(&s.signing_secret_file);
            let signing_secret = read_secret_file(&path, "Slack signing secret")
                .or_else(|e| at.err(s.signing_secret_file.span(), e))?;
            let page_url = match &s.page_url {
                None => None,
                Some(u) => {
                    let v = u.get_ref();
                    if !(v.starts_with("https://") || v.starts_with("http://"))
                        || v.chars()
                            .any(|c| c.is_whitespace() || c.is_control() || "<>|".contains(c))
                    {
                        return at.err(u.span(), "slack.page_url must be an https:// URL");
                    }
                    Some(v.clone())
                }
            };
            Some(Slack {
                signing_secret,
                page_url,
            })
        }
    };
    if let Some(s) = &slack {
        for w in &mut webhooks {
            w.page_url = s.page_url.clone();
        }
    }
    let oidc = match &raw.oidc {
        None => None,
        Some(o) => Some(oidc_from_raw(&at, o)?),
    };
    Ok(ServiceConfig {
        path: file.to_path_buf(),
        listen,
        database: db.clone(),
        policy: at.path(&raw.policy),
        issuer,
        tls,
        keys,
        active,
        limits,
        webhooks,
        recordings_keep,
        replica,
        slack,
        oidc,
    })
}

/// A URL the service talks to or sends browsers to: http(s), no whitespace or control
/// characters. Plain http only for a loopback host (a test provider).
fn web_url(v: &str) -> bool {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            v.strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
        });
    (v.starts_with("https://") || loopback)
        && v.len() <= 2000
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn oidc_from_raw(at: &At, o: &RawOidc) -> Result<Oidc, String> {
    let issuer = o.issuer.get_ref().as_str();
    if !web_url(issuer) {
        return at.err(
            o.issuer.span(),
            "oidc.issuer must be an https:// URL (http:// only on loopback)",
        );
    }
    if !web_url(o.redirect_url.get_ref())
        || !o.redirect_url.get_ref().ends_with("/ui/oidc/callback")
    {
        return at.err(
            o.redirect_url.span(),
            "oidc.redirect_url must be this service's https://HOST/ui/oidc/callback",
        );
    }
    let client_id = o.client_id.get_ref();
    if client_id.is_empty() || client_id.len() > 200 || client_id.chars().any(char::is_control) {
        return at.err(
            o.client_id.span(),
            "oidc.client_id must be 1-200 characters",
        );
    }
    let claim = |v: &Option<Spanned<String>>, key: &str, default: &str| match v {
        None => Ok(default.to_string()),
        Some(c)
            if (1..=100).contains(&c.get_ref().len())
                && c.get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b)) =>
        {
            Ok(c.get_ref().clone())
        }
        Some(c) => at.err(c.span(), format!("oidc.{key} must be a claim name")),
    };
    let username_claim = claim(&o.username_claim, "username_claim", "preferred_username")?;
    let groups_claim = claim(&o.groups_claim, "groups_claim", "groups")?;
    let acr_values = match &o.acr_values {
        None => None,
        Some(a)
            if (1..=200).contains(&a.get_ref().len())
                && !a.get_ref().chars().any(|c| c.is_control()) =>
        {
            Some(a.get_ref().clone())
        }
        Some(a) => return at.err(a.span(), "oidc.acr_values must be 1-200 characters"),
    };
    let cli_client_id = match &o.cli_client_id {
        None => None,
        Some(c) if c.get_ref() == client_id => {
            return at.err(
                c.span(),
                "oidc.cli_client_id must be a client of its own (a public one), not client_id",
            )
        }
        Some(c)
            if (1..=200).contains(&c.get_ref().len())
                && !c.get_ref().chars().any(char::is_control) =>
        {
            Some(c.get_ref().clone())
        }
        Some(c) => return at.err(c.span(), "oidc.cli_client_id must be 1-200 characters"),
    };
    let path = at.path(&o.client_secret_file);
    let client_secret = read_secret_file(&path, "OIDC client secret")
        .or_else(|e| at.err(o.client_secret_file.span(), e))?;
    Ok(Oidc {
        issuer: issuer.to_string(),
        client_id: client_id.clone(),
        client_secret,
        redirect_url: o.redirect_url.get_ref().clone(),
        username_claim,
        groups_claim,
        acr_values,
        cli_client_id,
    })
}

/// A secret file (the Slack signing secret): owned by root or by the service's own
/// user, readable by its owner only, at most 4 KiB; its text, trimmed.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot open {what} {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{what} {} is not a regular file", path.display()));
    }
    // /proc/self belongs to this process's effective uid: the service's own user may own
    // the file (the packages run jitsudod as `jitsudod`), as may root.
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "{what} {} is owned by uid {}, not root or the service's user; fix with: chown root {}",
            path.display(),
            meta.uid(),
            path.display()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {} is accessible by group or others (mode {:o}); fix with: chmod 600 {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let secret = Zeroizing::new(text.trim().as_bytes().to_vec());
    if secret.len() < 16 {
        return Err(format!(
            "{what} {} holds fewer than 16 bytes; paste the app's signing secret",
            path.display()
        ));
    }
    Ok(secret)
}

/// A signing key file must not be readable by anyone but its owner.
pub fn read_key_file(path: &Path) -> Result<SecretKey, String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot open signing key {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "signing key {} is accessible by group or others (mode {:o}); fix with: chmod 600 {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    SecretKey::from_file_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &Path) -> Result<SecretKey, String> {
        let name = p.file_stem().unwrap().to_str().unwrap();
        if name == "missing" {
            return Err(format!("cannot open signing key {}", p.display()));
        }
        SecretKey::generate(name)
    }

    fn parse_str(text: &str) -> Result<ServiceConfig, String> {
        parse(Path::new("/etc/jitsudo/jitsudod.toml"), text, &keys)
    }

    const BASE: &str = "listen = \"127.0.0.1:8080\"\ndatabase = \"sqlite:///tmp/x.db\"\npolicy = \"policy.toml\"\nactive_key = \"k2\"\n[[signing_key]]\nfile = \"keys/k1.key\"\n[[signing_key]]\nfile = \"/keys/k2.key\"\n";

    #[test]
    fn minimal_loopback_config() {
        let c = parse_str(BASE).unwrap();
        assert_eq!(c.active_key().id, "k2");
        assert_eq!(c.keys.len(), 2);
        assert_eq!(c.policy, Path::new("/etc/jitsudo/policy.toml"));
        assert_eq!(c.issuer, "jitsudod");
        assert!(c.tls.is_none());
        assert_eq!(c.limits.user_per_minute, 30);
    }

    #[test]
    fn plain_http_refused_off_loopback() {
        let e = parse_str(&BASE.replace("127.0.0.1:8080", "0.0.0.0:8080"))
            .err()
            .unwrap();
        assert!(
            e.starts_with("/etc/jitsudo/jitsudod.toml:1:") && e.contains("[tls]"),
            "{e}"
        );
        let ok = format!(
            "{}[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
            BASE.replace("127.0.0.1:8080", "0.0.0.0:8080")
        );
        assert!(parse_str(&ok).is_ok());
    }

    #[test]
    fn errors_name_lines() {
        let e = parse_str(&BASE.replace("active_key = \"k2\"", "active_key = \"k9\""))
            .err()
            .unwrap();
        assert!(e.contains(":4:") && e.contains("k1, k2"), "{e}");
        let e = parse_str(&format!("{BASE}colour = 1\n")).err().unwrap();
        assert!(e.contains("colour"), "{e}");
        let e = parse_str(&BASE.replace("keys/k1.key", "missing.key"))
            .err()
            .unwrap();
        assert!(e.contains(":6:") && e.contains("missing"), "{e}");
        let e = parse_str(&BASE.replace("sqlite:///tmp/x.db", "mysql://x"))
            .err()
            .unwrap();
        assert!(e.contains(":2:"), "{e}");
        let e = parse_str(&format!("{BASE}[limits]\nmax_body_bytes = 1\n"))
            .err()
            .unwrap();
        assert!(e.contains(":10:"), "{e}");
        let e = parse_str(&BASE.replace("/keys/k2.key", "/other/k1.key"))
            .err()
            .unwrap();
        assert!(e.contains(":8:") && e.contains("two signing keys"), "{e}");
    }

    #[test]
    fn recordings_keep_is_a_duration_and_defaults_to_forever() {
        assert_eq!(parse_str(BASE).unwrap().recordings_keep, None);
        let c = parse_str(&format!("{BASE}[recordings]\nkeep = \"90d\"\n")).unwrap();
        assert_eq!(
            c.recordings_keep,
            Some(std::time::Duration::from_secs(90 * 86400))
        );
        for bad in ["\"0s\"", "\"soon\"", "90"] {
            let e = parse_str(&format!("{BASE}[recordings]\nkeep = {bad}\n"))
                .err()
                .unwrap();
            assert!(e.contains(":10:"), "{bad}: {e}");
        }
        let e = parse_str(&format!("{BASE}[recordings]\nage = \"1d\"\n"))
            .err()
            .unwrap();
        assert!(e.contains("age"), "{e}");
    }

    #[test]
    fn oidc_parses_strictly_with_lines() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("jitsudod-oidc-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("oidc.secret");
        std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = format!(
            "{BASE}[oidc]\nissuer = \"https://idp.example.com/realms/corp\"\nclient_id = \"jitsudod\"\nclient_secret_file = \"{}\"\nredirect_url = \"https://approvals.example/ui/oidc/callback\"\n",
            secret.display()
        );
        let c = parse_str(&ok).unwrap();
        let o = c.oidc.as_ref().unwrap();
        assert_eq!(o.issuer, "https://idp.example.com/realms/corp");
        assert_eq!(
            (o.username_claim.as_str(), o.groups_claim.as_str()),
            ("preferred_username", "groups")
        );
        assert_eq!(&o.client_secret[..], b"0123456789abcdef0123");
        assert_eq!(o.acr_values, None);
        let cases = [
            (
                "https://idp.example.com/realms/corp",
                "http://idp.example.com",
                ":10:",
                "https://",
            ),
            (
                "https://approvals.example/ui/oidc/callback",
                "https://approvals.example/cb",
                ":13:",
                "/ui/oidc/callback",
            ),
            (
                "client_id = \"jitsudod\"",
                "client_id = \"\"",
                ":11:",
                "client_id",
            ),
            ("client_id", "clientid", ":11:", "clientid"),
        ];
        for (from, to, line, needle) in cases {
            let e = parse_str(&ok.replace(from, to)).err().unwrap();
            assert!(
                e.contains(line) && e.contains(needle),
                "{from} -> {to}: {e}"
            );
        }
        let with = |extra: &str| parse_str(&format!("{ok}{extra}"));
        assert_eq!(
            with("acr_values = \"mfa\"\nusername_claim = \"email\"\n")
                .unwrap()
                .oidc
                .unwrap()
                .username_claim,
            "email"
        );
        let e = with("groups_claim = \"a b\"\n").err().unwrap();
        assert!(e.contains(":14:") && e.contains("claim name"), "{e}");
        // Plain http only for a provider on loopback (a test provider).
        assert!(parse_str(&ok.replace(
            "https://idp.example.com/realms/corp",
            "http://127.0.0.1:9000"
        ))
        .is_ok());
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = parse_str(&ok).err().unwrap();
        assert!(e.contains(":12:") && e.contains("chmod 600"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn webhooks_parse_strictly() {
        let ok = format!(
            "{BASE}[[webhook]]\nurl = \"https://chat.example/hook\"\nsecret = \"0123456789abcdef\"\nformat = \"slack\"\nevents = [\"request.created\"]\n"
        );
        let c = parse_str(&ok).unwrap();
        assert_eq!(c.webhooks.len(), 1);
        assert_eq!(c.webhooks[0].events, vec!["request.created"]);
        let cases = [
            ("format = \"slack\"", "format = \"xml\"", ":12:", "xml"),
            (
                "[\"request.created\"]",
                "[\"request.eaten\"]",
                ":13:",
                "request.eaten",
            ),
            ("0123456789abcdef", "short", ":11:", "16 bytes"),
            ("https://chat.example/hook", "ftp://x", ":10:", "https://"),
            ("format", "colour", ":12:", "colour"),
        ];
        for (from, to, line, needle) in cases {
            let e = parse_str(&ok.replace(from, to)).err().unwrap();
            assert!(
                e.contains(line) && e.contains(needle),
                "{from} -> {to}: {e}"
            );
        }
        let e = parse_str(&ok.replace("secret = \"0123456789abcdef\"\n", ""))
            .err()
            .unwrap();
        assert!(e.contains(":10:") && e.contains("secret"), "{e}");
    }
}
