//! The service layer: what jitsudod does, without HTTP. Hosts' requests are decided by
//! the policy (`create`), approvers approve, deny and revoke (`approve`, `deny`,
//! `revoke`), hosts poll and sync. Every operation checks its input, decides who may do
//! what, composes the storage steps (one transaction per change, with its audit record),
//! signs grants, counts metrics, logs and queues webhooks. Failures are domain errors
//! (`Error`); the HTTP layer maps them to status codes.
//!
//! A grant is signed here, after storage has counted the approvals and moved the request
//! from `pending` to `approved`, and inserted in the same transaction: a request gets
//! exactly one grant, or none (a failed signature rolls the approval back).
#![forbid(unsafe_code)]

pub mod error;
pub mod fleet;
mod hosts;
pub mod journal;
pub mod oidc;
pub mod recording;
pub mod revocations;
pub mod session;
pub mod slack;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jitsudo_core::grant;
use jitsudo_core::grant::keys::PublicKey;
use jitsudo_core::wire::{self, ApprovalView, NewRequest, RequestView};
use jitsudo_policy::audit::{AuditRecord, ChainBreak};
use jitsudo_policy::policy::Policy;
use sha2::{Digest, Sha256};

use crate::config::ServiceConfig;
use crate::limits::{inc, Metrics};
use crate::store::audit::Entry;
use crate::store::{Db, DbError, Table};
use crate::webhook::{Event, Notifier};
pub use error::{Error, Result};
pub use fleet::LoadedPolicy;

pub use crate::model::{ApprovalRow, Approver, GrantListing, GrantRow, RequestRow, RequestStatus};
pub use crate::store::audit::{Filter as AuditFilter, Verified};
pub use crate::store::recordings::Search as RecordingSearch;

use error::invalid;

/// Pending requests older than this can no longer be approved or denied.
pub const PENDING_TTL: i64 = 24 * 3600;

pub struct Service {
    pub store: Db,
    pub config: ServiceConfig,
    /// The policy and the SHA-256 of its file, swapped together on reload.
    policy: RwLock<LoadedPolicy>,
    /// Seconds added to the real clock when evaluating policy hours and weekdays
    /// (`--fake-now`, for tests only). Grant times always use the real clock.
    pub policy_clock_offset: i64,
    pub metrics: Metrics,
    /// Webhook delivery queue (a no-op without `[[webhook]]`).
    pub notifier: Notifier,
    /// Signed revocation lists, reused while fresh (see `revocations`).
    pub revocation_lists: revocations::Cache,
    /// `[oidc]`: the identity provider people sign in to the web page with.
    pub oidc: Option<Arc<crate::oidc::Provider>>,
}

/// The outcome of one approval, as storage recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    pub status: RequestStatus,
    pub approvals: i64,
    pub needed: i64,
    pub grant: Option<GrantRow>,
}

/// The grant an extension request extends, as far as the decision needs it.
struct Extended {
    /// Extensions already in its chain (0: the grant was never extended).
    done: u32,
    ticket: Option<String>,
}

/// A request after an approver's approval, and its grant if that approval completed it.
#[derive(Clone, Debug)]
pub struct Approval {
    pub request: RequestRow,
    pub grant: Option<GrantRow>,
}

