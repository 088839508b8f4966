//! What hosts ask of the service, each in a host-signed envelope: a new request (decided
//! by the policy, or left pending for approvers), its status, a sync (the host's grants
//! and its own revocation list), and the uploads of its journal and recordings.
#![forbid(unsafe_code)]

use std::sync::Arc;

use jitsudo_core::grant::keys::PublicKey;
use jitsudo_core::grant::{self, Claims, Kind};
use jitsudo_core::wire::{
    self, HostEnvelope, JournalAck, JournalUpload, NewRequest, Signed, SyncRequest, SyncResponse,
    SyncedGrant,
};
use jitsudo_policy::policy::{Ask, Outcome};

use super::*;

impl Service {
    // ---- hosts --------------------------------------------------------------------------

    /// Verify a host envelope: registered host, signature, path, time and a fresh nonce.
    pub async fn open_host_envelope(&self, signed: Signed, path: &str) -> Result<HostEnvelope> {
        let fail = |m: String| {
            inc(&self.metrics.host_auth_failures);
            tracing::warn!(error = %m, "host request rejected");
            m
        };
        let host = wire::envelope_host(&signed.envelope).map_err(|e| invalid(fail(e)))?;
        let Some(key) = self.store.host_key(&host).await? else {
            return Err(Error::Unauthenticated(fail(format!(
                "host {host:?} is not registered; an admin registers it with: jitsudoctl host add {host} PUBLIC_KEY (printed by jitsudo --enroll)"
            ))));
        };
        let key = PublicKey::from_paserk(&key).map_err(internal)?;
        let env = wire::open_envelope(&signed.envelope, &key, &host, path, now())
            .map_err(|e| Error::Unauthenticated(fail(e)))?;
        // The nonce and the host's rate count are one transaction: one commit a request.
        let bucket = format!("host:{host}");
        let now = now();
        let (start, _) = fleet::rate_window(now);
        let Some(counts) = self
            .store
            .spend_nonce_and_count(
                (&host, &env.nonce, now),
                (&bucket, start, fleet::previous_window(start)),
            )
            .await?
        else {
            return Err(Error::Unauthenticated(fail(
                "replayed request: this nonce was already used".into(),
            )));
        };
        fleet::check_counted(
            &self.store,
            &self.metrics,
            (&bucket, start),
            counts,
            self.config.limits.host_per_minute,
            &format!("host {host}"),
        )
        .await?;
        Ok(env)
    }

    pub(super) fn sign_grant(
        &self,
        req: &RequestRow,
        approved_by: Vec<String>,
        now: i64,
    ) -> std::result::Result<GrantRow, String> {
        let key = self.config.active_key();
        let claims = Claims {
            jti: grant::new_grant_id()?,
            iss: self.config.issuer.clone(),
            sub: req.user.clone(),
            host: req.host.clone(),
            run_as: req.run_as.clone(),
            commands: match req.kind {
                Kind::Edit => req.command.split(' ').map(str::to_string).collect(),
                _ => vec![req.command.clone()],
            },
            nbf: grant::format_time(now),
            exp: grant::format_time(now + req.duration),
            iat: grant::format_time(now),
            uses: req.uses.map(|u| u as u32),
            kind: req.kind,
            reason: req.reason.clone(),
            approved_by,
            request: Some(req.id.clone()),
            session_bound: false,
            exec: req.allow_exec,
            record: req.record,
            ticket: req.ticket.clone(),
            extends: req.extends.clone(),
        };
        let token = grant::sign(&claims, key)?;
        Ok(GrantRow {
            id: claims.jti,
            request_id: req.id.clone(),
            host: req.host.clone(),
            user: req.user.clone(),
            token,
            key_id: key.id.clone(),
            exp: now + req.duration,
            created_at: now,
        })
    }

