//! The approver web page, served under /ui: sign in with an approver token, see the
//! pending requests (who, host, command, reason, rule, age), approve or deny with a
//! comment, see recent grants, each with its runs (from the journals hosts uploaded)
//! and its session recordings, and revoke one. Plain server-rendered HTML and one small
//! stylesheet; the only script is the recording player (`player.rs`), a file this
//! service serves itself, on the player page alone.
//!
//! Security:
//! * Sign-in exchanges the approver token for a random session id in a cookie
//!   (`HttpOnly`, `SameSite=Strict`, `Path=/ui`, `Secure` when the service runs TLS).
//!   The service keeps only the SHA-256 of the session id, with the approver's token
//!   hash, so a removed approver loses the page at once. Sessions are rows of the
//!   database (`web_sessions`, with the session's own CSRF token and the message for
//!   its next page), for at most 12 hours: any replica serves any browser, a restart
//!   signs nobody out, signing out deletes the row and expired rows are swept.
//! * An action that cannot be performed (no session, an expired one, a stale form) is
//!   never dropped in silence: the answer is the sign-in page or an error page saying
//!   that the action was not recorded.
//! * Every POST carries the session's CSRF token in a hidden field, compared in
//!   constant time, and a present `Origin` header must name this host.
//! * Every piece of stored text goes through `html::escape`; the
//!   `Content-Security-Policy` forbids scripts, inline styles, frames and foreign
//!   form targets, so even a missed escape could not run code. The player page allows
//!   exactly one more thing: scripts and fetches from this origin (`script-src 'self';
//!   connect-src 'self'`), still no inline script or style and no eval; the player
//!   writes the recording's output as text (`textContent`), never as markup.
//! * Approve, deny and revoke call the same service operations as the JSON API, so the
//!   policy's rules (who may approve, no self-approval), the audit trail and webhooks
//!   apply. The page reads through the service too; it runs no SQL of its own.
#![forbid(unsafe_code)]

pub mod html;
pub mod oidc;
pub mod player;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use jitsudo_core::grant::Kind;
use serde::Deserialize;

use crate::http::error::ApiError;
use crate::http::state::Shared;
use crate::http::web::html::escape;
use crate::service::{token_hash, Approver, Error, RecordingSearch};

const COOKIE: &str = "jitsudo_session";
const SESSION_SECS: i64 = 12 * 3600;
const MAX_SESSIONS: i64 = 10_000;
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/style.css", get(style))
        .route("/ui/login", post(login))
        .route("/ui/oidc/login", get(oidc::login))
        .route("/ui/oidc/callback", get(oidc::callback))
        .route("/ui/logout", post(logout))
        .route("/ui/approve", post(approve))
        .route("/ui/deny", post(deny))
        .route("/ui/revoke", post(revoke))
        .route("/ui/static/player.js", get(player::script))
        .route("/ui/recordings/{host}/{id}", get(player::page))
        .route("/ui/recordings/{host}/{id}/data", get(player::data))
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    jitsudo_policy::audit::hex(&Sha256::digest(text.as_bytes()))
}

fn now() -> i64 {
    jitsudo_core::grant::now()
}

/// Security headers on every page.
fn html_response(status: StatusCode, body: String) -> Response {
    html_response_with(status, body, CSP)
}

/// Security headers, with `csp` as the page's Content-Security-Policy.
fn html_response_with(status: StatusCode, body: String, csp: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(h, header::CONTENT_SECURITY_POLICY, csp);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on
    // our own form posts, and the origin check needs the real one.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    resp
}

fn redirect_home(cookie: Option<String>) -> Response {
    let mut resp = html_response(StatusCode::SEE_OTHER, String::new());
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/ui"));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The signed-in approver and the session's CSRF token and pending message.
struct Signed {
    who: Approver,
    /// SHA-256 of the session id: the session's key in the database.
    key: String,
    csrf: String,
    flash: Option<(bool, String)>,
}

async fn signed_in(s: &Shared, headers: &HeaderMap) -> Result<Option<Signed>, ApiError> {
    let Some(id) = session_id(headers) else {
        return Ok(None);
    };
    let key = sha256_hex(&id);
    Ok(s.service
        .web_session(&key)
        .await?
        .map(|(who, session)| Signed {
            who,
            key,
            csrf: session.csrf,
            flash: session.flash,
        }))
}

fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A POST must come from our own page: `Origin` (when the browser sends it) names this
/// host, and the form's CSRF token is the session's.
fn check_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    if host.is_empty() || origin_host != host {
        return Err("cross-site request refused");
    }
    Ok(())
}