fn now() -> i64 {
    grant::now()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new approver API token (shown once; only its hash is stored).
pub fn new_api_token() -> std::result::Result<String, String> {
    Ok(format!("jt_{}", wire::random_hex(32)?))
}

/// How approver tokens are stored and looked up.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// A token of scope `read` reads only: no votes, no revocations.
fn writable(who: &Approver) -> Result<()> {
    if who.read_only {
        return Err(Error::Forbidden(format!(
            "{}'s token has scope read: it may list and read, not approve, deny or revoke",
            who.name
        )));
    }
    Ok(())
}

/// `who` is named by one of `principals` (`bob`, `group:sre`).
fn named_in(who: &Approver, principals: &[String]) -> bool {
    principals.iter().any(|p| match p.strip_prefix("group:") {
        Some(g) => who.groups.iter().any(|x| x == g),
        None => *p == who.name,
    })
}

fn principals(req: &RequestRow) -> Result<Vec<String>> {
    serde_json::from_str(&req.approvers).map_err(|e| DbError::Backend(e.to_string()).into())
}

/// A request can still be decided: pending and not too old.
fn check_open(req: &RequestRow, now: i64) -> Result<()> {
    if req.status != RequestStatus::Pending {
        return Err(Error::Conflict(format!(
            "request {} is already {}",
            req.id, req.status
        )));
    }
    if now - req.created_at > PENDING_TTL {
        return Err(Error::Conflict(format!(
            "request {} expired unapproved; ask again",
            req.id
        )));
    }
    Ok(())
}

/// Record `who`'s approval of request `id` in one transaction: the request row is
/// locked, the rules checked (open, not their own, named by the rule), the approval
/// added and counted; when it completes the count the request becomes `approved`,
/// `sign` makes its grant and the grant is stored, with the audit records, in the same
/// transaction. Any failure, of `sign` too, rolls everything back.
pub async fn record_approval(
    store: &Db,
    id: &str,
    who: &Approver,
    comment: &str,
    now: i64,
    sign: impl FnOnce(&RequestRow, Vec<String>) -> std::result::Result<GrantRow, String>,
) -> Result<Approved> {
    record_approval_via(store, id, who, comment, Via::Api, now, sign).await
}

/// Where a vote came from, as the audit trail records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The API or the web page (an approver token or a session from one).
    Api,
    /// Slack's buttons (a signed interaction, the approver found by Slack member id).
    Slack,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Slack => "slack",
        }
    }
}

/// [`record_approval`], recording where the vote came from. A vote from chat on a
/// request whose rule takes no chat votes is refused here, whatever the caller checked.
pub async fn record_approval_via(
    store: &Db,
    id: &str,
    who: &Approver,
    comment: &str,
    via: Via,
    now: i64,
    sign: impl FnOnce(&RequestRow, Vec<String>) -> std::result::Result<GrantRow, String>,
) -> Result<Approved> {
    let mut tx = store.write().await?;
    let result = async {
        let req = tx
            .request_for_update(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))?;
        check_open(&req, now)?;
        if via == Via::Slack && !req.chat_approval {
            return Err(Error::Forbidden(format!(
                "rule {} does not take votes from chat; approve request {id} on the web page",
                req.rule
            )));
        }
        if req.user == who.name {
            return Err(Error::Forbidden(format!(
                "{} cannot approve their own request; it needs {} other approver(s)",
                who.name, req.approvals_needed
            )));
        }
        let principals = principals(&req)?;
        if !named_in(who, &principals) {
            return Err(Error::Forbidden(format!(
                "{} may not approve request {id} (rule {} names: {})",
                who.name,
                req.rule,
                principals.join(", ")
            )));
        }
        if req.approver_mfa && !who.mfa() {
            return Err(Error::Forbidden(format!(
                "rule {} (approver_mfa) counts approvals only from a sign-in with MFA: sign in to the web page through the identity provider with a second factor to approve request {id}",
                req.rule
            )));
        }
        tx.insert_approval(id, &who.name, comment, now)
            .await
            .map_err(|e| match e {
                DbError::Conflict(_) => {
                    Error::Conflict(format!("{} has already approved request {id}", who.name))
                }
                other => other.into(),
            })?;
        let names = tx.approvers_of(id).await?;
        let count = names.len() as i64;
        let approval = Entry::new("request.approval", &who.name)
            .user(&req.user)
            .host(&req.host)
            .request(id)
            .detail(serde_json::json!({
                "comment": comment,
                "approvals": count,
                "needed": req.approvals_needed,
                "rule": req.rule,
                "via": via.as_str(),
                "auth": who.auth_detail(),
            }));
        if count < req.approvals_needed {
            tx.audit(now, &[approval]).await?;
            return Ok(Approved {
                status: RequestStatus::Pending,
                approvals: count,
                needed: req.approvals_needed,
                grant: None,
            });
        }
        if !tx.set_approved(id, &names.join(","), now).await? {
            return Err(Error::Conflict(format!(
                "request {id} was decided meanwhile"
            )));
        }
        let approved = Entry::new("request.approved", &who.name)
            .user(&req.user)
            .host(&req.host)
            .request(id)
            .detail(serde_json::json!({ "approved_by": names, "rule": req.rule }));
        let grant = sign(&req, names).map_err(Error::Internal)?;
        tx.insert_grant(&grant).await?;
        let replaced = match &req.extends {
            Some(old) => Some(tx.revoke_replaced(old, &grant.id, &who.name, now).await?),
            None => None,
        };
        let issued = crate::store::audit::grant_issued(&grant, &who.name);
        let mut entries = vec![approval, approved, issued];
        entries.extend(replaced);
        tx.audit(now, &entries).await?;
        Ok(Approved {
            status: RequestStatus::Approved,
            approvals: count,
            needed: req.approvals_needed,
            grant: Some(grant),
        })
    }
    .await;
    tx.finish(result).await
}

