//! The host config, /etc/jitsudo/jitsudo.toml.
//!
//! Parsed strictly: an unknown key, a bad value or a duplicate key id is an error that
//! names the file, the line and the key, and the setuid binary then refuses to run.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::grant::keys::PublicKey;
// Defined with the keys (grant verification takes them), named here too because the
// config is where they are pinned.
pub use crate::grant::keys::TrustedKey;
use crate::secure_file;

/// Fixed location; never taken from the environment or a flag.
pub const CONFIG_PATH: &str = "/etc/jitsudo/jitsudo.toml";
/// Grant cache, use counters, clock mark, revocation list.
pub const STATE_DIR: &str = "/var/lib/jitsudo";

pub const DEFAULT_SECURE_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// `auth_timeout` when not set: as sudo's default `timestamp_timeout`.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Variables the command may inherit from the caller even with no `env_keep`.
pub const BUILTIN_ENV_KEEP: &[&str] = &["TERM", "COLORTERM", "LANG", "LANGUAGE", "LC_*"];

/// Variables that change how programs load code or run shells. They are never passed
/// on, whatever `env_keep` says; a config that asks for them is rejected.
pub const NEVER_KEEP: &[&str] = &[
    "LD_*",
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "CDPATH",
    "GLOBIGNORE",
    "PYTHON*",
    "PERL*",
    "PERLLIB",
    "RUBY*",
    "NODE_OPTIONS",
    "NODE_PATH",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "MALLOC_*",
    "GLIBC_TUNABLES",
    "TMPDIR",
    "JAVA_TOOL_OPTIONS",
    "JITSUDO_*",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "MAIL",
];

#[derive(Clone, Debug)]
pub struct HostConfig {
    pub host: String,
    /// The approval service's URLs, tried in order (failover); empty when none is set.
    pub services: Vec<String>,
    pub secure_path: Vec<PathBuf>,
    /// Built-in allow-list plus the config's `env_keep`.
    pub env_keep: Vec<String>,
    pub max_grant_lifetime: Duration,
    pub clock_skew: Duration,
    pub revocation_max_age: Option<Duration>,
    /// At the end of a grant's window (expiry or revocation) a running command gets
    /// SIGTERM, and SIGKILL this much later.
    pub end_grace: Duration,
    /// The command's terminal is warned this long before the window ends.
    pub end_warning: Duration,
    /// Confirm the caller through the PAM service `jitsudo` before a grant is used.
    pub authenticate: bool,
    /// How long a confirmation holds on one terminal in one login session; zero: always ask.
    pub auth_timeout: Duration,
    pub log: LogConfig,
    pub journal: JournalConfig,
    pub record: RecordConfig,
    pub trusted_keys: Vec<TrustedKey>,
}

/// `[record]`: session recordings (`/var/log/jitsudo-io`, sudo's I/O log format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    /// Record every run, whatever its grant says.
    pub always: bool,
    /// Record what is typed too (passwords included), not only what is shown.
    pub record_input: bool,
    /// Local copies are kept this long after the service acknowledged them.
    pub keep: Duration,
}

/// `[journal]`: the local hash-chained record of every invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    pub enabled: bool,
    /// fsync each record (costs about as much as the rest of a run).
    pub durable: bool,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            enabled: true,
            durable: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub syslog_socket: PathBuf,
    pub facility: Facility,
    pub require: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            syslog_socket: PathBuf::from("/dev/log"),
            facility: Facility::AuthPriv,
            require: true,
        }
    }
}

/// Syslog facilities an admin may choose (RFC 5424 numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    Auth,
    AuthPriv,
    Daemon,
    User,
    Local(u8),
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::AuthPriv => 10,
            Facility::Local(n) => 16 + n,
        }
    }

    fn parse(name: &str) -> Option<Facility> {
        Some(match name {
            "auth" => Facility::Auth,
            "authpriv" => Facility::AuthPriv,
            "daemon" => Facility::Daemon,
            "user" => Facility::User,
            _ => {
                let n: u8 = name.strip_prefix("local")?.parse().ok()?;
                if n > 7 {
                    return None;
                }
                Facility::Local(n)
            }
        })
    }
}

