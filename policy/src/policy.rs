//! The approval service's policy: which requests are granted automatically, which need
//! people, and which are refused. Pure: the time, the requester and the command are
//! parameters, so every rule can be tested without a service or a clock.
//!
//! ```toml
//! [[rule]]
//! name = "restart-nginx"            # recorded with every decision the rule makes
//! users = ["alice"]                 # requester is one of these users ...
//! groups = ["ops"]                  # ... or in one of these groups (omit both: anyone)
//! hosts = ["web-*"]                 # host names or globs (omit: any host)
//! commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/journalctl *"]
//! run_as = ["root"]                 # omit: root only
//! decision = "approve"              # auto | approve | deny
//! approvals = 2                     # distinct approvers needed (decision = "approve")
//! approvers = ["bob", "group:sre"]  # who may approve; the requester never counts
//! default_duration = "15m"
//! max_duration = "1h"
//! hours = "09:00-17:00"             # allowed local time of day (end exclusive)
//! weekdays = ["mon", "tue", "wed", "thu", "fri"]
//! timezone = "+01:00"               # "UTC" or a fixed offset
//! networks = ["10.0.0.0/8"]         # allowed SSH source addresses
//! require_reason = true
//! single_use = true                 # grants from this rule are one-time
//! allow_exec = true                 # the command may run other programs (default: not)
//! record = true                     # every run under its grants is recorded (default: not)
//! ticket = "^(INC|CHG)-[0-9]+$"     # a ticket id is required and must match (whole id)
//! chat_approval = false             # votes only on the web page or API, never from chat
//! approver_mfa = true               # approvals count only from a web sign-in through the
//!                                   # identity provider that showed MFA ([oidc] in
//!                                   # jitsudod.toml); implies chat_approval = false
//! max_extensions = 2                # jitsudo --extend may extend a grant twice (default 0)
//! extension_decision = "auto"       # how extensions are decided (default: as decision)
//!
//! [[rule]]
//! name = "nginx-config"
//! kind = "edit"                     # grants for jitsudo -e: commands are files
//! commands = ["/etc/nginx/nginx.conf"]
//! decision = "auto"
//! ```
//!
//! A rule *matches* on who (users/groups), where (hosts), what (commands, run_as).
//! The first matching rule decides; no match is a denial. The matched rule's
//! constraints (hours, weekdays, networks, reason, duration) then either hold or turn
//! the decision into a denial that names the rule and the constraint. Time zones are
//! fixed offsets so that evaluation needs no time zone database.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{line_of, parse_duration};
use crate::grant::Kind;
use crate::matcher::CommandSpec;

/// No single grant from the service lasts longer than this, whatever a rule says.
pub const MAX_DURATION_CEILING: u64 = 12 * 3600;
const DEFAULT_DURATION: u64 = 15 * 60;
const MAX_POLICY_BYTES: usize = 4 << 20;

#[derive(Clone, Debug)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule's name, or `rule #N` (1-based) when it has none.
    pub name: String,
    pub line: usize,
    users: Vec<String>,
    groups: Vec<String>,
    hosts: Vec<String>,
    /// `exec` (commands are command specs) or `edit` (commands are the files that
    /// `jitsudo -e` may edit, each an absolute path in normal form).
    pub kind: Kind,
    commands: Vec<CommandSpec>,
    run_as: Vec<String>,
    pub decision: DecisionKind,
    pub approvals: u32,
    pub approvers: Vec<Principal>,
    pub default_duration: u64,
    pub max_duration: u64,
    hours: Option<(u32, u32)>,
    weekdays: Option<[bool; 7]>,
    utc_offset: i64,
    networks: Vec<Network>,
    pub require_reason: bool,
    pub single_use: bool,
    /// Grants from this rule carry `exec`: the command may execute other programs (a
    /// pager's `!`, `find -exec`). Off by default.
    pub allow_exec: bool,
    /// Grants from this rule carry `record`: every run under them is recorded. Off by
    /// default.
    pub record: bool,
    /// A ticket id is required and must match this pattern as a whole.
    pub ticket: Option<Ticket>,
    /// Votes from chat (Slack buttons) count. False with `chat_approval = false` and
    /// whenever `approver_mfa = true`: a chat click proves no second factor.
    pub chat_approval: bool,
    /// Approvals must come from a session that passed MFA.
    pub approver_mfa: bool,
    /// How many times `jitsudo --extend` may extend one grant (0: never).
    pub max_extensions: u32,
    /// How an extension is decided; `None`: as `decision`.
    pub extension_decision: Option<DecisionKind>,
}

