//! Votes from Slack: the Approve and Deny buttons of the Slack webhook format post
//! here (`POST /v1/slack/interactions`, Slack's "interactivity request URL").
//!
//! Slack signs each request with the app's signing secret: `X-Slack-Signature` is
//! `v0=` and the hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}`. The
//! signature is checked in constant time over the raw bytes before anything in the body
//! is read, and a timestamp more than five minutes from this service's clock is refused,
//! so a captured request cannot be replayed later. The Slack member who clicked is
//! mapped to an approver by the member id an admin gave them (`jitsudoctl approver add
//! --slack-id`, `jitsudoctl approver slack`); nobody else's click counts.
//!
//! A vote then goes through exactly the service's `approve` and `deny`: the same
//! transaction, the same rules (open, not one's own request, named by the rule, each
//! approver once, the quorum), the same audit records (with `"via": "slack"`) and
//! webhooks. A request whose rule says `chat_approval = false` (or `approver_mfa =
//! true`) takes no vote from here; the reply points to the approver page instead.
#![forbid(unsafe_code)]

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{inc, now, Error, Result, Service, Via};

/// Slack's own replay window.
pub const MAX_AGE: i64 = 5 * 60;
/// Slack's documented limit for interaction payloads is far below this.
const MAX_BODY: usize = 64 * 1024;

/// A Slack member id: `U…` or `W…` (Enterprise Grid), upper-case letters and digits.
pub fn check_member_id(id: &str) -> Result<()> {
    let ok = (3..=32).contains(&id.len())
        && (id.starts_with('U') || id.starts_with('W'))
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !ok {
        return Err(Error::Invalid(format!(
            "{id:?} is not a Slack member id (U or W, then upper-case letters and digits; Slack shows it under the member's profile, Copy member ID)"
        )));
    }
    Ok(())
}

/// `v0=HEX` of HMAC-SHA256(secret, `v0:TIMESTAMP:BODY`), as Slack computes it.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        jitsudo_policy::audit::hex(&mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Check Slack's signature headers over the raw body, at time `now`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> std::result::Result<(), String> {
    let ts = timestamp.ok_or("missing X-Slack-Request-Timestamp header")?;
    let sig = signature.ok_or("missing X-Slack-Signature header")?;
    let at: i64 = ts
        .parse()
        .map_err(|_| format!("X-Slack-Request-Timestamp {ts:?} is not Unix seconds"))?;
    if (now - at).abs() > MAX_AGE {
        return Err(format!(
            "Slack request timestamp {ts} is more than 5 minutes from this service's clock (replayed, or a clock is wrong)"
        ));
    }
    let hex = sig
        .strip_prefix("v0=")
        .ok_or("X-Slack-Signature is not a v0= signature")?;
    let bytes = unhex(hex).ok_or("X-Slack-Signature is not hex")?;
    // verify_slice compares in constant time.
    mac(secret, ts, body).verify_slice(&bytes).map_err(|_| {
        "X-Slack-Signature does not match (wrong signing secret, or an altered body)".to_string()
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Deserialize)]
struct Form {
    payload: String,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: Member,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct Member {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: String,
}

/// What the endpoint answers Slack: a message for the member who clicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The vote was recorded.
    pub counted: bool,
    pub text: String,
}

impl Reply {
    fn refused(text: String) -> Reply {
        Reply {
            counted: false,
            text,
        }
    }
}