/// A config error, already carrying file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---- raw TOML shape -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    host: toml::Spanned<String>,
    service: Option<toml::Spanned<RawServices>>,
    secure_path: Option<toml::Spanned<String>>,
    #[serde(default)]
    env_keep: Vec<toml::Spanned<String>>,
    max_grant_lifetime: Option<toml::Spanned<String>>,
    clock_skew: Option<toml::Spanned<String>>,
    revocation_max_age: Option<toml::Spanned<String>>,
    end_grace: Option<toml::Spanned<String>>,
    end_warning: Option<toml::Spanned<String>>,
    authenticate: Option<bool>,
    auth_timeout: Option<toml::Spanned<String>>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    journal: RawJournal,
    #[serde(default)]
    record: RawRecord,
    #[serde(default)]
    trusted_key: Vec<RawTrustedKey>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    always: Option<bool>,
    record_input: Option<bool>,
    on_error: Option<toml::Spanned<String>>,
    keep: Option<toml::Spanned<String>>,
}

/// `service = "https://a"` or, for failover between replicas, `service = ["https://a", "https://b"]`.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "service: a URL, or a list of URLs tried in order (service = [\"https://a\", \"https://b\"])"
)]
enum RawServices {
    One(String),
    Several(Vec<String>),
}

/// More URLs than this is a mistake, not a fleet: each one unreachable costs a timeout.
const MAX_SERVICES: usize = 8;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    enabled: Option<bool>,
    durable: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    syslog_socket: Option<toml::Spanned<String>>,
    facility: Option<toml::Spanned<String>>,
    require: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustedKey {
    id: toml::Spanned<String>,
    public_key: toml::Spanned<String>,
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Located<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Located<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        what: impl std::fmt::Display,
    ) -> Result<T, ConfigError> {
        Err(ConfigError(format!(
            "{}:{}: {}",
            self.file.display(),
            line_of(self.text, span.start),
            what
        )))
    }

    fn duration(
        &self,
        key: &str,
        value: &Option<toml::Spanned<String>>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => {
                parse_duration(v.get_ref()).or_else(|e| self.err(v.span(), format!("{key}: {e}")))
            }
        }
    }
}

/// Durations are written like `90s`, `15m`, `12h`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("'{text}' is not a duration ({e}); write e.g. \"90s\", \"15m\" or \"12h\"")
    })
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// True if a variable with this name may never reach the command.
pub fn never_keep(name: &str) -> bool {
    NEVER_KEEP.iter().any(|p| pattern_matches(p, name))
}

