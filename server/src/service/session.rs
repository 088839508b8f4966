//! The approver web page's sessions: rows of the database by the SHA-256 of the session
//! id (any replica serves any browser, a restart signs nobody out), each with its CSRF
//! secret and the message for the next page. A session is an approver's, signed in with
//! a token, or a person's from the identity provider, with their groups and how they
//! signed in kept in the row.
#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::Service;
use crate::model::{Approver, SignIn};
use crate::store::fleet::WebSession;
use crate::store::Db;

fn now() -> i64 {
    jitsudo_core::grant::now()
}

fn sha256_hex(text: &str) -> String {
    jitsudo_policy::audit::hex(&Sha256::digest(text.as_bytes()))
}

/// Open a web session for `who` (signed in with the token hashing to `token_hash`) for
/// `secs` seconds; the session id for the cookie and the session's CSRF token. `None`
/// when `max` sessions are open already.
pub async fn web_sign_in(
    store: &Db,
    who: &Approver,
    token_hash: &str,
    secs: i64,
    max: i64,
) -> Result<Option<(String, String)>> {
    web_sign_in_as(store, who, token_hash, None, secs, max).await
}

/// [`web_sign_in`], for an approver token (`token_hash`) or for a person from the
/// identity provider (`oidc`: their groups and sign-in, `token_hash` empty).
pub async fn web_sign_in_as(
    store: &Db,
    who: &Approver,
    token_hash: &str,
    oidc: Option<String>,
    secs: i64,
    max: i64,
) -> Result<Option<(String, String)>> {
    let now = now();
    if store.web_session_count(now).await? >= max {
        store.web_sessions_sweep(now).await?;
        if store.web_session_count(now).await? >= max {
            return Ok(None);
        }
    }
    let id = jitsudo_core::wire::random_hex(32).map_err(Error::Internal)?;
    let csrf = jitsudo_core::wire::random_hex(32).map_err(Error::Internal)?;
    let session = WebSession {
        approver: who.name.clone(),
        token_hash: token_hash.to_string(),
        csrf: csrf.clone(),
        expires: now + secs,
        oidc,
        flash: None,
    };
    store
        .web_session_create(&sha256_hex(&id), &session, now)
        .await?;
    Ok(Some((id, csrf)))
}

/// The session whose id hashes to `id_hash` and its approver, if both still exist (a
/// removed approver's sessions are deleted); its pending message is taken.
pub async fn web_session(store: &Db, id_hash: &str) -> Result<Option<(Approver, WebSession)>> {
    let Some(session) = store.web_session_take(id_hash, now()).await? else {
        return Ok(None);
    };
    if session.oidc.is_some() {
        // A person from the identity provider: who they are and their groups are the ID
        // token's, kept with the session; an unreadable row signs nobody in.
        return Ok(session_person(&session).map(|who| (who, session)));
    }
    if session.token_hash.is_empty() {
        return Ok(None);
    }
    match store.approver_by_token_hash(&session.token_hash).await? {
        Some(who) => Ok(Some((who, session))),
        None => {
            store.web_session_delete(id_hash).await?;
            Ok(None)
        }
    }
}

/// What a web session of a person from the provider stores besides their name.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Stored {
    pub(super) groups: Vec<String>,
    pub(super) sign_in: SignIn,
}

/// The approver of a session opened by `oidc_finish`.
pub(super) fn session_person(session: &WebSession) -> Option<Approver> {
    let stored: Stored = serde_json::from_str(session.oidc.as_deref()?).ok()?;
    Some(Approver {
        name: session.approver.clone(),
        groups: stored.groups,
        admin: false,
        sign_in: Some(stored.sign_in),
        read_only: false,
    })
}

impl Service {
    /// A new web session for `who`: (session id, CSRF token), or None when `max` are open.
    pub async fn web_sign_in(
        &self,
        who: &Approver,
        token_hash: &str,
        secs: i64,
        max: i64,
    ) -> Result<Option<(String, String)>> {
        web_sign_in(&self.store, who, token_hash, secs, max).await
    }

    /// The live web session `id_hash` and its approver; its pending message is taken.
    pub async fn web_session(&self, id_hash: &str) -> Result<Option<(Approver, WebSession)>> {
        web_session(&self.store, id_hash).await
    }

    /// Leave a message for the session's next page.
    pub async fn web_flash(&self, id_hash: &str, ok: bool, text: &str) -> Result<()> {
        Ok(self.store.web_session_flash(id_hash, ok, text).await?)
    }

    /// Sign a web session out (delete its row).
    pub async fn web_sign_out(&self, id_hash: &str) -> Result<()> {
        self.store.web_session_delete(id_hash).await?;
        Ok(())
    }
}
