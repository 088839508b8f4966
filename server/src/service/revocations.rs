//! Signed revocation lists, and the cache that keeps them from being signed per call.
//!
//! Two lists exist. A host's own list (`POST /v1/host/sync` with `host_revocations`)
//! names the host and holds the revoked grants issued to it: its size follows that
//! host's grants, not the fleet's. The fleet's list (`GET /v1/revocations`, and the sync
//! of hosts that do not ask for their own) holds every revoked grant, for older hosts.
//!
//! Both are signed with the active key and dated (`issued_at`, in whole seconds), and
//! a host refuses a list older than its `revocation_max_age`. So a signed list is
//! handed out again only within the second it was signed in ([`REUSE_SECONDS`]): a host
//! never gets an older list than a fresh signature would give it, and a flood of
//! requests, however large, costs one signature a second. And only under the same
//! active key, and unchanged:
//!
//! * a host's list is read from the database on every sync (an index range over the
//!   host's live grants) and its signature reused only if the ids are the same, so a
//!   revocation through any replica is in the next sync;
//! * the fleet's list is not read again while its signature is reused: a revocation
//!   through this process drops it at once, one through another replica is in it from
//!   the next second.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, RevocationClaims};
use sha2::{Digest, Sha256};

use crate::service::error::{Error, Result};
use crate::store::Db;

/// How long a signed list is handed out again, in seconds: within the second of its
/// `issued_at`, so that reuse never makes a list look older to a host.
pub const REUSE_SECONDS: i64 = 1;

/// The fleet's signed list, ready to send.
pub struct FleetList {
    pub token: Arc<str>,
    /// `GET /v1/revocations`' JSON body, serialized once.
    pub body: Arc<[u8]>,
    /// A strong entity tag of `body` (quoted, as the header carries it).
    pub etag: Arc<str>,
    signed_at: i64,
    key_id: String,
    generation: u64,
}

struct HostList {
    ids: Vec<String>,
    token: Arc<str>,
    signed_at: i64,
    key_id: String,
}

#[derive(Default)]
pub struct Cache {
    fleet: Mutex<Option<Arc<FleetList>>>,
    /// One signer of the fleet's list at a time: when it goes stale under load, one
    /// request signs it again and the others wait for that one.
    fleet_signer: tokio::sync::Mutex<()>,
    /// Bumped by every revocation; a fleet list read before a revocation committed is
    /// not kept.
    generation: Mutex<u64>,
    hosts: Mutex<HashMap<String, HostList>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fresh(signed_at: i64, key_id: &str, key: &SecretKey, now: i64) -> bool {
    key_id == key.id && (0..REUSE_SECONDS).contains(&(now - signed_at))
}

fn sign(
    issuer: &str,
    key: &SecretKey,
    ids: Vec<String>,
    host: Option<&str>,
    now: i64,
) -> Result<String> {
    let claims = RevocationClaims {
        iss: issuer.to_string(),
        issued_at: now,
        ids,
        host: host.map(str::to_string),
    };
    wire::sign_revocations(&claims, key).map_err(Error::Internal)
}

impl Cache {
    /// A revocation committed (by this process), of a grant for `host` if known: drop
    /// what it makes stale. (A host's list is checked against the database anyway; the
    /// fleet's list is not.)
    pub fn revoked(&self, host: Option<&str>) {
        *lock(&self.generation) += 1;
        *lock(&self.fleet) = None;
        if let Some(host) = host {
            lock(&self.hosts).remove(host);
        }
    }

    /// Forget host lists too old to be handed out again.
    pub fn purge(&self, now: i64) {
        lock(&self.hosts).retain(|_, l| (0..REUSE_SECONDS).contains(&(now - l.signed_at)));
    }

    /// `host`'s own signed list.
    pub async fn host_list(
        &self,
        store: &Db,
        issuer: &str,
        key: &SecretKey,
        host: &str,
        now: i64,
    ) -> Result<Arc<str>> {
        let ids = store.revoked_ids_for_host(host, now).await?;
        if let Some(l) = lock(&self.hosts).get(host) {
            if l.ids == ids && fresh(l.signed_at, &l.key_id, key, now) {
                return Ok(l.token.clone());
            }
        }
        let token: Arc<str> = sign(issuer, key, ids.clone(), Some(host), now)?.into();
        lock(&self.hosts).insert(
            host.to_string(),
            HostList {
                ids,
                token: token.clone(),
                signed_at: now,
                key_id: key.id.clone(),
            },
        );
        Ok(token)
    }

    fn cached_fleet(&self, key: &SecretKey, now: i64) -> Option<Arc<FleetList>> {
        lock(&self.fleet)
            .as_ref()
            .filter(|f| fresh(f.signed_at, &f.key_id, key, now))
            .cloned()
    }

    /// The fleet's signed list.
    pub async fn fleet_list(
        &self,
        store: &Db,
        issuer: &str,
        key: &SecretKey,
        now: i64,
    ) -> Result<Arc<FleetList>> {
        if let Some(f) = self.cached_fleet(key, now) {
            return Ok(f);
        }
        let _signer = self.fleet_signer.lock().await;
        if let Some(f) = self.cached_fleet(key, now) {
            return Ok(f);
        }
        let generation = *lock(&self.generation);
        let ids = store.revoked_ids(now).await?;
        let token = sign(issuer, key, ids, None, now)?;
        let body = serde_json::to_vec(&serde_json::json!({ "revocations": token }))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let digest = Sha256::digest(&body);
        let etag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let list = Arc::new(FleetList {
            token: token.into(),
            body: body.into(),
            etag: format!("\"{etag}\"").into(),
            signed_at: now,
            key_id: key.id.clone(),
            generation,
        });
        let mut slot = lock(&self.fleet);
        // Read before a revocation that has committed since: good for this answer, not
        // for the next ones.
        if list.generation == *lock(&self.generation) {
            *slot = Some(list.clone());
        }
        Ok(list)
    }
}