fn valid_host_id(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn valid_env_pattern(pattern: &str) -> bool {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parse config text; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<HostConfig, ConfigError> {
    let at = Located { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let msg = e.message().trim().to_string();
        match line {
            Some(line) => ConfigError(format!("{}:{}: {}", file.display(), line, msg)),
            None => ConfigError(format!("{}: {}", file.display(), msg)),
        }
    })?;

    let host = raw.host.get_ref().trim().to_string();
    if !valid_host_id(&host) {
        return at.err(
            raw.host.span(),
            format!(
                "host = {:?} is not a valid host id (letters, digits, '-', '_' and '.')",
                raw.host.get_ref()
            ),
        );
    }

    let secure_path = match &raw.secure_path {
        None => split_path_list(DEFAULT_SECURE_PATH),
        Some(v) => {
            let dirs = split_path_list(v.get_ref());
            if dirs.is_empty() {
                return at.err(v.span(), "secure_path is empty");
            }
            for d in &dirs {
                if !d.is_absolute() {
                    return at.err(v.span(), format!(
                        "secure_path entry '{}' is not absolute; every directory must start with '/'",
                        d.display()
                    ));
                }
            }
            dirs
        }
    };

    let mut env_keep: Vec<String> = BUILTIN_ENV_KEEP.iter().map(|s| s.to_string()).collect();
    for pattern in &raw.env_keep {
        let p = pattern.get_ref();
        if !valid_env_pattern(p) {
            return at.err(
                pattern.span(),
                format!("env_keep entry {p:?} is not a variable name (optionally ending in '*')"),
            );
        }
        if never_keep(p)
            || NEVER_KEEP
                .iter()
                .any(|n| pattern_matches(p, n.trim_end_matches('*')))
        {
            return at.err(pattern.span(), format!(
                "env_keep entry {p:?} would pass on a variable that can change what the command loads or runs; it is never kept"
            ));
        }
        if !env_keep.contains(p) {
            env_keep.push(p.clone());
        }
    }

    let max_grant_lifetime = at.duration(
        "max_grant_lifetime",
        &raw.max_grant_lifetime,
        Duration::from_secs(12 * 3600),
    )?;
    let clock_skew = at.duration("clock_skew", &raw.clock_skew, Duration::from_secs(60))?;
    let revocation_max_age = match &raw.revocation_max_age {
        None => None,
        some => Some(at.duration("revocation_max_age", some, Duration::ZERO)?),
    };
    let end_grace = at.duration("end_grace", &raw.end_grace, Duration::from_secs(10))?;
    let end_warning = at.duration("end_warning", &raw.end_warning, Duration::from_secs(60))?;
    let auth_timeout = at.duration("auth_timeout", &raw.auth_timeout, DEFAULT_AUTH_TIMEOUT)?;

    let mut log = LogConfig::default();
    if let Some(sock) = &raw.log.syslog_socket {
        let p = PathBuf::from(sock.get_ref());
        if !p.is_absolute() {
            return at.err(sock.span(), "log.syslog_socket must be an absolute path");
        }
        log.syslog_socket = p;
    }
    if let Some(f) = &raw.log.facility {
        log.facility = match Facility::parse(f.get_ref()) {
            Some(f) => f,
            None => {
                return at.err(
                    f.span(),
                    format!(
                "log.facility {:?} is not one of auth, authpriv, daemon, user, local0..local7",
                f.get_ref()
            ),
                )
            }
        };
    }
    if let Some(r) = raw.log.require {
        log.require = r;
    }

    let mut seen = HashSet::new();
    let mut trusted_keys = Vec::new();
    for k in &raw.trusted_key {
        let id = k.id.get_ref();
        if !crate::grant::valid_key_id(id) {
            return at.err(
                k.id.span(),
                format!(
                    "trusted_key id {id:?} is not valid (1-64 letters, digits, '-', '_' or '.')"
                ),
            );
        }
        if !seen.insert(id.clone()) {
            return at.err(k.id.span(), format!("trusted_key id {id:?} appears twice"));
        }
        let key = match PublicKey::from_paserk(k.public_key.get_ref()) {
            Ok(key) => key,
            Err(e) => return at.err(k.public_key.span(), format!("trusted_key {id:?}: {e}")),
        };
        trusted_keys.push(TrustedKey {
            id: id.clone(),
            key,
        });
    }

    let services = match &raw.service {
        None => Vec::new(),
        Some(v) => services(&at, v)?,
    };
    if let Some(v) = &raw.record.on_error {
        // A recording is never silently lost: the only answer to a failed write is to
        // stop the command (and log it). The key exists so that configs can say so.
        if v.get_ref() != "stop" {
            return at.err(
                v.span(),
                format!(
                    "[record] on_error = {:?}: the only value is \"stop\" (a recording that cannot be written stops the command)",
                    v.get_ref()
                ),
            );
        }
    }
    let record = RecordConfig {
        always: raw.record.always.unwrap_or(false),
        record_input: raw.record.record_input.unwrap_or(true),
        keep: at.duration(
            "[record] keep",
            &raw.record.keep,
            Duration::from_secs(30 * 86400),
        )?,
    };

    Ok(HostConfig {
        host,
        services,
        secure_path,
        env_keep,
        max_grant_lifetime,
        clock_skew,
        revocation_max_age,
        end_grace,
        end_warning,
        authenticate: raw.authenticate.unwrap_or(false),
        auth_timeout,
        log,
        journal: JournalConfig {
            enabled: raw.journal.enabled.unwrap_or(true),
            durable: raw.journal.durable.unwrap_or(false),
        },
        record,
        trusted_keys,
    })
}

fn services(
    at: &Located<'_>,
    value: &toml::Spanned<RawServices>,
) -> Result<Vec<String>, ConfigError> {
    let list = match value.get_ref() {
        RawServices::One(url) => vec![url.clone()],
        RawServices::Several(urls) => urls.clone(),
    };
    if list.is_empty() {
        return at.err(
            value.span(),
            "service: the list is empty; leave the key out if there is no approval service",
        );
    }
    if list.len() > MAX_SERVICES {
        return at.err(
            value.span(),
            format!("service: {} URLs, at most {MAX_SERVICES}", list.len()),
        );
    }
    let mut seen = HashSet::new();
    for url in &list {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return at.err(
                value.span(),
                format!("service: {url:?} is not an https:// (or loopback http://) URL"),
            );
        }
        if !seen.insert(url.trim_end_matches('/')) {
            return at.err(value.span(), format!("service: {url:?} appears twice"));
        }
    }
    Ok(list)
}