/// A rule's `ticket` pattern: the regex as written, and compiled anchored at both ends,
/// so `INC-[0-9]+` cannot be satisfied by `xINC-1 anything`.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub pattern: String,
    anchored: regex::Regex,
}

impl Ticket {
    pub fn parse(pattern: &str) -> Result<Ticket, String> {
        if pattern.is_empty() || pattern.len() > 256 {
            return Err("ticket pattern must be 1-256 characters".into());
        }
        let anchored = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 16)
            .build()
            .map_err(|e| format!("ticket pattern {pattern:?} is not a valid regex: {e}"))?;
        Ok(Ticket {
            pattern: pattern.to_string(),
            anchored,
        })
    }

    pub fn admits(&self, ticket: &str) -> bool {
        self.anchored.is_match(ticket)
    }
}

impl PartialEq for Ticket {
    fn eq(&self, other: &Ticket) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Ticket {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionKind {
    Auto,
    Approve,
    Deny,
}

/// Someone allowed to approve: a named approver, or any approver in a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    User(String),
    Group(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(u) => f.write_str(u),
            Principal::Group(g) => write!(f, "group:{g}"),
        }
    }
}

impl Principal {
    pub fn parse(text: &str) -> Result<Principal, String> {
        let (group, name) = match text.strip_prefix("group:") {
            Some(g) => (true, g),
            None => (false, text),
        };
        if !crate::grant::valid_user_name(name) {
            return Err(format!(
                "approver {text:?} is not a user name or group:NAME"
            ));
        }
        Ok(if group {
            Principal::Group(name.to_string())
        } else {
            Principal::User(name.to_string())
        })
    }

    pub fn admits(&self, name: &str, groups: &[String]) -> bool {
        match self {
            Principal::User(u) => u == name,
            Principal::Group(g) => groups.iter().any(|x| x == g),
        }
    }
}

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: prefix length must be 0-{max}"))?,
        };
        Ok(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net) as u128, 32, self.prefix)
                    == masked(u32::from(ip) as u128, 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    bits >> (width - prefix)
}

/// Everything the policy looks at.
#[derive(Clone, Debug)]
pub struct Ask<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub host: &'a str,
    pub run_as: &'a str,
    /// What the grant is for: a command, or (`Kind::Edit`) files to edit.
    pub kind: Kind,
    /// The program's absolute path and its arguments; for an edit, the first file and
    /// the others.
    pub path: &'a str,
    pub args: &'a [String],
    pub reason: &'a str,
    /// Requested lifetime in seconds, if the requester named one.
    pub duration: Option<u64>,
    pub once: bool,
    /// SSH source address the host vouched for, if the user came in over SSH.
    pub source: Option<IpAddr>,
    /// Unix seconds (the service's clock).
    pub now: i64,
    /// The ticket id the requester gave (`--ticket`).
    pub ticket: Option<&'a str>,
    /// For `jitsudo --extend`: how many times the grant being extended has been
    /// extended already (0 for the first extension). `None` for a new request.
    pub extension: Option<u32>,
}

/// What the policy decided, and which rule decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Rule name, or `no matching rule`.
    pub rule: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Issue a grant now.
    Auto(Terms),
    /// Issue once `approvals` distinct approvers from `approvers` have approved.
    Approve {
        terms: Terms,
        approvals: u32,
        approvers: Vec<Principal>,
        /// Votes from chat count (the rule's `chat_approval`, off with `approver_mfa`).
        chat_approval: bool,
        /// Approvals count only from people whose sign-in showed MFA.
        approver_mfa: bool,
    },
    Deny(String),
}

/// What a grant issued under this decision looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    pub duration: u64,
    pub uses: Option<u32>,
    /// The grant's `exec` claim.
    pub allow_exec: bool,
    /// The grant's `record` claim.
    pub record: bool,
}

pub const NO_MATCH: &str = "no matching rule";

