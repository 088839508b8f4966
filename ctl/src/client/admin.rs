//! `jitsudoctl`'s service commands: register hosts and approvers, list requests,
//! approve, deny, revoke — all over the service API with an approver token (see
//! `connect`) — and `policy check`, which needs no service.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::connect::{auth, service, token, ServiceArgs};
use super::policy;
use super::wire::*;
use crate::config;
use crate::grant::{format_time, human_duration, now};

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Parse a policy file and report the first error with its file and line
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum HostCommand {
    /// Register a host's public key (as printed by `jitsudo --enroll` on the host)
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "PUBKEY")]
        public_key: String,
        #[command(flatten)]
        service: ServiceArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ApproverCommand {
    /// Create an approver and print its API token (shown once; the service keeps only a hash)
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        /// Group the approver belongs to (policy rules name approvers as group:G); repeatable
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// The approver may also register hosts and approvers (the same as --scope admin)
        #[arg(long)]
        admin: bool,
        /// What the token may do: approve (and read), admin (everything), or read (lists,
        /// the audit trail, recordings; no votes, no revocations)
        #[arg(long, value_name = "SCOPE", value_parser = ["approve", "admin", "read"])]
        scope: Option<String>,
        /// How long the token works: a duration (90d, 12h), or never
        #[arg(long, value_name = "DURATION", default_value = "90d")]
        expires: String,
        /// The approver's Slack member id (U…): their clicks on Slack's Approve/Deny buttons count as their votes
        #[arg(long = "slack-id", value_name = "ID")]
        slack_id: Option<String>,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Link an approver to a Slack member id (for votes from Slack's buttons)
    Slack {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "SLACK_ID")]
        slack_id: String,
        #[command(flatten)]
        service: ServiceArgs,
    },
}

pub fn policy_check(file: &Path) -> Result<(), String> {
    let p = policy::load(file).map_err(|e| e.to_string())?;
    println!("{}: {} rule(s) OK", file.display(), p.rules.len());
    for r in &p.rules {
        println!("  line {:<4} {}: {:?}", r.line, r.name, r.decision);
    }
    Ok(())
}

pub fn host_add(name: &str, public_key: &str, args: &ServiceArgs) -> Result<(), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let body = HostAdd {
        name: name.to_string(),
        public_key: public_key.trim().to_string(),
    };
    let _: serde_json::Value = svc
        .post("/v1/admin/hosts", &body, &[("authorization", &auth(&t))])
        .map_err(|e| e.to_string())?;
    println!("host {name} registered");
    Ok(())
}

pub struct TokenTerms<'a> {
    pub scope: Option<&'a str>,
    /// A duration, or `never`.
    pub expires: &'a str,
}

pub fn approver_add(
    name: &str,
    groups: &[String],
    admin: bool,
    slack_id: Option<&str>,
    terms: &TokenTerms,
    args: &ServiceArgs,
) -> Result<(), String> {
    let expires_in = match terms.expires {
        "never" => None,
        d => Some(
            config::parse_duration(d)
                .map_err(|e| format!("--expires {d:?}: {e} (or never)"))?
                .as_secs(),
        ),
    };
    let (svc, t) = (service(args)?, token(args)?);
    let body = ApproverAdd {
        name: name.to_string(),
        groups: groups.to_vec(),
        admin,
        slack_id: slack_id.map(str::to_string),
        scope: terms.scope.map(str::to_string),
        expires_in,
    };
    let answer: ApproverToken = svc
        .post(
            "/v1/admin/approvers",
            &body,
            &[("authorization", &auth(&t))],
        )
        .map_err(|e| e.to_string())?;
    let expiry = match answer.expires_at {
        Some(t) => format!("expires {}", format_time(t)),
        None => "never expires".to_string(),
    };
    eprintln!(
        "approver {} created (scope {}, {expiry}); this token is shown only once:",
        answer.name,
        answer.scope.as_deref().unwrap_or("approve")
    );
    println!("{}", answer.token);
    Ok(())
}

