//! Webhooks: the service tells chat rooms and ticket systems about requests created,
//! approved and denied, and grants issued and revoked.
//!
//! ```toml
//! [[webhook]]
//! url = "https://hooks.slack.com/services/…"
//! format = "slack"                  # Slack message (Block Kit); or "json" (default): the event object
//! secret_file = "/etc/jitsudo/webhook.secret"   # or secret = "…"
//! events = ["request.created", "request.approved", "request.denied", "request.decided", "grant.issued", "grant.revoked"]
//! ```
//!
//! `request.decided` is sent when people (not the policy) decided a request: it names
//! the requester, the decision, who decided and their comments. The Slack format
//! addresses it to the requester (`channel` and a mention) when an approver of the
//! requester's name has a Slack member id. For a pending request the Slack format
//! carries Approve and Deny buttons (see `service::slack`), unless the rule takes no
//! chat votes: then a link to the approver page (`[slack] page_url`).
//!
//! Every POST carries `X-Jitsudo-Event`, `X-Jitsudo-Delivery` (the same on retries, for
//! de-duplication), `X-Jitsudo-Timestamp` (Unix seconds) and
//! `X-Jitsudo-Signature: sha256=HEX`, the HMAC-SHA256 with the shared secret of
//! `TIMESTAMP.BODY` (the timestamp header, a dot, the raw body). Receivers recompute
//! it, compare in constant time and refuse old timestamps, so a captured delivery
//! cannot be replayed later.
//!
//! Delivery never blocks a decision: handlers put the event on a bounded queue and
//! return; a task sends it, retrying on errors and non-2xx answers with exponential
//! backoff (1 s, 2 s, 4 s, 8 s; 5 attempts). A full queue drops the event. Every
//! failure is logged and counted in /metrics (`jitsudod_webhook_deliveries_total`).
#![forbid(unsafe_code)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use toml::Spanned;
use zeroize::Zeroizing;

use crate::model::RequestRow;

/// The events a webhook can ask for.
pub const EVENTS: &[&str] = &[
    "request.created",
    "request.approved",
    "request.denied",
    "request.decided",
    "grant.issued",
    "grant.revoked",
];

pub const MAX_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const QUEUE: usize = 1024;
const PARALLEL_DELIVERIES: usize = 16;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Slack,
}

#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: Arc<Zeroizing<Vec<u8>>>,
    pub format: Format,
    pub events: Vec<&'static str>,
    /// The approver page, linked from Slack messages (`[slack] page_url`).
    pub page_url: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Scheme and host only: a Slack webhook URL's path is itself a secret.
pub fn redact_url(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let host = rest.split('/').next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{}://{host}/…", &url[..i])
        }
        None => "…".into(),
    }
}

/// `[[webhook]]` as written in jitsudod.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    url: Spanned<String>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    events: Option<Spanned<Vec<String>>>,
}

/// Check one `[[webhook]]` table. `err` turns a span and message into `FILE:LINE: …`;
/// `path` resolves a path relative to the config file.
pub fn from_raw(
    raw: &RawWebhook,
    err: &dyn Fn(Range<usize>, String) -> String,
    path: &dyn Fn(&Spanned<String>) -> PathBuf,
) -> Result<Webhook, String> {
    let url = raw.url.get_ref().trim().to_string();
    let after_scheme = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match after_scheme {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) => {
        }
        _ => {
            return Err(err(
                raw.url.span(),
                "webhook url must be https://HOST/… (or http://)".into(),
            ))
        }
    }
    let secret = match (&raw.secret, &raw.secret_file) {
        (Some(s), None) => Zeroizing::new(s.get_ref().as_bytes().to_vec()),
        (None, Some(f)) => read_secret_file(&path(f)).map_err(|e| err(f.span(), e))?,
        (Some(s), Some(_)) => {
            return Err(err(
                s.span(),
                "give the webhook secret or secret_file, not both".into(),
            ))
        }
        (None, None) => {
            return Err(err(
                raw.url.span(),
                "webhook needs secret = \"…\" or secret_file = \"PATH\" (receivers check the signature with it)".into(),
            ))
        }
    };
    if secret.len() < 16 {
        let span = raw
            .secret
            .as_ref()
            .or(raw.secret_file.as_ref())
            .map(|s| s.span())
            .unwrap_or(raw.url.span());
        return Err(err(
            span,
            "webhook secret must be at least 16 bytes (e.g. openssl rand -hex 32)".into(),
        ));
    }
    let format = match raw
        .format
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        None | Some(("json", _)) => Format::Json,
        Some(("slack", _)) => Format::Slack,
        Some((other, span)) => {
            return Err(err(
                span,
                format!("webhook format {other:?} is not \"json\" or \"slack\""),
            ))
        }
    };
    let events = match &raw.events {
        None => EVENTS.to_vec(),
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(err(
                    list.span(),
                    "webhook events is empty; leave it out for all events".into(),
                ));
            }
            let mut out = Vec::new();
            for e in list.get_ref() {
                match EVENTS.iter().find(|k| **k == e) {
                    Some(k) => out.push(*k),
                    None => {
                        return Err(err(
                            list.span(),
                            format!("unknown webhook event {e:?} (known: {})", EVENTS.join(", ")),
                        ))
                    }
                }
            }
            out
        }
    };
    Ok(Webhook {
        url,
        secret: Arc::new(secret),
        format,
        events,
        page_url: None,
    })
}