impl Service {
    /// One interaction callback from Slack, with its two signature headers and its raw
    /// body. A bad signature, an old timestamp and a member who is no approver are
    /// errors (nothing in the body is acted on); a vote the rules refuse is a reply that
    /// says why.
    pub async fn slack_interaction(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Reply> {
        let Some(slack) = &self.config.slack else {
            return Err(Error::NotFound(
                "Slack interactions are not configured ([slack] signing_secret_file in jitsudod.toml)".into(),
            ));
        };
        if body.len() > MAX_BODY {
            return Err(Error::Invalid("Slack interaction body too large".into()));
        }
        verify(&slack.signing_secret, timestamp, signature, body, now()).map_err(|e| {
            inc(&self.metrics.approver_auth_failures);
            tracing::warn!(error = %e, "Slack interaction refused");
            Error::Unauthenticated(e)
        })?;
        let form: Form = serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::Invalid(format!("Slack interaction: no payload field: {e}")))?;
        let payload: Payload = serde_json::from_str(&form.payload)
            .map_err(|e| Error::Invalid(format!("Slack interaction payload: {e}")))?;
        if payload.kind != "block_actions" {
            return Err(Error::Invalid(format!(
                "Slack interaction of type {:?} is not a button click (block_actions)",
                payload.kind
            )));
        }
        let [action] = &payload.actions[..] else {
            return Err(Error::Invalid(
                "Slack interaction carries no single action".into(),
            ));
        };
        super::validate::request_id(&action.value)?;
        let id = action.value.as_str();
        let member = payload.user.id.as_str();
        check_member_id(member)?;
        let Some(who) = self.store.approver_by_slack_id(member).await? else {
            inc(&self.metrics.approver_auth_failures);
            tracing::warn!(slack_id = %member, request = %id, "Slack vote from a member who is no approver");
            return Err(Error::Forbidden(format!(
                "Slack member {member} is not linked to an approver; an admin links them with: jitsudoctl approver slack NAME {member}"
            )));
        };
        let row = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no request {id}")))?;
        if !row.chat_approval {
            let page = slack
                .page_url
                .as_deref()
                .map(|u| format!("<{u}|the approver page>"))
                .unwrap_or_else(|| "the approver page".into());
            tracing::info!(request = %id, approver = %who.name, rule = %row.rule, "Slack vote refused: the rule takes no chat votes");
            return Ok(Reply::refused(format!(
                "Rule {} takes no votes from chat: decide request {id} on {page}.",
                row.rule
            )));
        }
        let outcome = match action.action_id.as_str() {
            "approve" => self
                .approve_via(&who, id, "", Via::Slack)
                .await
                .map(|done| match done.grant {
                    Some(g) => format!("Approved request {id}: grant {} issued.", g.id),
                    None => format!("Approval of request {id} recorded; it needs more approvers."),
                }),
            "deny" => self
                .deny_via(&who, id, "from Slack", Via::Slack)
                .await
                .map(|_| format!("Denied request {id}.")),
            other => {
                return Err(Error::Invalid(format!(
                    "Slack action {other:?} is not approve or deny"
                )))
            }
        };
        Ok(match outcome {
            Ok(text) => Reply {
                counted: true,
                text,
            },
            // The rules refused this vote: tell the member, as the page would.
            Err(e @ (Error::Forbidden(_) | Error::Conflict(_) | Error::NotFound(_))) => {
                Reply::refused(format!("Not counted: {e}"))
            }
            Err(e) => return Err(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_signature_example_verifies() {
        // The example from Slack's "Verifying requests from Slack" page.
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let ts = "1531420618";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(signature(secret, ts, body), sig);
        let at = 1_531_420_618;
        assert_eq!(verify(secret, Some(ts), Some(sig), body, at + 10), Ok(()));
        assert!(verify(secret, Some(ts), Some(sig), body, at + 301)
            .unwrap_err()
            .contains("more than 5 minutes"));
        let mut tampered = body.to_vec();
        tampered[0] ^= 1;
        assert!(verify(secret, Some(ts), Some(sig), &tampered, at)
            .unwrap_err()
            .contains("does not match"));
        assert!(verify(secret, None, Some(sig), body, at).is_err());
        assert!(verify(secret, Some(ts), Some("v1=00"), body, at).is_err());
    }

    #[test]
    fn member_ids_are_checked() {
        assert!(check_member_id("U0123ABCD").is_ok());
        assert!(check_member_id("W012").is_ok());
        for bad in ["", "U", "u0123", "X0123", "U01 23", "U01>23"] {
            assert!(check_member_id(bad).is_err(), "{bad:?}");
        }
    }
}