fn split_path_list(text: &str) -> Vec<PathBuf> {
    text.split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Load the config from its fixed path, refusing it unless root owns it and its parents.
pub fn load() -> Result<HostConfig, ConfigError> {
    load_from(Path::new(CONFIG_PATH))
}

pub fn load_from(path: &Path) -> Result<HostConfig, ConfigError> {
    let bytes = secure_file::read_trusted(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        secure_file::OpenError::Missing => ConfigError(format!(
            "{} does not exist; create it (see jitsudo.toml(5)) with at least host = \"...\" and a [[trusted_key]]",
            path.display()
        )),
        other => ConfigError(format!("refusing config: {other}")),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ConfigError(format!("{}: not valid UTF-8", path.display())))?;
    parse(path, &text)
}

impl HostConfig {
    pub fn trusted_key(&self, id: &str) -> Option<&TrustedKey> {
        self.trusted_keys.iter().find(|k| k.id == id)
    }

    pub fn secure_path_string(&self) -> String {
        self.secure_path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k4.public.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn parse_str(text: &str) -> Result<HostConfig, ConfigError> {
        parse(Path::new("/etc/jitsudo/jitsudo.toml"), text)
    }

    #[test]
    fn end_grace_and_end_warning_are_read_and_checked() {
        let c = parse_str(&format!(
            "host = \"web-01\"\nend_grace = \"3s\"\nend_warning = \"2m\"\n[[trusted_key]]\nid = \"k1\"\npublic_key = \"{KEY}\"\n"
        ))
        .unwrap();
        assert_eq!(c.end_grace, Duration::from_secs(3));
        assert_eq!(c.end_warning, Duration::from_secs(120));
        let e = parse_str("host = \"a\"\nend_grace = \"soon\"\n").unwrap_err();
        assert!(
            e.0.contains("end_grace") && e.0.contains("jitsudo.toml:2"),
            "{e}"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse_str(&format!(
            "host = \"web-01\"\n[[trusted_key]]\nid = \"k1\"\npublic_key = \"{KEY}\"\n"
        ))
        .unwrap();
        assert_eq!(c.host, "web-01");
        assert_eq!(c.max_grant_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(c.clock_skew, Duration::from_secs(60));
        assert_eq!(c.end_grace, Duration::from_secs(10));
        assert_eq!(c.end_warning, Duration::from_secs(60));
        assert!(!c.authenticate);
        assert_eq!(c.auth_timeout, Duration::from_secs(300));
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(c.secure_path_string(), DEFAULT_SECURE_PATH);
        assert!(c.env_keep.contains(&"TERM".to_string()));
        assert!(c.trusted_key("k1").is_some());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse_str("host = \"a\"\n\n[log]\nrequire = true\nverbose = 1\n").unwrap_err();
        assert!(e.0.starts_with("/etc/jitsudo/jitsudo.toml:5:"), "{e}");
        assert!(e.0.contains("verbose"), "{e}");
    }

    #[test]
    fn record_keep_defaults_to_30_days() {
        let c = parse_str("host = \"a\"\n").unwrap();
        assert_eq!(c.record.keep, Duration::from_secs(30 * 86400));
        let c = parse_str("host = \"a\"\n[record]\nkeep = \"2h\"\n").unwrap();
        assert_eq!(c.record.keep, Duration::from_secs(7200));
        let e = parse_str("host = \"a\"\n[record]\nkeep = \"soon\"\n").unwrap_err();
        assert!(e.0.contains("[record] keep") && e.0.contains(":3:"), "{e}");
    }

    #[test]
    fn service_is_one_url_or_a_failover_list() {
        let one = parse_str("host = \"a\"\nservice = \"https://a.example\"\n").unwrap();
        assert_eq!(one.services, ["https://a.example"]);
        let two =
            parse_str("host = \"a\"\nservice = [\"https://a.example\", \"https://b.example\"]\n")
                .unwrap();
        assert_eq!(two.services, ["https://a.example", "https://b.example"]);
        assert!(parse_str("host = \"a\"\n").unwrap().services.is_empty());
    }

    #[test]
    fn bad_service_lists_name_the_line() {
        for (bad, why) in [
            ("service = []", "empty"),
            ("service = [\"https://a\", \"https://a/\"]", "twice"),
            ("service = \"approvals.example\"", "not an https://"),
            ("service = 3", "service"),
        ] {
            let e = parse_str(&format!("host = \"a\"\n{bad}\n")).unwrap_err();
            assert!(e.0.contains(":2:") && e.0.contains(why), "{bad}: {e}");
        }
        let many: Vec<String> = (0..9).map(|i| format!("\"https://r{i}\"")).collect();
        let e = parse_str(&format!("host = \"a\"\nservice = [{}]\n", many.join(", "))).unwrap_err();
        assert!(e.0.contains("at most 8"), "{e}");
    }

    #[test]
    fn record_table_defaults_and_refusals() {
        let c = parse_str("host = \"a\"\n").unwrap();
        assert_eq!(
            c.record,
            RecordConfig {
                always: false,
                record_input: true,
                keep: Duration::from_secs(30 * 86400)
            }
        );
        let c = parse_str("host = \"a\"\n[record]\nalways = true\nrecord_input = false\non_error = \"stop\"\nkeep = \"2h\"\n").unwrap();
        assert!(c.record.always && !c.record.record_input);
        assert_eq!(c.record.keep, Duration::from_secs(7200));
        let e = parse_str("host = \"a\"\n[record]\non_error = \"ignore\"\n").unwrap_err();
        assert!(
            e.0.contains(":3:") && e.0.contains("only value is \"stop\""),
            "{e}"
        );
        let e = parse_str("host = \"a\"\n[record]\nkeep = \"forever\"\n").unwrap_err();
        assert!(e.0.contains(":3:") && e.0.contains("keep"), "{e}");
    }

    #[test]
    fn missing_host_is_an_error() {
        let e = parse_str("clock_skew = \"1m\"\n").unwrap_err();
        assert!(e.0.contains("host"), "{e}");
    }

    #[test]
    fn bad_duration_names_line() {
        let e = parse_str("host = \"a\"\nclock_skew = \"soon\"\n").unwrap_err();
        assert!(e.0.contains(":2:"), "{e}");
        assert!(e.0.contains("clock_skew"), "{e}");
    }

    #[test]
    fn dangerous_env_keep_rejected() {
        for bad in [
            "LD_PRELOAD",
            "LD_*",
            "PATH",
            "PYTHONPATH",
            "BASH_ENV",
            "L*",
            "*",
        ] {
            let e = parse_str(&format!("host = \"a\"\nenv_keep = [\"{bad}\"]\n"));
            assert!(e.is_err(), "{bad} must be refused");
        }
        let ok = parse_str("host = \"a\"\nenv_keep = [\"EDITOR\", \"SSH_AUTH_SOCK\"]\n").unwrap();
        assert!(ok.env_keep.contains(&"EDITOR".to_string()));
    }

    #[test]
    fn duplicate_key_ids_rejected() {
        let e = parse_str(&format!(
            "host = \"a\"\n[[trusted_key]]\nid = \"k\"\npublic_key = \"{KEY}\"\n[[trusted_key]]\nid = \"k\"\npublic_key = \"{KEY}\"\n"
        ))
        .unwrap_err();
        assert!(e.0.contains(":6:") && e.0.contains("twice"), "{e}");
    }

    #[test]
    fn bad_public_key_rejected() {
        let e =
            parse_str("host = \"a\"\n[[trusted_key]]\nid = \"k\"\npublic_key = \"k4.secret.xx\"\n")
                .unwrap_err();
        assert!(e.0.contains(":4:"), "{e}");
    }

    #[test]
    fn facility_and_socket() {
        let c = parse_str("host = \"a\"\n[log]\nfacility = \"local3\"\nsyslog_socket = \"/run/x.sock\"\nrequire = false\n").unwrap();
        assert_eq!(c.log.facility, Facility::Local(3));
        assert_eq!(c.log.facility.code(), 19);
        assert!(!c.log.require);
        assert!(parse_str("host = \"a\"\n[log]\nfacility = \"local9\"\n").is_err());
        assert!(parse_str("host = \"a\"\n[log]\nsyslog_socket = \"rel\"\n").is_err());
    }

    #[test]
    fn authenticate_and_auth_timeout() {
        let c = parse_str("host = \"a\"\nauthenticate = true\nauth_timeout = \"90s\"\n").unwrap();
        assert!(c.authenticate);
        assert_eq!(c.auth_timeout, Duration::from_secs(90));
        let c = parse_str("host = \"a\"\nauthenticate = true\nauth_timeout = \"0s\"\n").unwrap();
        assert!(c.auth_timeout.is_zero());
        let e = parse_str("host = \"a\"\nauthenticate = \"yes\"\n").unwrap_err();
        assert!(e.0.contains(":2:"), "{e}");
        let e = parse_str("host = \"a\"\nauth_timeout = \"a while\"\n").unwrap_err();
        assert!(e.0.contains(":2:") && e.0.contains("auth_timeout"), "{e}");
        let e = parse_str("host = \"a\"\nauth_timeout = 300\n").unwrap_err();
        assert!(e.0.contains(":2:"), "{e}");
    }

    #[test]
    fn relative_secure_path_rejected() {
        assert!(parse_str("host = \"a\"\nsecure_path = \"/bin:bin\"\n").is_err());
    }
}
