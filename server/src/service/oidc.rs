//! People signing in to the web page through the identity provider (`[oidc]`).
//!
//! * `oidc_start` sends the browser to the provider: a fresh `state`, `nonce` and PKCE
//!   verifier, kept as a pending login in the database (by the SHA-256 of `state`) for
//!   `LOGIN_SECS`, so that any replica can take the callback.
//! * `oidc_finish` takes that pending login (once: a replayed or forged `state` finds
//!   nothing), exchanges the code, validates the ID token (`crate::oidc`) and opens a
//!   web session for the person it names, with their groups and how they authenticated
//!   (`amr`, `acr`, whether that was MFA). Groups count for `approvers = ["group:…"]`.
//! * A request whose rule says `approver_mfa = true` counts an approval only from such
//!   a session that showed MFA (`record_approval_via`); `needs_step_up` tells the page
//!   to send the approver back to the provider for a second factor first.
#![forbid(unsafe_code)]

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::Service;
use crate::config::Oidc as OidcConfig;
use crate::limits::inc;
use crate::model::Approver;
use crate::store::oidc::PendingLogin;

/// How long a browser may take at the provider.
pub const LOGIN_SECS: i64 = 600;
/// Pending logins kept at most (a flood of sign-in starts cannot fill the database).
const MAX_PENDING: i64 = 10_000;

fn sha256_hex(text: &str) -> String {
    jitsudo_policy::audit::hex(&Sha256::digest(text.as_bytes()))
}

/// The provider for `[oidc]`, if configured and usable.
pub fn provider(cfg: Option<&OidcConfig>) -> Option<Arc<crate::oidc::Provider>> {
    let cfg = cfg?;
    let agent = crate::oidc::agent(crate::webhook::system_roots());
    match crate::oidc::Provider::new(cfg, agent) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(error = %e, "[oidc] is not usable; sign-in through the identity provider is off");
            None
        }
    }
}

impl Service {
    fn provider(&self) -> Result<Arc<crate::oidc::Provider>> {
        self.oidc.clone().ok_or_else(|| {
            Error::NotFound("sign-in through an identity provider is not configured".into())
        })
    }

    /// Whether the page offers sign-in through the identity provider.
    pub fn oidc_enabled(&self) -> bool {
        self.oidc.is_some()
    }

    /// Start a sign-in: the provider's URL to send the browser to. `step_up`: for a
    /// second factor (`prompt=login`, `acr_values`). The URL and the `state` in it.
    pub async fn oidc_start(&self, step_up: bool) -> Result<(String, String)> {
        let p = self.provider()?;
        let started = tokio::task::spawn_blocking(move || p.start(step_up))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot start a sign-in at the identity provider");
                Error::Internal(e)
            })?;
        let now = jitsudo_core::grant::now();
        let login = PendingLogin {
            nonce: started.nonce,
            pkce_verifier: started.pkce_verifier,
            step_up,
            expires: now + LOGIN_SECS,
        };
        if !self
            .store
            .oidc_login_create(&sha256_hex(&started.state), &login, now, MAX_PENDING)
            .await?
        {
            return Err(Error::RateLimited {
                message: "too many sign-ins under way; try again later".into(),
                retry_after: 60,
            });
        }
        Ok((started.url, started.state))
    }

    /// Finish a sign-in from the provider's callback (`state`, `code`): a web session
    /// for the person the ID token names, for `secs` seconds; its id, CSRF token and
    /// the person.
    pub async fn oidc_finish(
        &self,
        state: &str,
        code: &str,
        secs: i64,
        max: i64,
    ) -> Result<(String, String, Approver)> {
        let p = self.provider()?;
        let now = jitsudo_core::grant::now();
        let Some(login) = self.store.oidc_login_take(&sha256_hex(state), now).await? else {
            return Err(Error::Unauthenticated(
                "this sign-in is unknown, was used already or took too long (state refused); sign in again".into(),
            ));
        };
        let code = code.to_string();
        let person = tokio::task::spawn_blocking(move || {
            p.finish(&code, &login.pkce_verifier, &login.nonce)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::Unauthenticated)?;
        let who = Approver {
            name: person.name.clone(),
            groups: person.groups.clone(),
            admin: false,
            sign_in: Some(person.sign_in.clone()),
            read_only: false,
        };
        let stored = serde_json::to_string(&super::session::Stored {
            groups: person.groups,
            sign_in: person.sign_in,
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let Some((id, csrf)) =
            super::session::web_sign_in_as(&self.store, &who, "", Some(stored), secs, max).await?
        else {
            return Err(Error::RateLimited {
                message: "too many open sessions; try again later".into(),
                retry_after: 60,
            });
        };
        Ok((id, csrf, who))
    }

    /// The issuer and public client `jitsudoctl login` signs in with.
    pub fn oidc_cli_client(&self) -> Result<(String, String)> {
        self.oidc
            .as_ref()
            .and_then(|p| p.cli_client())
            .ok_or_else(|| {
                Error::NotFound(
                    "this service takes no sign-in from jitsudoctl login ([oidc] cli_client_id is not set)".into(),
                )
            })
    }

    /// The API's bearer token: an approver token, or an ID token from `jitsudoctl login`
    /// (three base64url parts: a JWT; approver tokens are `jt_…`).
    pub async fn authenticate_api(&self, token: &str) -> Result<Approver> {
        let token = token.trim();
        let jwt = token.len() <= 16 * 1024
            && token.split('.').count() == 3
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !jwt {
            return self.authenticate(token).await;
        }
        let p = self.provider().map_err(|_| {
            Error::Unauthenticated("an ID token, but this service has no [oidc]".into())
        })?;
        let raw = token.to_string();
        let person = tokio::task::spawn_blocking(move || p.validate_cli(&raw))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| {
                inc(&self.metrics.approver_auth_failures);
                Error::Unauthenticated(format!("{e}; sign in again with jitsudoctl login"))
            })?;
        Ok(Approver {
            name: person.name,
            groups: person.groups,
            admin: false,
            sign_in: Some(person.sign_in),
            read_only: false,
        })
    }

    /// Request `id` needs an approval with MFA that `who`'s sign-in did not show.
    pub async fn needs_step_up(&self, who: &Approver, id: &str) -> Result<bool> {
        Ok(match self.store.request(id).await? {
            Some(r) => r.approver_mfa && !who.mfa(),
            None => false,
        })
    }
}