impl Policy {
    pub fn decide(&self, ask: &Ask<'_>) -> Decision {
        let Some(rule) = self.rules.iter().find(|r| r.matches(ask)) else {
            let what = match ask.kind {
                Kind::Edit => format!("editing {}", display_command(ask.path, ask.args)),
                _ => format!("{} as {}", display_command(ask.path, ask.args), ask.run_as),
            };
            return Decision {
                rule: NO_MATCH.into(),
                outcome: Outcome::Deny(format!("no policy rule allows {what} on {}", ask.host)),
            };
        };
        Decision {
            rule: rule.name.clone(),
            outcome: rule.judge(ask),
        }
    }
}

pub fn display_command(path: &str, args: &[String]) -> String {
    std::iter::once(path)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Rule {
    fn matches(&self, ask: &Ask<'_>) -> bool {
        let who = (self.users.is_empty() && self.groups.is_empty())
            || self.users.iter().any(|u| u == ask.user)
            || self.groups.iter().any(|g| ask.groups.contains(g));
        let host = self.hosts.is_empty() || self.hosts.iter().any(|h| glob(h, ask.host));
        let run_as = if self.run_as.is_empty() {
            ask.run_as == "root"
        } else {
            self.run_as.iter().any(|r| r == "*" || r == ask.run_as)
        };
        let command = match self.kind {
            // Every file asked for must be one the rule names.
            Kind::Edit => std::iter::once(ask.path)
                .chain(ask.args.iter().map(String::as_str))
                .all(|file| self.commands.iter().any(|c| c.path == file)),
            _ => self
                .commands
                .iter()
                .any(|c| c.pin.is_none() && c.allows(ask.path, ask.args)),
        };
        who && host && run_as && self.kind == ask.kind && command
    }

    fn judge(&self, ask: &Ask<'_>) -> Outcome {
        let deny = |why: String| Outcome::Deny(format!("{why} (rule {})", self.name));
        let decision = match ask.extension {
            None => self.decision,
            Some(done) if done >= self.max_extensions => {
                return deny(match self.max_extensions {
                    0 => "this rule allows no extensions (max_extensions = 0); ask again with jitsudo --request".into(),
                    max => format!(
                        "the grant has been extended {done} time(s) already, the most max_extensions = {max} allows; ask again with jitsudo --request"
                    ),
                })
            }
            Some(_) => self.extension_decision.unwrap_or(self.decision),
        };
        if decision == DecisionKind::Deny {
            return Outcome::Deny(match ask.extension {
                Some(_) => format!("policy rule {} denies extensions", self.name),
                None => format!("policy rule {} denies this command", self.name),
            });
        }
        if self.require_reason && ask.reason.trim().is_empty() {
            return deny("a reason is required".into());
        }
        if let Some(t) = &self.ticket {
            match ask.ticket {
                None => {
                    return deny(format!(
                        "a ticket id matching {} is required; ask again with --ticket ID",
                        t.pattern
                    ))
                }
                Some(id) if !t.admits(id) => {
                    return deny(format!(
                        "ticket {id:?} does not match the required pattern {}",
                        t.pattern
                    ))
                }
                Some(_) => {}
            }
        }
        if !self.networks.is_empty() {
            match ask.source {
                None => {
                    return deny(
                        "requests must come from an SSH session from an allowed network".into(),
                    )
                }
                Some(ip) if !self.networks.iter().any(|n| n.contains(ip)) => {
                    return deny(format!("source address {ip} is not in an allowed network"))
                }
                Some(_) => {}
            }
        }
        let local = ask.now + self.utc_offset;
        let (day, second_of_day) = (local.div_euclid(86400), local.rem_euclid(86400));
        // 1970-01-01 was a Thursday; index 0 = Monday.
        let weekday = (day + 3).rem_euclid(7) as usize;
        if let Some(days) = &self.weekdays {
            if !days[weekday] {
                return deny(format!("{} is not an allowed weekday", WEEKDAYS[weekday]));
            }
        }
        if let Some((start, end)) = self.hours {
            let minute = (second_of_day / 60) as u32;
            let inside = if start <= end {
                (start..end).contains(&minute)
            } else {
                minute >= start || minute < end
            };
            if !inside {
                return deny(format!(
                    "outside allowed hours {}-{} (it is {} {})",
                    hhmm(start),
                    hhmm(end),
                    hhmm(minute),
                    offset_text(self.utc_offset)
                ));
            }
        }
        let duration = ask.duration.unwrap_or(self.default_duration);
        if duration == 0 {
            return deny("the requested duration is zero".into());
        }
        if duration > self.max_duration {
            return deny(format!(
                "requested duration {} exceeds max_duration {}",
                crate::grant::human_duration(duration),
                crate::grant::human_duration(self.max_duration)
            ));
        }
        let terms = Terms {
            duration,
            uses: (self.single_use || ask.once).then_some(1),
            allow_exec: self.allow_exec,
            record: self.record,
        };
        match decision {
            DecisionKind::Auto => Outcome::Auto(terms),
            _ => Outcome::Approve {
                terms,
                approvals: self.approvals,
                approvers: self.approvers.clone(),
                chat_approval: self.chat_approval,
                approver_mfa: self.approver_mfa,
            },
        }
    }
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn offset_text(offset: i64) -> String {
    if offset == 0 {
        return "UTC".into();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let m = offset.abs() / 60;
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

/// `*` matches any run of characters, `?` one character; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

// ---- parsing ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Spanned<String>>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    kind: Option<Spanned<String>>,
    commands: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    run_as: Vec<Spanned<String>>,
    decision: Spanned<String>,
    approvals: Option<Spanned<i64>>,
    #[serde(default)]
    approvers: Vec<Spanned<String>>,
    default_duration: Option<Spanned<String>>,
    max_duration: Option<Spanned<String>>,
    hours: Option<Spanned<String>>,
    weekdays: Option<Spanned<Vec<Spanned<String>>>>,
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    networks: Vec<Spanned<String>>,
    #[serde(default)]
    require_reason: bool,
    #[serde(default)]
    single_use: bool,
    #[serde(default)]
    allow_exec: bool,
    #[serde(default)]
    record: bool,
    ticket: Option<Spanned<String>>,
    chat_approval: Option<bool>,
    #[serde(default)]
    approver_mfa: bool,
    max_extensions: Option<Spanned<i64>>,
    extension_decision: Option<Spanned<String>>,
}

/// A policy error, already carrying file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct At<'a> {
    file: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        what: impl fmt::Display,
    ) -> Result<T, PolicyError> {
        Err(PolicyError(format!(
            "{}:{}: {what}",
            self.file.display(),
            line_of(self.text, span.start)
        )))
    }

    fn duration(&self, key: &str, v: &Option<Spanned<String>>) -> Result<Option<u64>, PolicyError> {
        match v {
            None => Ok(None),
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) if d.as_secs() == 0 => {
                    self.err(v.span(), format!("{key} must be longer than 0s"))
                }
                Ok(d) if d.as_secs() > MAX_DURATION_CEILING => self.err(
                    v.span(),
                    format!(
                        "{key} {} is longer than the service's ceiling of 12h",
                        v.get_ref()
                    ),
                ),
                Ok(d) => Ok(Some(d.as_secs())),
                Err(e) => self.err(v.span(), format!("{key}: {e}")),
            },
        }
    }
}

