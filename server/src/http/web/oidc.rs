//! Sign-in through the identity provider (`[oidc]`): `/ui/oidc/login` sends the browser
//! to the provider, `/ui/oidc/callback` takes it back and opens a web session.
//!
//! * The `state` is also set in a cookie for `/ui/oidc` (`HttpOnly`, `SameSite=Lax`, so
//!   that the provider's redirect back carries it) and the callback must bring both:
//!   a callback link made by someone else for their own sign-in does not sign this
//!   browser in as them.
//! * The session cookie is `SameSite=Strict`, which a browser does not send on the
//!   navigation that comes from the provider's site: the callback answers with a page
//!   of this origin that moves on to `/ui` itself.
//! * Both pages are GETs followed by links, never form posts: the page's
//!   `form-action 'self'` forbids a form's redirect to the provider.
#![forbid(unsafe_code)]

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{escape, html, html_response, login_page, session_id, sha256_hex, COOKIE};
use super::{MAX_SESSIONS, SESSION_SECS};
use crate::http::error::ApiError;
use crate::http::state::Shared;

const STATE_COOKIE: &str = "jitsudo_oidc_state";

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    step_up: Option<String>,
}

fn secure(s: &Shared) -> &'static str {
    if s.service.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    }
}

/// A page of this origin that moves on to `to` by itself (and says so, with a link).
pub(super) fn continue_page(text: &str, to: &str) -> String {
    let to = escape(to);
    html::page(
        "jitsudo approvals",
        &format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={to}\">\
             <main class=\"login\"><p id=\"continue\">{}</p><p><a href=\"{to}\">Continue</a></p></main>",
            escape(text)
        ),
    )
}

pub async fn login(
    State(s): State<Shared>,
    q: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let step_up = q
        .ok()
        .and_then(|Query(q)| q.step_up)
        .is_some_and(|v| v == "1");
    let (url, state) = match s.service.oidc_start(step_up).await {
        Ok(v) => v,
        Err(e) => {
            return Ok(html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                login_page(Some(&format!(
                    "Cannot sign in through the identity provider: {e}"
                ))),
            ))
        }
    };
    let mut resp = html_response(StatusCode::SEE_OTHER, String::new());
    let h = resp.headers_mut();
    match HeaderValue::from_str(&url) {
        Ok(v) => h.insert(header::LOCATION, v),
        Err(_) => {
            return Ok(html_response(
                StatusCode::BAD_GATEWAY,
                login_page(Some("The identity provider's sign-in URL is unusable.")),
            ))
        }
    };
    if let Ok(c) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={}; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age={}{}",
        sha256_hex(&state),
        crate::service::oidc::LOGIN_SECS,
        secure(&s)
    )) {
        h.insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn refused(text: &str) -> Response {
    tracing::warn!(why = %text, "sign-in through the identity provider refused");
    let mut resp = html_response(StatusCode::UNAUTHORIZED, login_page(Some(text)));
    if let Ok(c) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}=; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

pub async fn callback(
    State(s): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Query(q)) = q else {
        return Ok(refused(
            "Sign-in refused: the identity provider's answer is malformed.",
        ));
    };
    if let Some(err) = &q.error {
        let why = q.error_description.as_deref().unwrap_or(err);
        return Ok(refused(&format!(
            "Sign-in refused by the identity provider: {}",
            why.chars().take(300).collect::<String>()
        )));
    }
    // RFC 9207: a provider that names itself in the answer must be ours (an answer
    // from another provider the browser was sent to is not taken for this one's).
    let issuer = s.service.config.oidc.as_ref().map(|o| o.issuer.as_str());
    if let (Some(iss), Some(ours)) = (q.iss.as_deref(), issuer) {
        if iss != ours {
            return Ok(refused(
                "Sign-in refused: the answer comes from another identity provider.",
            ));
        }
    }
    let (Some(code), Some(state)) = (q.code.as_deref(), q.state.as_deref()) else {
        return Ok(refused(
            "Sign-in refused: the answer has no code or no state.",
        ));
    };
    if code.len() > 2048 || state.len() > 512 {
        return Ok(refused("Sign-in refused: the answer is too long."));
    }
    let bound = cookie(&headers, STATE_COOKIE).unwrap_or_default();
    if !super::same_bytes(&bound, &sha256_hex(state)) {
        return Ok(refused(
            "Sign-in refused: this answer belongs to a sign-in this browser did not start (state refused). Sign in again.",
        ));
    }
    let (id, _csrf, who) = match s
        .service
        .oidc_finish(state, code, SESSION_SECS, MAX_SESSIONS)
        .await
    {
        Ok(v) => v,
        Err(e) => return Ok(refused(&format!("Sign-in refused: {e}"))),
    };
    // A step-up replaces the session it was asked from.
    if let Some(old) = session_id(&headers) {
        s.service.web_sign_out(&sha256_hex(&old)).await?;
    }
    let auth = who.auth_detail();
    tracing::info!(approver = %who.name, groups = ?who.groups, auth = %auth, "signed in to the web page through the identity provider");
    let mut resp = html_response(
        StatusCode::OK,
        continue_page(&format!("Signed in as {}.", who.name), "/ui"),
    );
    let h = resp.headers_mut();
    for c in [
        format!(
            "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{}",
            secure(&s)
        ),
        format!("{STATE_COOKIE}=; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}