/// What an action form asked for, as the refusal pages name it.
fn not_recorded(action: Option<&Action>) -> &'static str {
    match action {
        Some(Action::Approve) => "The approval was NOT recorded.",
        Some(Action::Deny) => "The denial was NOT recorded.",
        Some(Action::Revoke) => "The revocation was NOT recorded.",
        None => "Nothing was changed.",
    }
}

/// An action refused before it ran: the sign-in page, saying why and that nothing was
/// recorded (a browser whose session expired, or was signed out, must not believe that
/// its approval went through).
fn session_lost(action: Option<&Action>) -> Response {
    let text = match action {
        Some(a) => format!(
            "You are not signed in: your session expired or was signed out. {} Sign in and send it again.",
            not_recorded(Some(a))
        ),
        None => "You are not signed in: your session expired or was signed out.".to_string(),
    };
    let mut resp = html_response(StatusCode::UNAUTHORIZED, login_page(Some(&text)));
    // Forget the dead cookie, so the next page does not send it again.
    if let Ok(c) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

fn forbidden(why: &str) -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        html::page(
            "jitsudo: refused",
            &format!(
                "<main><p class=\"error\">{}</p><p><a href=\"/ui\">Back</a></p></main>",
                escape(why)
            ),
        ),
    )
}

async fn style() -> Response {
    let mut resp = html::STYLE.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn login_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    html::page(
        "jitsudo approvals: sign in",
        &format!(
            "<main class=\"login\"><h1>jitsudo approvals</h1>{error}\
             <form method=\"post\" action=\"/ui/login\">\
             <label for=\"token\">Approver token</label>\
             <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required>\
             <button type=\"submit\" id=\"signin\">Sign in</button></form>\
             <p class=\"muted\">Tokens come from <code>jitsudoctl approver add</code>.</p>\
             <p><a class=\"button\" id=\"oidc\" href=\"/ui/oidc/login\">Sign in with the identity provider</a></p></main>"
        ),
    )
}

async fn index(State(s): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(me) = signed_in(&s, &headers).await? else {
        return Ok(html_response(StatusCode::OK, login_page(None)));
    };
    Ok(html_response(StatusCode::OK, dashboard(&s, &me).await?))
}

