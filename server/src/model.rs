//! The service's vocabulary, shared by every layer: a request's status, an approver,
//! and the rows storage returns. No behaviour beyond conversions, so that storage,
//! webhooks and the service can all use it without depending on each other.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyTypeInfo;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Decode, Encode, Type};

pub use jitsudo_core::grant::Kind;

/// Where a request stands. Stored and sent as the lowercase word (`pending`,
/// `approved`, `denied`): the column, the JSON field and the webhook field are text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Approved (by the policy or by enough approvers); it has its grant.
    Approved,
    /// Refused by the policy or by an approver.
    Denied,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(RequestStatus::Pending),
            "approved" => Ok(RequestStatus::Approved),
            "denied" => Ok(RequestStatus::Denied),
            other => Err(format!("{other:?} is not a request status")),
        }
    }
}

/// Compare with the stored word (tests and log lines read statuses as text).
impl PartialEq<&str> for RequestStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for RequestStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RequestStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Type<Any> for RequestStatus {
    fn type_info() -> AnyTypeInfo {
        <str as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <str as Type<Any>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Any> for RequestStatus {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <&str as Encode<'q, Any>>::encode(self.as_str(), buf)
    }
}

/// A stored word that is not a status is an error, never a guess.
impl<'r> Decode<'r, Any> for RequestStatus {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, Any>>::decode(value)?;
        Ok(text.parse::<RequestStatus>()?)
    }
}

/// An approver (or admin) as stored, without the token hash; or a person signed in to
/// the web page through the identity provider (`sign_in`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approver {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
    /// How this person authenticated at the identity provider; `None` for an approver
    /// token (the API, `jitsudoctl`, the token sign-in, Slack).
    pub sign_in: Option<SignIn>,
    /// A token of scope `read`: it may read, never vote or revoke.
    pub read_only: bool,
}

impl Approver {
    /// Whether this approver's sign-in showed a second factor.
    pub fn mfa(&self) -> bool {
        self.sign_in.as_ref().is_some_and(|s| s.mfa)
    }

    /// How this approver authenticated, as the audit trail records it.
    pub fn auth_detail(&self) -> serde_json::Value {
        match &self.sign_in {
            None => serde_json::json!({ "method": "token" }),
            Some(s) => serde_json::json!({
                "method": "oidc",
                "issuer": s.issuer,
                "subject": s.subject,
                "amr": s.amr,
                "acr": s.acr,
                "mfa": s.mfa,
            }),
        }
    }
}

/// What an ID token said about how its person authenticated.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignIn {
    pub issuer: String,
    pub subject: String,
    /// The token's `amr` (authentication methods), as the provider named them.
    pub amr: Vec<String>,
    /// The token's `acr` (authentication context class), if any.
    pub acr: Option<String>,
    /// `amr` holds `mfa`, `otp` or `hwk`, or `acr` is the configured `acr_values`.
    pub mfa: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub host: String,
    pub user: String,
    pub uid: i64,
    pub run_as: String,
    /// `Exec`, or `Edit` for a grant of files for `jitsudo -e`.
    pub kind: Kind,
    /// The command spec the grant will carry (exactly the requested argv); for an edit,
    /// the files, separated by spaces (a file of an edit grant has none in its path).
    pub command: String,
    pub reason: String,
    pub duration: i64,
    pub uses: Option<i64>,
    /// The grant's `exec` claim (the matched rule's `allow_exec`).
    pub allow_exec: bool,
    /// The grant's `record` claim (the matched rule's `record`).
    pub record: bool,
    /// The ticket id given with the request (the grant's `ticket` claim).
    pub ticket: Option<String>,
    /// For an extension (`jitsudo --extend`): the grant it replaces once approved.
    pub extends: Option<String>,
    /// Votes from chat count for this request (the rule's `chat_approval`).
    pub chat_approval: bool,
    /// Approvals count only from people whose sign-in showed MFA (the rule's
    /// `approver_mfa`).
    pub approver_mfa: bool,
    pub source: Option<String>,
    pub status: RequestStatus,
    pub rule: String,
    pub message: String,
    pub approvals_needed: i64,
    /// JSON array of principals (`bob`, `group:sre`).
    pub approvers: String,
    pub poll_hash: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub request_id: String,
    pub host: String,
    pub user: String,
    pub token: String,
    pub key_id: String,
    pub exp: i64,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRow {
    pub approver: String,
    pub comment: String,
    pub at: i64,
}

/// A grant with what the web page shows of its request and its revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantListing {
    pub id: String,
    pub host: String,
    pub user: String,
    pub run_as: String,
    pub kind: Kind,
    pub command: String,
    pub exp: i64,
    pub created_at: i64,
    pub revoked_by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_round_trip() {
        for s in [
            RequestStatus::Pending,
            RequestStatus::Approved,
            RequestStatus::Denied,
        ] {
            assert_eq!(s.as_str().parse::<RequestStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("Pending".parse::<RequestStatus>().is_err());
        assert!(serde_json::from_str::<RequestStatus>("\"expired\"").is_err());
    }
}