    /// A host's new request (from an opened envelope): checked, decided by the policy,
    /// stored with its grant when the policy grants it at once. The answer carries the
    /// poll key, the host's capability for polling this request.
    pub async fn create(&self, env: HostEnvelope) -> Result<wire::RequestStatus> {
        let r: NewRequest = serde_json::from_value(env.body)
            .map_err(|e| invalid(format!("invalid request: {e}")))?;
        let (command, source) = validate::request(&r)?;
        self.limited(
            &format!("user:{}/{}", env.host, r.user),
            self.config.limits.user_per_minute,
            &format!("user {} on {}", r.user, env.host),
        )
        .await?;

        let now = now();
        let extension = match &r.extends {
            None => None,
            Some(old) => Some(self.extension_of(&env.host, &r, &command, old, now).await?),
        };
        // An extension keeps the ticket of the grant it extends unless it names another.
        let ticket = r
            .ticket
            .clone()
            .or_else(|| extension.as_ref().and_then(|e| e.ticket.clone()));
        let LoadedPolicy {
            policy,
            hash: policy_hash,
        } = self.loaded_policy();
        let ask = Ask {
            user: &r.user,
            groups: &r.groups,
            host: &env.host,
            run_as: &r.run_as,
            kind: r.kind,
            path: &r.argv[0],
            args: &r.argv[1..],
            reason: &r.reason,
            duration: r.duration,
            once: r.once,
            source,
            now: now + self.policy_clock_offset,
            ticket: ticket.as_deref(),
            extension: extension.as_ref().map(|e| e.done),
        };
        let decision = policy.decide(&ask);
        let poll_key = wire::random_hex(16).map_err(internal)?;
        let mut row = RequestRow {
            id: wire::random_hex(8).map_err(internal)?,
            host: env.host.clone(),
            user: r.user.clone(),
            uid: r.uid as i64,
            run_as: r.run_as.clone(),
            kind: r.kind,
            command,
            reason: r.reason.clone(),
            duration: 0,
            uses: None,
            allow_exec: false,
            record: false,
            ticket: ticket.clone(),
            extends: r.extends.clone(),
            chat_approval: true,
            approver_mfa: false,
            source: r.source.clone(),
            status: RequestStatus::Pending,
            rule: decision.rule.clone(),
            message: String::new(),
            approvals_needed: 0,
            approvers: "[]".into(),
            poll_hash: sha256_hex(&poll_key),
            created_at: now,
            decided_at: None,
            decided_by: None,
        };
        let mut grant = None;
        match &decision.outcome {
            Outcome::Auto(terms) => {
                inc(&self.metrics.decisions_auto);
                row.duration = terms.duration as i64;
                row.uses = terms.uses.map(i64::from);
                row.allow_exec = terms.allow_exec;
                row.record = terms.record;
                row.status = RequestStatus::Approved;
                row.message = format!("approved automatically by policy rule {}", decision.rule);
                row.decided_at = Some(now);
                row.decided_by = Some(format!("policy:{}", decision.rule));
                grant = Some(
                    self.sign_grant(&row, vec![format!("policy:{}", decision.rule)], now)
                        .map_err(Error::Internal)?,
                );
            }
            Outcome::Approve {
                terms,
                approvals,
                approvers,
                chat_approval,
                approver_mfa,
            } => {
                row.chat_approval = *chat_approval;
                row.approver_mfa = *approver_mfa;
                inc(&self.metrics.decisions_approve);
                row.duration = terms.duration as i64;
                row.uses = terms.uses.map(i64::from);
                row.allow_exec = terms.allow_exec;
                row.record = terms.record;
                row.status = RequestStatus::Pending;
                row.approvals_needed = *approvals as i64;
                let names: Vec<String> = approvers.iter().map(|p| p.to_string()).collect();
                row.message = format!(
                    "waiting for {approvals} approval(s) from {} (rule {})",
                    names.join(", "),
                    decision.rule
                );
                row.approvers = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
            }
            Outcome::Deny(why) => {
                inc(&self.metrics.decisions_deny);
                row.status = RequestStatus::Denied;
                row.message = why.clone();
                row.decided_at = Some(now);
                row.decided_by = Some(format!("policy:{}", decision.rule));
            }
        }
        self.store
            .insert_decided_request(&row, grant.as_ref(), &policy_hash)
            .await?;
        if grant.is_some() {
            inc(&self.metrics.grants_issued);
        }
        {
            let n = &self.notifier;
            n.send(Event::new("request.created", format!("host:{}", row.host)).request(&row));
            let policy = format!("policy:{}", row.rule);
            match (&grant, row.status) {
                (Some(g), _) => {
                    n.send(Event::new("request.approved", &policy).request(&row));
                    n.send(
                        Event::new("grant.issued", &policy)
                            .request(&row)
                            .grant(&g.id, g.exp),
                    );
                    if let Some(old) = &row.extends {
                        self.replaced_event(old, &g.id, &policy).await;
                    }
                }
                (None, RequestStatus::Denied) => n.send(
                    Event::new("request.denied", &policy)
                        .request(&row)
                        .comment(&row.message),
                ),
                _ => {}
            }
        }
        tracing::info!(
            request = %row.id, host = %row.host, user = %row.user, run_as = %row.run_as,
            command = %row.command, rule = %row.rule, status = %row.status,
            grant = grant.as_ref().map(|g| g.id.as_str()).unwrap_or("-"), policy_hash = %policy_hash, "decision"
        );
        let mut status = status_of(&row, 0, grant.map(|g| g.token));
        status.poll_key = Some(poll_key);
        Ok(status)
    }