fn read_secret_file(p: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("cannot read webhook secret {}: {e}", p.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "webhook secret {} is accessible by group or others (mode {:o}); fix with: chmod 600 {}",
            p.display(),
            meta.mode() & 0o777,
            p.display()
        ));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read webhook secret {}: {e}", p.display()))?,
    );
    Ok(Zeroizing::new(text.trim().as_bytes().to_vec()))
}

/// `sha256=HEX` of HMAC-SHA256(secret, "TIMESTAMP.BODY").
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "sha256={}",
        jitsudo_policy::audit::hex(&mac.finalize().into_bytes())
    )
}

/// Something that happened, for the webhooks.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: &'static str,
    pub at: i64,
    /// Approver name, `policy:RULE` or `host:NAME`.
    pub actor: String,
    pub request: Option<RequestRow>,
    pub grant: Option<(String, i64)>,
    /// Approval comment or denial / revocation reason.
    pub comment: Option<String>,
    /// `request.decided`: who decided (the approvers, or the one who denied).
    pub decided_by: Vec<String>,
    /// `request.decided`: the requester's Slack member id, when known.
    pub requester_slack_id: Option<String>,
}

impl Event {
    pub fn new(kind: &'static str, actor: impl Into<String>) -> Event {
        Event {
            kind,
            at: jitsudo_core::grant::now(),
            actor: actor.into(),
            request: None,
            grant: None,
            comment: None,
            decided_by: Vec::new(),
            requester_slack_id: None,
        }
    }

    pub fn decided(mut self, by: Vec<String>, requester_slack_id: Option<String>) -> Event {
        self.decided_by = by;
        self.requester_slack_id = requester_slack_id;
        self
    }

    pub fn request(mut self, r: &RequestRow) -> Event {
        self.request = Some(r.clone());
        self
    }

    pub fn grant(mut self, id: &str, exp: i64) -> Event {
        self.grant = Some((id.to_string(), exp));
        self
    }

    pub fn comment(mut self, c: &str) -> Event {
        self.comment = Some(c.to_string());
        self
    }

    pub fn json(&self, delivery: &str) -> serde_json::Value {
        let request = self.request.as_ref().map(|r| {
            serde_json::json!({
                "id": r.id, "host": r.host, "user": r.user, "run_as": r.run_as,
                "command": r.command, "reason": r.reason, "rule": r.rule,
                "status": r.status, "message": r.message,
                "created_at": jitsudo_core::grant::format_time(r.created_at),
                "ticket": r.ticket, "extends": r.extends,
            })
        });
        let grant = self.grant.as_ref().map(|(id, exp)| {
            serde_json::json!({ "id": id, "expires": jitsudo_core::grant::format_time(*exp) })
        });
        let mut body = serde_json::json!({
            "event": self.kind,
            "delivery": delivery,
            "at": jitsudo_core::grant::format_time(self.at),
            "actor": self.actor,
            "request": request,
            "grant": grant,
            "comment": self.comment,
        });
        if self.kind == "request.decided" {
            if let Some(r) = &self.request {
                body["requester"] = r.user.clone().into();
                body["decision"] = r.status.as_str().into();
            }
            body["decided_by"] = self.decided_by.clone().into();
            body["requester_slack_id"] = self.requester_slack_id.clone().into();
        }
        body
    }