/// Read and parse a policy file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let bytes = std::fs::read(path)
        .map_err(|e| PolicyError(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(PolicyError(format!(
            "{}: larger than {MAX_POLICY_BYTES} bytes",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| PolicyError(format!("{}: not valid UTF-8", path.display())))?;
    parse(path, &text)
}

/// Parse policy text; `file` is only used in messages.
pub fn parse(file: &Path, text: &str) -> Result<Policy, PolicyError> {
    let at = At { file, text };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        match e.span() {
            Some(s) => PolicyError(format!(
                "{}:{}: {msg}",
                file.display(),
                line_of(text, s.start)
            )),
            None => PolicyError(format!("{}: {msg}", file.display())),
        }
    })?;
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    for (i, spanned) in raw.rule.iter().enumerate() {
        let line = line_of(text, spanned.span().start);
        let r = spanned.get_ref();
        let name = match &r.name {
            Some(n) => {
                let v = n.get_ref();
                if v.is_empty() || v.len() > 64 || v.chars().any(|c| c.is_control()) {
                    return at.err(n.span(), "rule name must be 1-64 printable characters");
                }
                if !names.insert(v.clone()) {
                    return at.err(n.span(), format!("rule name {v:?} is used twice"));
                }
                v.clone()
            }
            None => format!("#{}", i + 1),
        };
        rules.push(parse_rule(&at, r, name, line)?);
    }
    Ok(Policy { rules })
}

fn parse_rule(at: &At<'_>, r: &RawRule, name: String, line: usize) -> Result<Rule, PolicyError> {
    let names = |list: &[Spanned<String>], what: &str| -> Result<Vec<String>, PolicyError> {
        list.iter()
            .map(|n| {
                if crate::grant::valid_user_name(n.get_ref())
                    || (what == "run_as" && n.get_ref() == "*")
                {
                    Ok(n.get_ref().clone())
                } else {
                    at.err(
                        n.span(),
                        format!("{what} entry {:?} is not a valid name", n.get_ref()),
                    )
                }
            })
            .collect()
    };
    let users = names(&r.users, "users")?;
    let groups = names(&r.groups, "groups")?;
    let run_as = names(&r.run_as, "run_as")?;
    let mut hosts = Vec::new();
    for h in &r.hosts {
        let v = h.get_ref();
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.*?".contains(&b))
        {
            return at.err(
                h.span(),
                format!("hosts entry {v:?} is not a host name or glob"),
            );
        }
        hosts.push(v.clone());
    }
    if r.commands.get_ref().is_empty() {
        return at.err(
            r.commands.span(),
            "commands is empty; list at least one command spec",
        );
    }
    let kind = match r.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("exec", _)) => Kind::Exec,
        Some(("edit", _)) => Kind::Edit,
        Some((other, span)) => return at.err(span, format!("kind {other:?} must be exec or edit")),
    };
    if kind == Kind::Edit && !run_as.iter().all(|r| r == "root") {
        return at.err(
            r.run_as[0].span(),
            "an edit rule has no run_as (the editor runs as the requester, root writes back)",
        );
    }
    let mut commands = Vec::new();
    for c in r.commands.get_ref() {
        if kind == Kind::Edit {
            if let Err(e) = crate::matcher::check_edit_path(c.get_ref()) {
                return at.err(c.span(), format!("file {:?}: {e}", c.get_ref()));
            }
            commands.push(CommandSpec {
                pin: None,
                path: c.get_ref().clone(),
                args: crate::matcher::ArgRule::None,
            });
            continue;
        }
        match CommandSpec::parse(c.get_ref()) {
            Ok(spec) if spec.pin.is_some() => {
                return at.err(c.span(), "sha256-pinned specs are not supported in policy rules (the service cannot check the host's file)")
            }
            Ok(spec) => commands.push(spec),
            Err(e) => return at.err(c.span(), format!("command {:?}: {e}", c.get_ref())),
        }
    }
    let decision_of = |d: &Spanned<String>, key: &str| match d.get_ref().as_str() {
        "auto" => Ok(DecisionKind::Auto),
        "approve" => Ok(DecisionKind::Approve),
        "deny" => Ok(DecisionKind::Deny),
        other => at.err(
            d.span(),
            format!("{key} {other:?} must be auto, approve or deny"),
        ),
    };
    let decision = decision_of(&r.decision, "decision")?;
    let extension_decision = match &r.extension_decision {
        None => None,
        Some(d) => {
            let kind = decision_of(d, "extension_decision")?;
            if kind == DecisionKind::Approve && decision != DecisionKind::Approve {
                // Approvers are the rule's; a rule without them cannot have extensions approved.
                return at.err(
                    d.span(),
                    "extension_decision = \"approve\" needs decision = \"approve\" (and its approvers)",
                );
            }
            Some(kind)
        }
    };
    let max_extensions = match &r.max_extensions {
        None => 0,
        Some(n) if (0..=100).contains(n.get_ref()) => *n.get_ref() as u32,
        Some(n) => return at.err(n.span(), "max_extensions must be between 0 and 100"),
    };
    let ticket = match &r.ticket {
        None => None,
        Some(t) => Some(Ticket::parse(t.get_ref()).or_else(|e| at.err(t.span(), e))?),
    };
    let approvals = match (&r.approvals, decision) {
        (Some(n), DecisionKind::Approve) => {
            if !(1..=16).contains(n.get_ref()) {
                return at.err(n.span(), "approvals must be between 1 and 16");
            }
            *n.get_ref() as u32
        }
        (Some(n), _) => {
            return at.err(n.span(), "approvals only applies to decision = \"approve\"")
        }
        (None, DecisionKind::Approve) => 1,
        (None, _) => 0,
    };
    let mut approvers = Vec::new();
    for a in &r.approvers {
        approvers.push(Principal::parse(a.get_ref()).or_else(|e| at.err(a.span(), e))?);
    }
    if decision == DecisionKind::Approve && approvers.is_empty() {
        return at.err(
            r.decision.span(),
            "decision = \"approve\" needs approvers = [\"NAME\" or \"group:NAME\", ...]",
        );
    }
    if decision != DecisionKind::Approve && !approvers.is_empty() {
        return at.err(
            r.approvers[0].span(),
            "approvers only applies to decision = \"approve\"",
        );
    }
    let max_duration = at
        .duration("max_duration", &r.max_duration)?
        .unwrap_or(MAX_DURATION_CEILING);
    let default_duration = at
        .duration("default_duration", &r.default_duration)?
        .unwrap_or(DEFAULT_DURATION.min(max_duration));
    if default_duration > max_duration {
        let span = r
            .default_duration
            .as_ref()
            .map(|d| d.span())
            .unwrap_or(0..0);
        return at.err(span, "default_duration is longer than max_duration");
    }
    let hours = match &r.hours {
        None => None,
        Some(h) => Some(parse_hours(h.get_ref()).or_else(|e| at.err(h.span(), e))?),
    };
    let weekdays = match &r.weekdays {
        None => None,
        Some(list) => {
            let mut days = [false; 7];
            for d in list.get_ref() {
                let Some(i) = WEEKDAYS.iter().position(|w| {
                    d.get_ref().to_ascii_lowercase().starts_with(w) && d.get_ref().len() >= 3
                }) else {
                    return at.err(
                        d.span(),
                        format!(
                            "weekday {:?} is not one of mon, tue, wed, thu, fri, sat, sun",
                            d.get_ref()
                        ),
                    );
                };
                days[i] = true;
            }
            if list.get_ref().is_empty() {
                return at.err(
                    list.span(),
                    "weekdays is empty (the rule could never apply); remove it or name days",
                );
            }
            Some(days)
        }
    };
    let utc_offset = match &r.timezone {
        None => 0,
        Some(tz) => parse_offset(tz.get_ref()).or_else(|e| at.err(tz.span(), e))?,
    };
    let mut networks = Vec::new();
    for n in &r.networks {
        networks.push(
            Network::parse(n.get_ref()).or_else(|e| at.err(n.span(), format!("networks: {e}")))?,
        );
    }
    Ok(Rule {
        name,
        line,
        users,
        groups,
        hosts,
        kind,
        commands,
        run_as,
        decision,
        approvals,
        approvers,
        default_duration,
        max_duration,
        hours,
        weekdays,
        utc_offset,
        networks,
        require_reason: r.require_reason,
        single_use: r.single_use,
        allow_exec: r.allow_exec,
        record: r.record,
        ticket,
        // MFA cannot be shown by a click in chat: such a rule never takes chat votes.
        chat_approval: r.chat_approval.unwrap_or(true) && !r.approver_mfa,
        approver_mfa: r.approver_mfa,
        max_extensions,
        extension_decision,
    })
}

/// `09:00-17:30` → minutes of the day (start inclusive, end exclusive; may wrap midnight).
fn parse_hours(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("hours {text:?} must look like \"09:00-17:00\"");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let minute = |s: &str| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (start, end) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
    if start == end {
        return Err(format!("hours {text:?} is an empty window"));
    }
    Ok((start, end))
}

/// `UTC`, `Z`, `+02:00`, `-0530`, `UTC+1` → seconds east of UTC.
fn parse_offset(text: &str) -> Result<i64, String> {
    let bad = || {
        format!("timezone {text:?} must be \"UTC\" or a fixed offset like \"+02:00\" (named zones are not supported: their offsets change)")
    };
    let t = text.trim();
    let t = t.strip_prefix("UTC").unwrap_or(t);
    if t.is_empty() || t == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.parse::<i64>().map_err(|_| bad())?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i64>().map_err(|_| bad())?,
            digits[split..].parse::<i64>().map_err(|_| bad())?,
        )
    };
    if h > 14 || m >= 60 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests;
