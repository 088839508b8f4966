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
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| err(StatusCode::UNAUTHORIZED, "missing Authorization: Bearer TOKEN (an approver token from jitsudoctl approver add)"))?;
        Ok(s.service.authenticate_api(token).await?)
    }
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
