//! Extractors: the authenticated approver (or admin) of an API call, and a JSON body
//! whose every failure is the API's JSON error rather than axum's plain text.
#![forbid(unsafe_code)]

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::http::error::{err, ApiError};
use crate::http::state::Shared;
use crate::service::Approver;

/// `Authorization: Bearer TOKEN`, an approver token from `jitsudoctl approver add`, or
/// an ID token from `jitsudoctl login` (`[oidc] cli_client_id`).
impl FromRequestParts<Shared> for Approver {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| err(StatusCode::UNAUTHORIZED, "missing Authorization: Bearer TOKEN (an approver token from jitsudoctl approver add)"))?;
        Ok(s.service.authenticate_api(token).await?)
    }
}

/// The token of an `Authorization: Bearer TOKEN` value. The scheme is matched without
/// regard to case (RFC 9110 §11.1: `bearer`, `BEARER` are the same scheme).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An approver who is an admin.
pub struct Admin(pub Approver);

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, ApiError> {
        let who = Approver::from_request_parts(parts, s).await?;
        Ok(Admin(s.service.require_admin(who)?))
    }
}

/// A JSON request body, parsed by serde; an unreadable, too large or invalid body is a
/// JSON 4xx.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if !content_type.as_deref().is_some_and(is_json) {
            return Err(err(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the request body must be JSON (Content-Type: application/json), not {}",
                    content_type.map_or("a body without a Content-Type".into(), |t| format!(
                        "{:?}",
                        t.chars().take(100).collect::<String>()
                    ))
                ),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                err(status, "request body too large")
            } else {
                err(status, format!("cannot read request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| err(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
    }
}

/// `application/json`, with parameters (`; charset=utf-8`) or without, in any case.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A path parameter whose rejection (not UTF-8 once decoded, say `%FF%FE`) is the
/// API's JSON 400 rather than axum's plain text.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| {
                err(
                    StatusCode::BAD_REQUEST,
                    format!("bad path: {}", e.body_text()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer jt_1"), Some("jt_1"));
        assert_eq!(bearer_token("bearer jt_1"), Some("jt_1"));
        assert_eq!(bearer_token("BEARER   jt_1 "), Some("jt_1"));
        assert_eq!(bearer_token("Basic jt_1"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer  "), None);
        assert_eq!(bearer_token("Bearerjt_1"), None);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