async fn dashboard(s: &Shared, me: &Signed) -> Result<String, ApiError> {
    let now = now();
    let csrf = escape(&me.csrf);
    let csrf_field = format!("<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">");
    let mut b = String::new();
    b.push_str(&format!(
        "<header><h1>jitsudo approvals</h1><span>signed in as <b id=\"me\">{}</b></span>\
         <form method=\"post\" action=\"/ui/logout\">{csrf_field}<button type=\"submit\">Sign out</button></form></header><main>",
        escape(&me.who.name)
    ));
    if let Some((ok, text)) = &me.flash {
        b.push_str(&format!(
            "<p class=\"{}\" id=\"flash\">{}</p>",
            if *ok { "flash" } else { "error" },
            escape(text)
        ));
    }
    // One query for the requests, one for all their approvals (and one for grants).
    let pending = s.service.list(true, 200).await?;
    b.push_str(&format!(
        "<h2>Pending requests ({})</h2><section id=\"pending\">",
        pending.len()
    ));
    if pending.is_empty() {
        b.push_str("<p class=\"muted\">Nothing is waiting for approval.</p>");
    }
    for r in &pending {
        let approvals = &r.approvals;
        let id = escape(&r.id);
        b.push_str(&format!(
            "<article class=\"card request\" id=\"req-{id}\">\
             <p><span class=\"who\">{user}</span> on <b>{host}</b> as {run_as} <span class=\"muted\">· {age} ago · request {id}</span></p>\
             <p><code class=\"command\">{command}</code></p>\
             <p class=\"reason\">Reason: {reason}{extra}</p>\
             <p class=\"muted\">Rule <span class=\"rule\">{rule}</span> · approvals {got}/{need} from {approvers}{by}</p>\
             <div class=\"actions\">\
             <form method=\"post\" action=\"/ui/approve\">{csrf_field}<input type=\"hidden\" name=\"id\" value=\"{id}\">\
             <input type=\"text\" name=\"comment\" placeholder=\"Comment (optional)\" maxlength=\"1000\" aria-label=\"Approval comment\">\
             <button type=\"submit\" class=\"approve\">Approve</button></form>\
             <form method=\"post\" action=\"/ui/deny\">{csrf_field}<input type=\"hidden\" name=\"id\" value=\"{id}\">\
             <input type=\"text\" name=\"comment\" placeholder=\"Why not (required)\" maxlength=\"1000\" required aria-label=\"Denial reason\">\
             <button type=\"submit\" class=\"deny\">Deny</button></form></div></article>",
            user = escape(&r.user),
            host = escape(&r.host),
            run_as = escape(&r.run_as),
            age = html::age(now - r.created_at),
            command = escape(&shown_command(r.kind, &r.command)),
            reason = escape(&r.reason),
            // The ticket a rule required, and for an extension the grant it replaces.
            extra = r
                .ticket
                .iter()
                .map(|t| format!(" · ticket {}", escape(t)))
                .chain(r.extends.iter().map(|g| format!(" · extends grant {}", escape(g))))
                .collect::<String>(),
            rule = escape(&r.rule),
            got = approvals.len(),
            need = r.approvals_needed,
            approvers = escape(&r.approvers.join(", ")),
            by = if approvals.is_empty() {
                String::new()
            } else {
                format!(
                    " (so far: {})",
                    escape(
                        &approvals
                            .iter()
                            .map(|a| a.approver.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                )
            },
        ));
    }
    b.push_str("</section>");
    let grants = s.service.recent_grants(30).await?;
    b.push_str("<h2>Recent grants</h2><section id=\"grants\">");
    if grants.is_empty() {
        b.push_str("<p class=\"muted\">No grants yet.</p>");
    }
    for g in &grants {
        let id = escape(&g.id);
        let (class, status) = match (&g.revoked_by, g.exp > now) {
            (Some(by), _) => ("revoked", format!("revoked by {}", escape(by))),
            (None, true) => ("active", format!("active, {} left", html::age(g.exp - now))),
            (None, false) => ("expired", "expired".to_string()),
        };
        let revoke = if class == "active" {
            format!(
                "<div class=\"actions\"><form method=\"post\" action=\"/ui/revoke\">{csrf_field}\
                 <input type=\"hidden\" name=\"grant\" value=\"{id}\">\
                 <input type=\"text\" name=\"reason\" placeholder=\"Why revoke (required)\" maxlength=\"1000\" required aria-label=\"Revocation reason\">\
                 <button type=\"submit\" class=\"revoke\">Revoke</button></form></div>"
            )
        } else {
            String::new()
        };
        let runs = runs_list(s, &g.id, now).await?;
        let recordings = s
            .service
            .recordings(&RecordingSearch {
                grant: Some(g.id.clone()),
                limit: Some(20),
                ..RecordingSearch::default()
            })
            .await?;
        let recorded = if recordings.is_empty() {
            String::new()
        } else {
            let items: Vec<String> = recordings
                .iter()
                .map(|r| {
                    format!(
                        "<li><a href=\"/ui/recordings/{host}/{rid}\"><code>{rid}</code></a> \
                         <span class=\"state {state}\">{state}</span> started {started} ago, {size}</li>",
                        host = escape(&r.host),
                        rid = escape(&r.id),
                        state = escape(&r.state),
                        started = html::age(now - r.started),
                        size = html::size(r.bytes),
                    )
                })
                .collect();
            format!(
                "<p class=\"muted\">recordings (play one here, or: jitsudoctl replay ID --host {host}):</p><ul class=\"recordings\">{}</ul>",
                items.concat(),
                host = escape(&g.host),
            )
        };
        let recorded = format!("{runs}{recorded}");
        b.push_str(&format!(
            "<article class=\"card grant\" id=\"grant-{id}\">\
             <p><span class=\"who\">{user}</span> on <b>{host}</b> as {run_as} <span class=\"status {class}\">{status}</span></p>\
             <p><code>{command}</code></p>\
             <p class=\"muted\">grant {id} · issued {age} ago</p>{recorded}{revoke}</article>",
            user = escape(&g.user),
            host = escape(&g.host),
            run_as = escape(&g.run_as),
            command = escape(&shown_command(g.kind, &g.command)),
            age = html::age(now - g.created_at),
        ));
    }
    b.push_str("</section></main>");
    Ok(html::page("jitsudo approvals", &b))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, ApiError> {
    if let Err(why) = check_origin(&headers) {
        return Ok(forbidden(why));
    }
    let Ok(Form(form)) = form else {
        return Ok(html_response(
            StatusCode::BAD_REQUEST,
            login_page(Some("Sign-in form incomplete.")),
        ));
    };
    let token = form.token.trim();
    if token.is_empty() || token.len() > 200 {
        return Ok(html_response(
            StatusCode::UNAUTHORIZED,
            login_page(Some("Unknown approver token.")),
        ));
    }
    let who = match s.service.authenticate(token).await {
        Ok(w) => w,
        Err(_) => {
            tracing::warn!("web sign-in with an unknown approver token");
            return Ok(html_response(
                StatusCode::UNAUTHORIZED,
                login_page(Some("Unknown approver token.")),
            ));
        }
    };
    let Some((id, _csrf)) = s
        .service
        .web_sign_in(&who, &token_hash(token), SESSION_SECS, MAX_SESSIONS)
        .await?
    else {
        return Ok(html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            login_page(Some("Too many open sessions; try again later.")),
        ));
    };
    tracing::info!(approver = %who.name, "signed in to the web page");
    let secure = if s.service.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    Ok(redirect_home(Some(format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}"
    ))))
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    grant: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// The common head of every signed-in POST: same origin, a session, the CSRF token.
/// Each refusal says that `action` (None: signing out) was not recorded.
async fn action_guard(
    s: &Shared,
    headers: &HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
    action: Option<&Action>,
) -> Result<Result<(Signed, ActionForm), Response>, ApiError> {
    let unrecorded = not_recorded(action);
    if let Err(why) = check_origin(headers) {
        return Ok(Err(forbidden(&format!("{why}. {unrecorded}"))));
    }
    let Some(me) = signed_in(s, headers).await? else {
        if action.is_some() {
            tracing::warn!("web form without a live session refused");
        }
        return Ok(Err(session_lost(action)));
    };
    let Ok(Form(form)) = form else {
        return Ok(Err(forbidden(&format!("Incomplete form. {unrecorded}"))));
    };
    if !same_bytes(&form.csrf, &me.csrf) {
        tracing::warn!(approver = %me.who.name, "web form with a wrong CSRF token refused");
        return Ok(Err(forbidden(&format!(
            "This form is stale or was not sent by this page. {unrecorded} Reload the page and try again."
        ))));
    }
    Ok(Ok((me, form)))
}

async fn logout(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let (me, _) = match action_guard(&s, &headers, form, None).await? {
        Ok(v) => v,
        Err(r) => return Ok(r),
    };
    s.service.web_sign_out(&me.key).await?;
    Ok(redirect_home(Some(format!(
        "{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
    ))))
}

/// What an approver's form asks for.
enum Action {
    Approve,
    Deny,
    Revoke,
}

async fn approve(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    form_action(&s, &headers, form, Action::Approve).await
}

async fn deny(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    form_action(&s, &headers, form, Action::Deny).await
}

async fn revoke(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    form_action(&s, &headers, form, Action::Revoke).await
}

/// A form action: check origin, session and CSRF token (`action_guard`), act as the
/// signed-in approver through the same code as the API, then show the outcome as a
/// flash message on the page the browser is sent back to.
async fn form_action(
    s: &Shared,
    headers: &HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
    action: Action,
) -> Result<Response, ApiError> {
    let (me, f) = match action_guard(s, headers, form, Some(&action)).await? {
        Ok(v) => v,
        Err(r) => return Ok(r),
    };
    let service = &s.service;
    if matches!(action, Action::Approve)
        && service.oidc_enabled()
        && service.needs_step_up(&me.who, &f.id).await?
    {
        // The rule counts only approvals with MFA: back to the provider for a second
        // factor; the approver approves again on the page they come back to.
        tracing::info!(approver = %me.who.name, request = %f.id, "approval needs MFA; sending the approver to the identity provider");
        return Ok(html_response(
            StatusCode::OK,
            oidc::continue_page(
                &format!(
                    "Request {} needs an approval with MFA (approver_mfa). The approval was NOT recorded: sign in again with a second factor, then approve.",
                    f.id
                ),
                "/ui/oidc/login?step_up=1",
            ),
        ));
    }
    let outcome: Result<String, Error> = match action {
        Action::Approve => service
            .approve(&me.who, &f.id, f.comment.trim())
            .await
            .map(|done| match done.grant {
                Some(g) => format!(
                    "Request {} approved; grant {} issued.",
                    done.request.id, g.id
                ),
                None => format!("Approval recorded for request {}.", done.request.id),
            }),
        Action::Deny => service
            .deny(&me.who, &f.id, f.comment.trim())
            .await
            .map(|row| format!("Request {} denied.", row.id)),
        Action::Revoke => service
            .revoke(&me.who, &f.grant, f.reason.trim())
            .await
            .map(|newly| {
                if newly {
                    format!(
                        "Grant {} revoked; hosts deny it after their next sync.",
                        f.grant
                    )
                } else {
                    format!("Grant {} was already revoked.", f.grant)
                }
            }),
    };
    let (ok, text) = match outcome {
        Ok(text) => (true, text),
        Err(e) => (false, e.message().to_string()),
    };
    if let Err(e) = s.service.web_flash(&me.key, ok, &text).await {
        // The action's outcome must reach the approver even when the message for the
        // next page cannot be stored: show it here instead.
        tracing::warn!(error = %e, "cannot store the web page's message; showing it at once");
        let class = if ok { "flash" } else { "error" };
        return Ok(html_response(
            StatusCode::OK,
            html::page(
                "jitsudo approvals",
                &format!(
                    "<main><p class=\"{class}\" id=\"flash\">{}</p><p><a href=\"/ui\">Back</a></p></main>",
                    escape(&text)
                ),
            ),
        ));
    }
    Ok(redirect_home(None))
}

/// A grant's runs, as its host's uploaded journal records them (newest last).
async fn runs_list(s: &Shared, grant: &str, now: i64) -> Result<String, ApiError> {
    let runs = s.service.grant_runs(grant, 20).await?;
    if runs.is_empty() {
        return Ok(String::new());
    }
    let items: Vec<String> = runs
        .iter()
        .map(|r| {
            let what = match (r.outcome.as_str(), r.reason.is_empty()) {
                ("allowed", _) => "ran".to_string(),
                (_, true) => r.outcome.clone(),
                (_, false) => r.reason.clone(),
            };
            let command = if r.command.is_empty() {
                String::new()
            } else {
                format!(" <code>{}</code>", escape(&r.command.join(" ")))
            };
            format!(
                "<li><span class=\"outcome {class}\">{what}</span>{command} \
                 <span class=\"muted\">{user} on {host}, {age} ago</span></li>",
                class = escape(&r.outcome),
                what = escape(&what),
                user = escape(&r.user),
                host = escape(&r.host),
                age = html::age(now - r.time),
            )
        })
        .collect();
    Ok(format!(
        "<p class=\"muted\">runs (from the host's journal):</p><ul class=\"runs\">{}</ul>",
        items.concat()
    ))
}

/// What a request or grant is for, as an approver reads it: the files of an edit request
/// must not look like a command to run.
fn shown_command(kind: Kind, command: &str) -> String {
    match kind {
        Kind::Edit => format!("edit (jitsudo -e) {command}"),
        _ => command.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        let id = "ab".repeat(32);
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={id}; c=d")).unwrap(),
        );
        assert_eq!(session_id(&h), Some(id));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("jitsudo_session=<x>"),
        );
        assert_eq!(session_id(&h), None, "malformed ids are ignored");
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        assert!(
            check_origin(&h).is_ok(),
            "no Origin: rely on the CSRF token"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8443"),
        );
        assert!(check_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check_origin(&h).is_err());
    }

    #[test]
    fn constant_time_compare() {
        assert!(same_bytes("abc", "abc"));
        assert!(!same_bytes("abc", "abd"));
        assert!(!same_bytes("abc", "ab"));
    }
}