pub fn approver_slack(name: &str, slack_id: &str, args: &ServiceArgs) -> Result<(), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let _: serde_json::Value = svc
        .post(
            &format!("/v1/admin/approvers/{name}/slack"),
            &serde_json::json!({ "slack_id": slack_id }),
            &[("authorization", &auth(&t))],
        )
        .map_err(|e| e.to_string())?;
    println!("approver {name}: Slack member {slack_id}");
    Ok(())
}

fn show(r: &RequestView) -> String {
    // Every stored text is shown with control, bidi and zero-width characters written
    // out: an approver reads exactly what runs, and the terminal takes no escapes.
    let v = |s: &str| jitsudo_core::text::reveal(s).into_owned();
    // An approver must not mistake the files of an edit request for a command to run.
    let what = match r.kind {
        jitsudo_core::grant::Kind::Edit => format!("edit {}", v(&r.command)),
        _ => format!("as {}: {}", v(&r.run_as), v(&r.command)),
    };
    let mut line = format!(
        "{}  {:<8}  {}@{}  {what}\n    reason: {}\n    rule {}: {}",
        v(&r.id),
        v(&r.status),
        v(&r.user),
        v(&r.host),
        v(&r.reason),
        v(&r.rule),
        v(&r.message)
    );
    if r.status == "pending" || !r.approvals.is_empty() {
        let by: Vec<String> = r.approvals.iter().map(|a| v(&a.approver)).collect();
        line.push_str(&format!(
            "\n    approvals {}/{} (from {}){}",
            r.approvals.len(),
            r.approvals_needed,
            v(&r.approvers.join(", ")),
            if by.is_empty() {
                String::new()
            } else {
                format!(": {}", by.join(", "))
            }
        ));
    }
    let uses = r.uses.map_or(String::new(), |u| format!(", {u} use(s)"));
    line.push_str(&format!(
        "\n    asked {} for {}{uses}",
        format_time(r.created_at),
        human_duration(r.duration)
    ));
    if let Some(t) = &r.ticket {
        line.push_str(&format!("\n    ticket {t}"));
    }
    if let Some(old) = &r.extends {
        line.push_str(&format!("\n    extends grant {old}"));
    }
    if let Some(g) = &r.grant_id {
        line.push_str(&format!("\n    grant {}", v(g)));
    }
    line
}

pub fn requests(pending: bool, args: &ServiceArgs) -> Result<(), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let path = if pending {
        "/v1/requests?pending=true"
    } else {
        "/v1/requests"
    };
    let list: Vec<RequestView> = svc
        .get(path, &[("authorization", &auth(&t))])
        .map_err(|e| e.to_string())?;
    if list.is_empty() {
        println!("no {}requests", if pending { "pending " } else { "" });
    }
    for r in &list {
        println!("{}", show(r));
    }
    Ok(())
}

pub fn approve(id: &str, comment: Option<&str>, args: &ServiceArgs) -> Result<(), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let body = ApproveBody {
        comment: comment.unwrap_or_default().to_string(),
    };
    let r: RequestView = svc
        .post(
            &format!("/v1/requests/{id}/approve"),
            &body,
            &[("authorization", &auth(&t))],
        )
        .map_err(|e| e.to_string())?;
    match r.grant_id.as_deref() {
        Some(g) => println!("request {id} approved; grant {g} issued"),
        None => println!(
            "approval recorded: {}/{} for request {id}",
            r.approvals.len(),
            r.approvals_needed
        ),
    }
    Ok(())
}

pub fn deny(id: &str, reason: &str, args: &ServiceArgs) -> Result<(), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let body = ReasonBody {
        reason: reason.to_string(),
    };
    let _: RequestView = svc
        .post(
            &format!("/v1/requests/{id}/deny"),
            &body,
            &[("authorization", &auth(&t))],
        )
        .map_err(|e| e.to_string())?;
    println!("request {id} denied");
    Ok(())
}

pub fn revoke(grant: &str, reason: &str, args: &ServiceArgs) -> Result<(), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let body = ReasonBody {
        reason: reason.to_string(),
    };
    let _: serde_json::Value = svc
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &body,
            &[("authorization", &auth(&t))],
        )
        .map_err(|e| e.to_string())?;
    println!(
        "grant {grant} revoked at {}; hosts deny it after their next jitsudo --sync",
        format_time(now())
    );
    Ok(())
}