    /// A host polls its request `id` with the poll key it was given.
    pub async fn host_status(&self, id: &str, poll_key: &str) -> Result<wire::RequestStatus> {
        validate::request_id(id)?;
        let row = self.store.request(id).await?;
        let Some(row) = row.filter(|r| r.poll_hash == sha256_hex(poll_key)) else {
            return Err(Error::NotFound(format!(
                "no request {id} for this poll key"
            )));
        };
        let votes = self.store.approvals(id).await?;
        let grant = self.store.grant_for_request(id).await?.map(|g| g.token);
        Ok(status_with(&row, votes.len() as u32, grant, &votes))
    }

    /// The fleet's revocation list, signed with the active key (reused while fresh).
    pub async fn signed_revocations(&self) -> Result<Arc<revocations::FleetList>> {
        self.revocation_lists
            .fleet_list(
                &self.store,
                &self.config.issuer,
                self.config.active_key(),
                now(),
            )
            .await
    }

    /// A host's sync (from an opened envelope): its live grants and a revocation list,
    /// its own when it asks for it (see `revocations`), else the fleet's.
    pub async fn sync(&self, env: HostEnvelope) -> Result<SyncResponse> {
        let body: SyncRequest = serde_json::from_value(env.body)
            .map_err(|e| invalid(format!("invalid sync request: {e}")))?;
        let now = now();
        let grants = self
            .store
            .grants_for_host(&env.host, now)
            .await?
            .into_iter()
            .map(|g| SyncedGrant {
                user: g.user,
                token: g.token,
            })
            .collect();
        let revocations = if body.host_revocations {
            self.revocation_lists
                .host_list(
                    &self.store,
                    &self.config.issuer,
                    self.config.active_key(),
                    &env.host,
                    now,
                )
                .await?
                .to_string()
        } else {
            self.signed_revocations().await?.token.to_string()
        };
        inc(&self.metrics.syncs);
        Ok(SyncResponse {
            grants,
            revocations,
        })
    }

    /// A host's journal upload (from an opened envelope). Each (host, seq) is stored
    /// once; the answer says how far this host's chain is stored.
    pub async fn host_journal(&self, env: HostEnvelope) -> Result<JournalAck> {
        let upload: JournalUpload = serde_json::from_value(env.body)
            .map_err(|e| invalid(format!("invalid journal upload: {e}")))?;
        let mut records = Vec::with_capacity(upload.records.len());
        for (i, line) in upload.records.iter().enumerate() {
            let r = journal::parse(line)
                .map_err(|e| invalid(format!("journal record {}: {e}", i + 1)))?;
            if r.host != env.host {
                return Err(invalid(format!(
                    "journal record {} is for host {:?}, not {:?}",
                    r.seq, r.host, env.host
                )));
            }
            records.push((r, line.clone()));
        }
        let through = journal::store(&self.store, &env.host, &records, now()).await?;
        Ok(JournalAck {
            stored_through: through,
        })
    }

    /// A host's recording upload step (from an opened envelope).
    pub async fn host_recording(&self, env: HostEnvelope) -> Result<wire::RecordingAck> {
        let body: wire::RecordingUpload = serde_json::from_value(env.body)
            .map_err(|e| invalid(format!("invalid recording upload: {e}")))?;
        recording::upload(
            &self.store,
            &env.host,
            body,
            self.config.limits.max_recording_bytes,
            now(),
        )
        .await
    }

    /// Complete recordings matching the auditor's search, newest first.
    pub async fn recordings(&self, s: &RecordingSearch) -> Result<Vec<wire::RecordingView>> {
        recording::search(&self.store, s).await
    }

    /// One complete recording with its files.
    pub async fn recording(&self, host: &str, id: &str) -> Result<wire::RecordingDownload> {
        recording::fetch(&self.store, host, id).await
    }
}