/// Record `who`'s denial of request `id` in one transaction: open, and `who` is an
/// admin or named by the rule.
pub async fn record_denial(
    store: &Db,
    id: &str,
    who: &Approver,
    reason: &str,
    now: i64,
) -> Result<()> {
    record_denial_via(store, id, who, reason, Via::Api, now).await
}

/// [`record_denial`], recording where the vote came from.
pub async fn record_denial_via(
    store: &Db,
    id: &str,
    who: &Approver,
    reason: &str,
    via: Via,
    now: i64,
) -> Result<()> {
    let mut tx = store.write().await?;
    let result = async {
        let req = tx
            .request_for_update(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))?;
        check_open(&req, now)?;
        if via == Via::Slack && !req.chat_approval {
            return Err(Error::Forbidden(format!(
                "rule {} does not take votes from chat; decide request {id} on the web page",
                req.rule
            )));
        }
        if !who.admin && !named_in(who, &principals(&req)?) {
            return Err(Error::Forbidden(format!(
                "{} may not decide request {id}",
                who.name
            )));
        }
        let message = format!("denied by {}: {reason}", who.name);
        if !tx.set_denied(id, &message, &who.name, now).await? {
            return Err(Error::Conflict(format!(
                "request {id} was decided meanwhile"
            )));
        }
        let e = Entry::new("request.denied", &who.name)
            .user(&req.user)
            .host(&req.host)
            .request(id)
            .detail(serde_json::json!({ "reason": reason, "rule": req.rule, "via": via.as_str() }));
        tx.audit(now, &[e]).await?;
        Ok(())
    }
    .await;
    tx.finish(result).await
}

fn status_of(row: &RequestRow, approvals: u32, grant: Option<String>) -> wire::RequestStatus {
    status_with(row, approvals, grant, &[])
}

/// The status as the requester sees it; once people decided, who did and what they said.
fn status_with(
    row: &RequestRow,
    approvals: u32,
    grant: Option<String>,
    votes: &[ApprovalRow],
) -> wire::RequestStatus {
    let by_people = row
        .decided_by
        .as_deref()
        .is_some_and(|d| !d.starts_with("policy:"));
    let (decided_by, comments) = match row.status {
        RequestStatus::Approved if by_people => (
            votes.iter().map(|v| v.approver.clone()).collect(),
            votes
                .iter()
                .filter(|v| !v.comment.is_empty())
                .map(|v| format!("{}: {}", v.approver, v.comment))
                .collect(),
        ),
        RequestStatus::Denied if by_people => {
            (row.decided_by.iter().cloned().collect(), Vec::new())
        }
        _ => (Vec::new(), Vec::new()),
    };
    wire::RequestStatus {
        decided_by,
        comments,
        id: row.id.clone(),
        status: row.status.to_string(),
        rule: row.rule.clone(),
        message: row.message.clone(),
        approvals,
        approvals_needed: row.approvals_needed as u32,
        approvers: serde_json::from_str(&row.approvers).unwrap_or_default(),
        grant,
        poll_key: None,
    }
}

fn view_of(row: RequestRow, approvals: Vec<ApprovalRow>, grant_id: Option<String>) -> RequestView {
    RequestView {
        id: row.id,
        host: row.host,
        user: row.user,
        run_as: row.run_as,
        kind: row.kind,
        command: row.command,
        reason: row.reason,
        status: row.status.to_string(),
        rule: row.rule,
        message: row.message,
        created_at: row.created_at,
        duration: row.duration as u64,
        uses: row.uses.map(|u| u as u32),
        approvals_needed: row.approvals_needed as u32,
        approvers: serde_json::from_str(&row.approvers).unwrap_or_default(),
        approvals: approvals
            .into_iter()
            .map(|a| ApprovalView {
                approver: a.approver,
                comment: a.comment,
                at: a.at,
            })
            .collect(),
        grant_id,
        ticket: row.ticket,
        extends: row.extends,
    }
}