    /// The Slack format's body: the text line, as a section, and for a pending request
    /// either Approve / Deny buttons carrying the request id (answered at
    /// `/v1/slack/interactions`) or, when its rule takes no chat votes, a link to the
    /// approver page. `request.decided` goes to the requester when their member id is
    /// known.
    pub fn slack(&self, page_url: Option<&str>) -> serde_json::Value {
        let text = match (&self.requester_slack_id, self.kind) {
            // A member id is checked (`U…`/`W…`, letters and digits) before it is stored.
            (Some(id), "request.decided") => format!("<@{id}> {}", self.text()),
            _ => self.text(),
        };
        let mut blocks = vec![serde_json::json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": text },
        })];
        let pending = self.request.as_ref().filter(|r| {
            self.kind == "request.created" && r.status == crate::model::RequestStatus::Pending
        });
        if let Some(r) = pending {
            if r.chat_approval {
                let button = |label: &str, action: &str, style: &str| {
                    serde_json::json!({
                        "type": "button", "action_id": action, "value": r.id, "style": style,
                        "text": { "type": "plain_text", "text": label },
                    })
                };
                blocks.push(serde_json::json!({
                    "type": "actions",
                    "block_id": format!("jitsudo-{}", r.id),
                    "elements": [button("Approve", "approve", "primary"), button("Deny", "deny", "danger")],
                }));
            } else {
                let where_ = match page_url {
                    Some(url) => format!("<{url}|the approver page>"),
                    None => "the approver page".to_string(),
                };
                blocks.push(serde_json::json!({
                    "type": "context",
                    "elements": [{ "type": "mrkdwn", "text": format!("Rule {} takes no votes from chat: decide on {where_}.", slack_escape(&r.rule)) }],
                }));
            }
        }
        let mut body = serde_json::json!({ "text": text, "blocks": blocks });
        if let (Some(id), "request.decided") = (&self.requester_slack_id, self.kind) {
            body["channel"] = id.clone().into();
        }
        body
    }

    /// One line for a chat room (Slack mrkdwn, escaped).
    pub fn text(&self) -> String {
        let mut t = match self.kind {
            "request.created" => "New request".to_string(),
            "request.approved" => format!("Approved by {}", self.actor),
            "request.denied" => format!("Denied by {}", self.actor),
            "request.decided" => match self.request.as_ref().map(|r| r.status) {
                Some(crate::model::RequestStatus::Approved) => {
                    format!(
                        "Your request was approved by {}",
                        self.decided_by.join(", ")
                    )
                }
                _ => format!("Your request was denied by {}", self.decided_by.join(", ")),
            },
            "grant.issued" => format!("Grant issued ({})", self.actor),
            "grant.revoked" => format!("Grant revoked by {}", self.actor),
            other => other.to_string(),
        };
        if let Some(r) = &self.request {
            t.push_str(&format!(
                ": {}@{} as {}: `{}` (reason: {}; rule {}; {}; request {})",
                r.user, r.host, r.run_as, r.command, r.reason, r.rule, r.message, r.id
            ));
            if let Some(ticket) = &r.ticket {
                t.push_str(&format!(" ticket {ticket}"));
            }
            if let Some(old) = &r.extends {
                t.push_str(&format!(" (extends grant {old})"));
            }
        }
        if let Some((g, exp)) = &self.grant {
            t.push_str(&format!(
                " grant {g} until {}",
                jitsudo_core::grant::format_time(*exp)
            ));
        }
        if let Some(c) = self.comment.as_deref().filter(|c| !c.is_empty()) {
            t.push_str(&format!(" — {c}"));
        }
        // Shown to people in a chat room: what would reorder or hide text is written out.
        slack_escape(&jitsudo_core::text::reveal(&t))
    }
}

/// Slack's three control characters in message text.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
    pub dropped: AtomicU64,
}

/// The handlers' side: `send` never waits.
#[derive(Clone)]
pub struct Notifier {
    tx: Option<tokio::sync::mpsc::Sender<Event>>,
    pub stats: Arc<Stats>,
}

impl Notifier {
    pub fn disabled() -> Notifier {
        Notifier {
            tx: None,
            stats: Arc::default(),
        }
    }

    /// Start the delivery task (inside a Tokio runtime).
    pub fn start(hooks: Vec<Webhook>) -> Notifier {
        if hooks.is_empty() {
            return Notifier::disabled();
        }
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let stats: Arc<Stats> = Arc::default();
        tokio::spawn(dispatch(rx, hooks, stats.clone()));
        Notifier {
            tx: Some(tx),
            stats,
        }
    }

    pub fn send(&self, ev: Event) {
        let Some(tx) = &self.tx else { return };
        if let Err(e) = tx.try_send(ev) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "webhook queue full or closed; event dropped");
        }
    }

    pub fn render_metrics(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.stats;
        let name = "jitsudod_webhook_deliveries_total";
        format!(
            "# HELP {name} Webhook deliveries: delivered, failed attempts (retried), given up after {MAX_ATTEMPTS} attempts, dropped (queue full).\n# TYPE {name} counter\n\
             {name}{{result=\"delivered\"}} {}\n{name}{{result=\"failed_attempt\"}} {}\n{name}{{result=\"given_up\"}} {}\n{name}{{result=\"dropped\"}} {}\n",
            get(&s.delivered),
            get(&s.failed_attempts),
            get(&s.given_up),
            get(&s.dropped)
        )
    }
}

