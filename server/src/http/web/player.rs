//! The recording player: a page per stored recording (`/ui/recordings/{host}/{id}`),
//! the script that plays it (`/ui/static/player.js`, compiled into the binary), and the
//! data it fetches (`…/data`: the timing and the output streams, JSON). All three need
//! a signed-in session, like the rest of the page.
//!
//! The page is the only one that runs a script, so it alone gets a policy that allows
//! one: `script-src 'self'` and `connect-src 'self'`, with everything else as strict as
//! the other pages (no inline script or style, no eval). The script writes the
//! recording's output into a `<pre>` as text, never as markup, so an escape sequence
//! or a `<script>` a command printed is shown, not run. Input streams are not served:
//! they hold what was typed, passwords included.
#![forbid(unsafe_code)]

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::{self, escape};
use super::{html_response, html_response_with, signed_in};
use crate::http::error::ApiError;
use crate::http::state::Shared;

/// The player page's policy: the others' (`super::CSP`), plus this origin's scripts and
/// fetches.
const PLAYER_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub const SCRIPT: &str = include_str!("static/player.js");

/// `GET /ui/static/player.js`. Not secret, so served without a session.
pub async fn script() -> Response {
    let mut resp = SCRIPT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn not_found(what: &str) -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        html::page(
            "jitsudo: not found",
            &format!(
                "<main><p class=\"error\">{}</p><p><a href=\"/ui\">Back</a></p></main>",
                escape(what)
            ),
        ),
    )
}

fn sign_in_first() -> Response {
    let mut resp = html_response(StatusCode::SEE_OTHER, String::new());
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/ui"));
    resp
}

/// `GET /ui/recordings/{host}/{id}`: who ran what, and the player.
pub async fn page(
    State(s): State<Shared>,
    Path((host, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if signed_in(&s, &headers).await?.is_none() {
        return Ok(sign_in_first());
    }
    let Some(r) = s.service.recording_view(&host, &id).await? else {
        return Ok(not_found(&format!(
            "No recording {id} of host {host} is stored."
        )));
    };
    let data = format!("/ui/recordings/{}/{}/data", escape(&r.host), escape(&r.id));
    let body = format!(
        "<header><h1>recording {id} of {host}</h1><a href=\"/ui\">Back</a></header><main>\
         <article class=\"card\" id=\"recording\">\
         <p><span class=\"who\">{user}</span> on <b>{host}</b> as {run_as} \
         <span class=\"state {state}\" id=\"state\">{state}</span></p>\
         <p><code class=\"command\">{command}</code></p>\
         <p class=\"muted\">grant {grant} · started {started} · {size} · {chunks} chunk(s)</p>\
         <p class=\"muted\" id=\"chain\"></p>\
         <div class=\"actions player\" id=\"player\" data-src=\"{data}\">\
         <button type=\"button\" id=\"play\">Play</button>\
         <button type=\"button\" id=\"pause\">Pause</button>\
         <button type=\"button\" id=\"restart\">Restart</button>\
         <label for=\"speed\">Speed</label>\
         <select id=\"speed\"><option value=\"0.5\">0.5×</option><option value=\"1\" selected>1×</option>\
         <option value=\"2\">2×</option><option value=\"8\">8×</option><option value=\"0\">instant</option></select>\
         <span class=\"muted\" id=\"progress\"></span></div></article>\
         <pre class=\"screen\" id=\"screen\"></pre></main>\
         <script src=\"/ui/static/player.js\"></script>",
        id = escape(&r.id),
        host = escape(&r.host),
        user = escape(&r.user),
        run_as = escape(&r.run_as),
        state = escape(&r.state),
        command = escape(&r.command),
        grant = escape(&r.grant),
        started = jitsudo_core::grant::format_time(r.started),
        size = html::size(r.bytes),
        chunks = r.chunks,
    );
    Ok(html_response_with(
        StatusCode::OK,
        html::page(&format!("jitsudo: recording {}", r.id), &body),
        PLAYER_CSP,
    ))
}

/// `GET /ui/recordings/{host}/{id}/data`: what the player plays (JSON).
pub async fn data(
    State(s): State<Shared>,
    Path((host, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if signed_in(&s, &headers).await?.is_none() {
        return Ok((StatusCode::UNAUTHORIZED, "sign in first").into_response());
    }
    let data = s.service.player_data(&host, &id).await?;
    let mut resp = axum::Json(data).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}