impl Service {
    pub fn new(
        store: Db,
        config: ServiceConfig,
        policy: LoadedPolicy,
        policy_clock_offset: i64,
        notifier: Notifier,
    ) -> Service {
        let config_oidc = config.oidc.as_ref();
        let oidc = oidc::provider(config_oidc);
        Service {
            store,
            config,
            policy: RwLock::new(policy),
            policy_clock_offset,
            metrics: Metrics::default(),
            notifier,
            revocation_lists: Default::default(),
            oidc,
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.loaded_policy().policy
    }

    /// The policy with the hash of its file.
    pub fn loaded_policy(&self) -> LoadedPolicy {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_policy(&self, p: LoadedPolicy) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = p;
    }

    // ---- health and metrics -------------------------------------------------------------

    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// The Prometheus text of /metrics.
    pub async fn metrics_text(&self) -> Result<String> {
        let pending = self.store.count(Table::Pending).await?;
        let loaded = self.loaded_policy();
        let mut text = self.metrics.render(pending, loaded.policy.rules.len());
        text.push_str(&fleet::render_policy_info(
            &loaded.hash,
            &self.config.replica,
        ));
        let fleet_key = self.store.fleet_active_key().await?;
        text.push_str(&fleet::render_key_info(
            &self.config.active_key().id,
            fleet_key.as_deref().unwrap_or(""),
            &self.config.replica,
        ));
        text.push_str(&self.notifier.render_metrics());
        Ok(text)
    }

    // ---- approvers ----------------------------------------------------------------------

    /// The approver holding `token` (the API's bearer token, the web page's sign-in).
    pub async fn authenticate(&self, token: &str) -> Result<Approver> {
        match self
            .store
            .approver_by_token_hash(&sha256_hex(token.trim()))
            .await?
        {
            Some(a) => Ok(a),
            None => {
                inc(&self.metrics.approver_auth_failures);
                Err(Error::Unauthenticated(
                    "unknown approver token (or it expired: jitsudoctl approver add makes a new one)"
                        .into(),
                ))
            }
        }
    }

    /// The approver whose token hashes to `hash`, if it still exists (web sessions keep
    /// the hash, so a removed approver loses the page at once).
    pub async fn approver_by_token_hash(&self, hash: &str) -> Result<Option<Approver>> {
        Ok(self.store.approver_by_token_hash(hash).await?)
    }

    /// Views of requests, from three queries whatever their number. Grants are read
    /// before approvals, and a request read as undecided whose grant exists is read
    /// again, so that a view never shows a grant on a request that still looks pending
    /// (grant and status are committed together).
    async fn views(&self, mut rows: Vec<RequestRow>) -> Result<Vec<RequestView>> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let grants = self.store.grants_of(&ids).await?;
        let stale: Vec<&str> = rows
            .iter()
            .filter(|r| r.status != RequestStatus::Approved && grants.contains_key(&r.id))
            .map(|r| r.id.as_str())
            .collect();
        let fresh: HashMap<String, RequestRow> = self
            .store
            .requests(&stale)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut approvals = self.store.approvals_of(&ids).await?;
        for row in rows.iter_mut() {
            if let Some(f) = fresh.get(&row.id) {
                *row = f.clone();
            }
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let a = approvals.remove(&row.id).unwrap_or_default();
                let g = grants.get(&row.id).map(|g| g.id.clone());
                view_of(row, a, g)
            })
            .collect())
    }

    /// The view of one request row.
    pub async fn view(&self, row: RequestRow) -> Result<RequestView> {
        let id = row.id.clone();
        self.views(vec![row])
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))
    }

    /// The newest requests (pending ones only with `pending_only`), at most `limit`.
    pub async fn list(&self, pending_only: bool, limit: i64) -> Result<Vec<RequestView>> {
        let rows = self.store.list_requests(pending_only, limit).await?;
        self.views(rows).await
    }

    pub async fn show(&self, id: &str) -> Result<RequestView> {
        validate::request_id(id)?;
        let row = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))?;
        self.view(row).await
    }

    /// Approve request `id` as `who`; the request as it is afterwards, with the grant if
    /// this approval completed it.
    pub async fn approve(&self, who: &Approver, id: &str, comment: &str) -> Result<Approval> {
        self.approve_via(who, id, comment, Via::Api).await
    }

    /// [`Service::approve`], for a vote from `via`.
    pub async fn approve_via(
        &self,
        who: &Approver,
        id: &str,
        comment: &str,
        via: Via,
    ) -> Result<Approval> {
        writable(who)?;
        validate::request_id(id)?;
        validate::comment(comment)?;
        let now = now();
        let approved = record_approval_via(
            &self.store,
            id,
            who,
            comment,
            via,
            now,
            |req, names| self.sign_grant(req, names, now),
        )
        .await
        .inspect_err(
            |e| tracing::info!(request = %id, approver = %who.name, error = %e, "approval refused"),
        )?;
        inc(&self.metrics.approvals);
        if let Some(g) = &approved.grant {
            inc(&self.metrics.grants_issued);
            tracing::info!(request = %id, approver = %who.name, grant = %g.id, "approved; grant issued");
        } else {
            tracing::info!(request = %id, approver = %who.name, approvals = approved.approvals, needed = approved.needed, "approval recorded");
        }
        let row = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))?;
        if let Some(g) = &approved.grant {
            self.notifier.send(
                Event::new("request.approved", &who.name)
                    .request(&row)
                    .comment(comment),
            );
            self.notifier.send(
                Event::new("grant.issued", &who.name)
                    .request(&row)
                    .grant(&g.id, g.exp),
            );
            if let Some(old) = &row.extends {
                self.replaced_event(old, &g.id, &who.name).await;
            }
            let votes = self.store.approvals(id).await?;
            self.decided_event(&row, &who.name, &votes).await;
        }
        Ok(Approval {
            request: row,
            grant: approved.grant,
        })
    }

    /// Deny request `id` as `who`; the request as it is afterwards.
    pub async fn deny(&self, who: &Approver, id: &str, reason: &str) -> Result<RequestRow> {
        self.deny_via(who, id, reason, Via::Api).await
    }

    /// [`Service::deny`], for a vote from `via`.
    pub async fn deny_via(
        &self,
        who: &Approver,
        id: &str,
        reason: &str,
        via: Via,
    ) -> Result<RequestRow> {
        writable(who)?;
        validate::request_id(id)?;
        validate::reason(reason)?;
        record_denial_via(&self.store, id, who, reason, via, now()).await?;
        inc(&self.metrics.denials_by_approver);
        tracing::info!(request = %id, approver = %who.name, reason = %reason, "denied by approver");
        let row = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))?;
        self.notifier.send(
            Event::new("request.denied", &who.name)
                .request(&row)
                .comment(reason),
        );
        let denial = ApprovalRow {
            approver: who.name.clone(),
            comment: reason.to_string(),
            at: now(),
        };
        self.decided_event(&row, &who.name, &[denial]).await;
        Ok(row)
    }

    /// `request.decided`: people decided `row`; the event names the requester (and
    /// their Slack member id when an approver of that name has one), the decision, who
    /// decided and what they said.
    async fn decided_event(&self, row: &RequestRow, actor: &str, votes: &[ApprovalRow]) {
        let slack = match self.store.slack_id_of(&row.user).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(request = %row.id, error = %e, "cannot look up the requester's Slack id");
                None
            }
        };
        let comment = votes
            .iter()
            .filter(|v| !v.comment.is_empty())
            .map(|v| format!("{}: {}", v.approver, v.comment))
            .collect::<Vec<_>>()
            .join("; ");
        self.notifier.send(
            Event::new("request.decided", actor)
                .request(row)
                .comment(&comment)
                .decided(votes.iter().map(|v| v.approver.clone()).collect(), slack),
        );
    }

    /// `grant.revoked` for the grant an approved extension replaced.
    async fn replaced_event(&self, old: &str, new: &str, actor: &str) {
        let mut ev = Event::new("grant.revoked", actor)
            .comment(&format!("replaced by grant {new} (extension)"));
        if let Ok(Some(g)) = self.store.grant(old).await {
            ev = ev.grant(&g.id, g.exp);
            if let Ok(Some(r)) = self.store.request(&g.request_id).await {
                ev = ev.request(&r);
            }
        }
        inc(&self.metrics.revocations);
        self.notifier.send(ev);
    }

    /// What an extension request (`jitsudo --extend GRANT`) extends: the caller's own
    /// grant on this host, unrevoked and unexpired, for exactly the command asked again;
    /// and how many extensions its chain holds so far.
    async fn extension_of(
        &self,
        host: &str,
        r: &NewRequest,
        command: &str,
        old: &str,
        now: i64,
    ) -> Result<Extended> {
        validate::grant_id(old)?;
        let not_yours = || Error::NotFound(format!("no grant {old} of {} on {host}", r.user));
        let grant = self.store.grant(old).await?.ok_or_else(not_yours)?;
        if grant.host != host || grant.user != r.user {
            return Err(not_yours());
        }
        if self.store.is_revoked(old).await? {
            return Err(Error::Conflict(format!(
                "grant {old} has been revoked (or extended already); ask again with jitsudo --request"
            )));
        }
        if grant.exp <= now {
            return Err(Error::Conflict(format!(
                "grant {old} has expired; ask again with jitsudo --request"
            )));
        }
        let current = self
            .store
            .request(&grant.request_id)
            .await?
            .ok_or_else(not_yours)?;
        if current.kind != r.kind || current.run_as != r.run_as || current.command != command {
            return Err(invalid(format!(
                "an extension of grant {old} asks for its command again ({} as {}), not another",
                current.command, current.run_as
            )));
        }
        // Count the links back to the first grant; the policy bounds them, far below this.
        let mut done = 0u32;
        let mut link = current.clone();
        while let Some(prev) = link.extends.clone() {
            done += 1;
            if done > 1000 {
                return Err(Error::Internal(format!(
                    "the extension chain of grant {old} does not end"
                )));
            }
            let Some(g) = self.store.grant(&prev).await? else {
                break;
            };
            let Some(req) = self.store.request(&g.request_id).await? else {
                break;
            };
            link = req;
        }
        Ok(Extended {
            done,
            ticket: current.ticket,
        })
    }

    /// Give approver `name` a Slack member id, as admin `who`.
    pub async fn set_slack_id(&self, who: &Approver, name: &str, slack_id: &str) -> Result<()> {
        slack::check_member_id(slack_id)?;
        self.store
            .set_slack_id(name, slack_id, &who.name, now())
            .await?;
        tracing::info!(approver = %name, slack_id = %slack_id, by = %who.name, "approver Slack id set");
        Ok(())
    }

    /// Revoke grant `id` as `who`. False if it was already revoked.
    pub async fn revoke(&self, who: &Approver, id: &str, reason: &str) -> Result<bool> {
        writable(who)?;
        validate::grant_id(id)?;
        validate::reason(reason)?;
        let revoked = self.store.revoke(id, &who.name, reason, now()).await?;
        if revoked {
            self.revocation_lists.revoked(None);
            inc(&self.metrics.revocations);
            let mut ev = Event::new("grant.revoked", &who.name).comment(reason);
            if let Some(g) = self.store.grant(id).await? {
                self.revocation_lists.revoked(Some(&g.host));
                ev = ev.grant(&g.id, g.exp);
                if let Some(r) = self.store.request(&g.request_id).await? {
                    ev = ev.request(&r);
                }
            }
            self.notifier.send(ev);
        }
        tracing::info!(grant = %id, by = %who.name, reason = %reason, new = revoked, "grant revoked");
        Ok(revoked)
    }

    /// The newest grants, for the web page.
    pub async fn recent_grants(&self, limit: i64) -> Result<Vec<GrantListing>> {
        Ok(self.store.recent_grants(limit).await?)
    }

    // ---- admins -------------------------------------------------------------------------

    /// `who`, if an admin.
    pub fn require_admin(&self, who: Approver) -> Result<Approver> {
        if !who.admin {
            return Err(Error::Forbidden(format!("{} is not an admin", who.name)));
        }
        Ok(who)
    }

    /// Register host `name` with its public key (PASERK), as admin `who`.
    pub async fn add_host(&self, who: &Approver, name: &str, public_key: &str) -> Result<()> {
        validate::host_name(name)?;
        let key = PublicKey::from_paserk(public_key).map_err(invalid)?;
        self.store
            .add_host_by(name, &key.to_paserk(), &who.name, now())
            .await?;
        tracing::info!(host = %name, by = %who.name, "host registered");
        Ok(())
    }

    /// Create an approver, as admin `who`; its API token (shown once).
    pub async fn add_approver(
        &self,
        who: &Approver,
        name: &str,
        groups: &[String],
        admin: bool,
    ) -> Result<String> {
        let scope = if admin { "admin" } else { "approve" };
        Ok(self
            .add_approver_with(who, name, groups, Some(scope), None)
            .await?
            .0)
    }

    /// Create an approver whose token has `scope` (`approve`, `admin`, `read`) and
    /// stops working after `expires_in` seconds (None: never): the token, its scope and
    /// when it expires.
    pub async fn add_approver_with(
        &self,
        who: &Approver,
        name: &str,
        groups: &[String],
        scope: Option<&str>,
        expires_in: Option<u64>,
    ) -> Result<(String, String, Option<i64>)> {
        if !grant::valid_user_name(name) {
            return Err(invalid(format!("{name:?} is not a valid approver name")));
        }
        if groups.iter().any(|g| !grant::valid_user_name(g)) {
            return Err(invalid("group names must be valid names"));
        }
        let scope = scope.unwrap_or("approve");
        if !["approve", "admin", "read"].contains(&scope) {
            return Err(invalid(format!(
                "scope {scope:?} is not approve, admin or read"
            )));
        }
        let expires_at = match expires_in {
            None => None,
            Some(s) if (60..=10 * 365 * 86400).contains(&s) => Some(now() + s as i64),
            Some(_) => {
                return Err(invalid(
                    "expires_in must be between 60 seconds and 10 years",
                ))
            }
        };
        let admin = scope == "admin";
        let token = new_api_token().map_err(Error::Internal)?;
        self.store
            .add_approver_by(name, groups, &token_hash(&token), admin, &who.name, now())
            .await?;
        self.store.set_token_terms(name, scope, expires_at).await?;
        tracing::info!(approver = %name, groups = ?groups, scope, expires_at = ?expires_at, by = %who.name, "approver added");
        Ok((token, scope.to_string(), expires_at))
    }

    // ---- audit trail --------------------------------------------------------------------

    /// Audit records matching `f` (any approver may search: auditors get an approver
    /// token that no policy rule names), including everything committed before.
    pub async fn audit_search(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        for v in [&f.user, &f.host, &f.grant, &f.request]
            .into_iter()
            .flatten()
        {
            if v.is_empty() || v.len() > 256 {
                return Err(invalid("filter values must be 1-256 characters"));
            }
        }
        // What committed before this search is in its answer.
        self.store.audit_seal().await?;
        Ok(self.store.audit_search(f).await?)
    }

    /// The service's own walk of the whole chain.
    pub async fn audit_verify(&self) -> Result<std::result::Result<Verified, ChainBreak>> {
        self.store.audit_seal().await?;
        Ok(self.store.audit_verify().await?)
    }

    // ---- several replicas (see `fleet`) ---------------------------------------------------

    /// Count a request against the fleet's limit for `bucket`.
    async fn limited(&self, bucket: &str, per_minute: u32, what: &str) -> Result<()> {
        fleet::limited(&self.store, &self.metrics, bucket, per_minute, what).await
    }

    /// Record `policy.loaded` for the current policy (`why`: start, reload).
    pub async fn record_policy_loaded(&self, why: &str) -> Result<()> {
        let c = &self.config;
        fleet::record_policy_loaded(
            &self.store,
            &c.replica,
            &c.policy,
            &self.loaded_policy(),
            why,
        )
        .await
    }

    /// Make the configured active key the fleet's (recorded once per change).
    pub async fn record_active_key(&self) -> Result<fleet::KeyChange> {
        fleet::activate_key(&self.store, self.config.active_key(), &self.config.replica).await
    }

    /// Remove expired web sessions and old rate-limit windows.
    pub async fn sweep_shared_state(&self) -> Result<()> {
        fleet::sweep(&self.store).await
    }

    // ---- housekeeping -------------------------------------------------------------------

    /// Forget host nonces too old to be accepted again anyway.
    pub async fn purge_nonces(&self) -> Result<u64> {
        let before = now() - 2 * wire::HOST_CLOCK_WINDOW;
        Ok(self.store.purge_nonces(before).await?)
    }
}