async fn dispatch(
    mut rx: tokio::sync::mpsc::Receiver<Event>,
    hooks: Vec<Webhook>,
    stats: Arc<Stats>,
) {
    let agent = agent();
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL_DELIVERIES));
    while let Some(ev) = rx.recv().await {
        for hook in hooks.iter().filter(|h| h.events.contains(&ev.kind)) {
            let delivery = match jitsudo_core::wire::random_hex(12) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "no randomness for a webhook delivery id");
                    continue;
                }
            };
            let body = match hook.format {
                Format::Json => ev.json(&delivery),
                Format::Slack => ev.slack(hook.page_url.as_deref()),
            };
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (hook, agent, stats) = (hook.clone(), agent.clone(), stats.clone());
            let kind = ev.kind;
            tokio::spawn(async move {
                deliver(&agent, &hook, kind, &delivery, body, &stats).await;
                drop(permit);
            });
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .user_agent(concat!("jitsudod/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(system_roots())
                .build(),
        )
        .build()
        .new_agent()
}

/// The system CA bundle, as the hosts trust it (webhooks, the identity provider).
pub fn system_roots() -> ureq::tls::RootCerts {
    let sys = Path::new(jitsudo_net::http::SYSTEM_CA_BUNDLE);
    std::fs::read(sys)
        .ok()
        .map(|pem| {
            ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty())
        .map(|c| ureq::tls::RootCerts::new_with_certs(&c))
        .unwrap_or(ureq::tls::RootCerts::WebPki)
}

async fn deliver(
    agent: &ureq::Agent,
    hook: &Webhook,
    kind: &'static str,
    delivery: &str,
    body: Vec<u8>,
    stats: &Stats,
) {
    let target = redact_url(&hook.url);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        let ts = jitsudo_core::grant::now();
        let sig = signature(&hook.secret, ts, &body);
        let (agent, url, body2, delivery2) = (
            agent.clone(),
            hook.url.clone(),
            body.clone(),
            delivery.to_string(),
        );
        let result = tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .header("content-type", "application/json")
                .header("x-jitsudo-event", kind)
                .header("x-jitsudo-delivery", &delivery2)
                .header("x-jitsudo-timestamp", ts.to_string())
                .header("x-jitsudo-signature", &sig)
                .send(&body2[..])
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("delivery task failed: {e}")));
        match result {
            Ok(code) if (200..300).contains(&code) => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(webhook = %target, event = kind, delivery, attempt, "webhook delivered");
                return;
            }
            other => {
                stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let error = match other {
                    Ok(code) => format!("answered HTTP {code}"),
                    Err(e) => e,
                };
                if attempt < MAX_ATTEMPTS {
                    tracing::warn!(webhook = %target, event = kind, delivery, attempt, %error, retry_in = ?backoff, "webhook delivery failed; will retry");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                } else {
                    stats.given_up.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(webhook = %target, event = kind, delivery, attempt, %error, "webhook delivery failed; giving up");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 (key "Jefe"), with the message split as TIMESTAMP "." BODY
        // would not match it, so check against a direct HMAC of the joined bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let direct = jitsudo_policy::audit::hex(&mac.finalize().into_bytes());
        assert_eq!(
            direct,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = signature(b"secret-secret-secret", 1700000000, b"{}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret-secret-secret").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            s,
            format!(
                "sha256={}",
                jitsudo_policy::audit::hex(&mac.finalize().into_bytes())
            )
        );
    }

    #[test]
    fn urls_are_redacted_and_slack_text_escaped() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://u:p@10.0.0.1:8080/x"),
            "http://10.0.0.1:8080/…"
        );
        assert_eq!(slack_escape("<script>&"), "&lt;script&gt;&amp;");
    }

    #[test]
    fn message_text_writes_out_invisible_characters() {
        // A row stored before such characters were refused.
        let row = crate::model::RequestRow {
            id: "ab".into(),
            host: "web-01".into(),
            user: "alice".into(),
            uid: 1000,
            run_as: "root".into(),
            kind: crate::model::Kind::Exec,
            command: "/usr/bin/id a\u{200b}b".into(),
            reason: "ok \u{202e}gnp.exe".into(),
            duration: 60,
            uses: None,
            allow_exec: false,
            record: false,
            source: None,
            status: crate::model::RequestStatus::Pending,
            rule: "r".into(),
            message: "m".into(),
            approvals_needed: 1,
            approvers: "[]".into(),
            poll_hash: "p".into(),
            created_at: 0,
            decided_at: None,
            decided_by: None,
            ticket: None,
            extends: None,
            chat_approval: true,
            approver_mfa: false,
        };
        let text = Event::new("request.created", "jitsudod")
            .request(&row)
            .comment("fine\u{2066}")
            .text();
        assert!(text.contains("`/usr/bin/id a\\u{200b}b`"), "{text}");
        assert!(text.contains("reason: ok \\u{202e}gnp.exe"), "{text}");
        assert!(text.ends_with("fine\\u{2066}"), "{text}");
        assert!(!text.chars().any(jitsudo_core::text::is_hidden), "{text}");
    }
}
