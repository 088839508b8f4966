//! The wire protocol between hosts, approvers and `jitsudod`: JSON bodies under `/v1`,
//! and the two signed documents that are not grants.
//!
//! * A **host envelope** is a PASETO v4.public token signed with the host's key
//!   (/etc/jitsudo/host.key) under the implicit assertion `jitsudo-host-request-v1`. It
//!   carries the host name, the API path it is meant for, a timestamp, a random nonce
//!   and the request body. The service checks the signature against the key registered
//!   for that host, the path, the time (± `HOST_CLOCK_WINDOW`) and that the nonce was
//!   never seen, so an envelope cannot be replayed or sent to another endpoint.
//! * The **revocation list** is a PASETO v4.public token signed by the service's active
//!   grant key under `jitsudo-revocations-v1`. Grants use `jitsudo-grant-v1`, so neither
//!   can be passed off as the other even though one key signs both.
#![forbid(unsafe_code)]

use crate::grant::paseto::{self, Untrusted};
use serde::{Deserialize, Serialize};

use crate::config::TrustedKey;
use crate::grant::keys::{PublicKey, SecretKey};
use crate::grant::Kind;

pub const HOST_ASSERTION: &[u8] = b"jitsudo-host-request-v1";
pub const REVOCATION_ASSERTION: &[u8] = b"jitsudo-revocations-v1";
/// How far a host's clock may be from the service's for its envelopes to be accepted;
/// nonces are remembered at least this long.
pub const HOST_CLOCK_WINDOW: i64 = 300;
/// Envelopes of ordinary endpoints stay far below this (the service's body limit is
/// 64 KiB by default); only journal uploads, which carry whole records, come near it.
pub const MAX_ENVELOPE_BYTES: usize = 1 << 20;
/// A journal upload batch is cut at this many bytes of records.
pub const JOURNAL_BATCH_BYTES: usize = 512 * 1024;

pub const PATH_REQUESTS: &str = "/v1/host/requests";
pub const PATH_SYNC: &str = "/v1/host/sync";
pub const PATH_JOURNAL: &str = "/v1/host/journal";
/// Header carrying the capability returned with a new request, for polling its status.
pub const POLL_KEY_HEADER: &str = "x-jitsudo-poll-key";
/// Sent (value `1`) by hosts that read `decided_by` and `comments` in a polled status.
/// Hosts from before those fields refuse unknown fields, so the service leaves them out
/// of its answer to a poll without this header: a new service never breaks an old host.
pub const POLL_DECISION_HEADER: &str = "x-jitsudo-poll-decision";

// ---- host envelopes ---------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostEnvelope {
    pub host: String,
    pub path: String,
    pub ts: i64,
    pub nonce: String,
    pub body: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFooter {
    host: String,
}

/// The JSON body a host POSTs: `{"envelope":"v4.public.…"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub envelope: String,
}

pub fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Sign `body` for `path` as `host`.
pub fn sign_envelope(
    key: &SecretKey,
    host: &str,
    path: &str,
    now: i64,
    body: &impl Serialize,
) -> Result<String, String> {
    let envelope = HostEnvelope {
        host: host.to_string(),
        path: path.to_string(),
        ts: now,
        nonce: random_hex(16)?,
        body: serde_json::to_value(body).map_err(|e| e.to_string())?,
    };
    let payload = serde_json::to_vec(&envelope).map_err(|e| e.to_string())?;
    let footer = serde_json::to_vec(&HostFooter {
        host: host.to_string(),
    })
    .map_err(|e| e.to_string())?;
    Ok(paseto::sign(&key.key, &payload, &footer, HOST_ASSERTION))
}

/// The host an envelope claims to come from (unverified: only to find its key).
pub fn envelope_host(token: &str) -> Result<String, String> {
    if token.len() > MAX_ENVELOPE_BYTES {
        return Err(format!("envelope larger than {MAX_ENVELOPE_BYTES} bytes"));
    }
    let untrusted =
        Untrusted::parse(token).map_err(|e| format!("envelope is not a v4.public token: {e}"))?;
    let footer: HostFooter = serde_json::from_slice(&untrusted.footer)
        .map_err(|_| "envelope footer does not name a host".to_string())?;
    Ok(footer.host)
}

/// Verify an envelope's signature with the host's registered key, and that it was made
/// for `path`, by `host`, within the clock window. The nonce is the caller's to check.
pub fn open_envelope(
    token: &str,
    key: &PublicKey,
    host: &str,
    path: &str,
    now: i64,
) -> Result<HostEnvelope, String> {
    let untrusted =
        Untrusted::parse(token).map_err(|e| format!("envelope is not a v4.public token: {e}"))?;
    if !untrusted.verifies(key.as_bytes(), HOST_ASSERTION) {
        return Err(format!(
            "envelope signature does not verify with the key registered for host {host:?}"
        ));
    }
    let env: HostEnvelope =
        serde_json::from_slice(&untrusted.message).map_err(|e| format!("envelope payload: {e}"))?;
    if env.host != host {
        return Err(format!(
            "envelope names host {:?} but is signed as {host:?}",
            env.host
        ));
    }
    if env.path != path {
        return Err(format!(
            "envelope was signed for {} and cannot be used for {path}",
            env.path
        ));
    }
    // In i128: an extreme timestamp (i64::MIN) is far off, not an overflow.
    let off = i128::from(env.ts) - i128::from(now);
    if off.abs() > i128::from(HOST_CLOCK_WINDOW) {
        return Err(format!(
            "envelope timestamp is {off}s away from the service's clock (limit {HOST_CLOCK_WINDOW}s); check the host's clock"
        ));
    }
    if env.nonce.len() < 16
        || env.nonce.len() > 64
        || !env.nonce.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err("envelope nonce must be 16-64 hex digits".into());
    }
    Ok(env)
}

// ---- host journal upload ----------------------------------------------------------------

/// Host journal records (as the JSON lines of /var/lib/jitsudo/journal), in order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JournalUpload {
    pub records: Vec<String>,
}

/// The service has stored this host's records up to and including `stored_through`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JournalAck {
    pub stored_through: u64,
}

// ---- session recording upload -----------------------------------------------------------

/// Every recording upload goes to this one path; the body says which step it is.
pub const PATH_RECORDINGS: &str = "/v1/host/recordings";
/// A part carries at most this many bytes of one file, so that its envelope (the bytes
/// in base64, inside the token's own base64) stays under `MAX_ENVELOPE_BYTES`.
pub const RECORDING_PART_BYTES: usize = 512 * 1024;
/// The files of a recording the service stores: sudo's, and jitsudo's `chain`.
pub const RECORDING_FILES: [&str; 9] = [
    "log", "log.json", "timing", "stdin", "stdout", "stderr", "ttyin", "ttyout", "chain",
];

/// One step of uploading recording `id` of the signing host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordingUpload {
    /// How much of each file does the service hold, and is the recording complete?
    Status { id: String },
    /// Bytes `offset..offset+len` of `file`, base64. Stored only at the file's current
    /// length: a part the service holds already is acknowledged again, a gap refused.
    Part {
        id: String,
        file: String,
        offset: u64,
        data: String,
    },
    /// Every part is sent: the service verifies the chain over what it stored and
    /// against this seal, then indexes the recording.
    Finish(RecordingMeta),
}

/// What a host says of a finished recording.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordingMeta {
    pub id: String,
    pub grant: String,
    pub user: String,
    pub run_as: String,
    pub command: String,
    /// Seconds since the epoch.
    pub started: i64,
    /// The seal: sealed chunks and the last chain hash (hex).
    pub chunks: u64,
    pub sha256: String,
    /// The recording was cut (its supervisor was killed before it sealed it): the seal
    /// is the last chunk whose chain verified on the host, and bytes after it are sent
    /// too but are not covered. Absent for a sealed recording.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A stored recording's state: `sealed` (its run ended and sealed it) or `cut`.
pub const RECORDING_SEALED: &str = "sealed";
pub const RECORDING_CUT: &str = "cut";

fn sealed_state() -> String {
    RECORDING_SEALED.to_string()
}

/// The service's answer to every step: how much of each file it holds, and whether the
/// recording is stored complete (then `sha256` is its sealed hash).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordingAck {
    pub id: String,
    pub complete: bool,
    #[serde(default)]
    pub held: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A recording as the service lists it to auditors.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordingView {
    pub host: String,
    pub id: String,
    pub grant: String,
    pub user: String,
    pub run_as: String,
    pub command: String,
    pub started: i64,
    pub chunks: u64,
    pub sha256: String,
    pub bytes: u64,
    pub received_at: i64,
    /// `sealed` or `cut` (`RECORDING_SEALED`, `RECORDING_CUT`).
    #[serde(default = "sealed_state")]
    pub state: String,
}

/// `GET /v1/recordings/{host}/{id}`: the recording and its files, base64.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordingDownload {
    pub recording: RecordingView,
    pub files: std::collections::BTreeMap<String, String>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`base64_encode`]; anything else (other alphabets, missing padding,
/// stray characters) is refused.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err("base64: length is not a multiple of 4".into());
    }
    let value = |c: u8| -> Result<u32, String> {
        B64.iter()
            .position(|&x| x == c)
            .map(|p| p as u32)
            .ok_or_else(|| format!("base64: invalid character {:?}", c as char))
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, quad) in bytes.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return Err("base64: misplaced padding".into());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    Ok(out)
}

// ---- revocation lists -------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RevocationClaims {
    pub iss: String,
    /// Unix seconds when the service produced the list.
    pub issued_at: i64,
    pub ids: Vec<String>,
    /// The host the list is for: it then holds the revoked grants issued to that host
    /// only (`POST /v1/host/sync` with `host_revocations`). Absent on the fleet's list
    /// (`GET /v1/revocations`), which older hosts read and which holds every revoked
    /// grant; left out when absent, so that those hosts still parse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFooter {
    key: String,
}

pub fn sign_revocations(claims: &RevocationClaims, key: &SecretKey) -> Result<String, String> {
    let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let footer = serde_json::to_vec(&KeyFooter {
        key: key.id.clone(),
    })
    .map_err(|e| e.to_string())?;
    Ok(paseto::sign(
        &key.key,
        &payload,
        &footer,
        REVOCATION_ASSERTION,
    ))
}

/// Verify a revocation list against the host's trusted keys.
pub fn verify_revocations(token: &str, trusted: &[TrustedKey]) -> Result<RevocationClaims, String> {
    if token.len() > 4 << 20 {
        return Err("revocation list is too large".into());
    }
    let untrusted = Untrusted::parse(token.trim())
        .map_err(|e| format!("revocation list is not a v4.public token: {e}"))?;
    let footer: KeyFooter = serde_json::from_slice(&untrusted.footer)
        .map_err(|_| "revocation list footer does not name a key".to_string())?;
    let key = trusted.iter().find(|k| k.id == footer.key).ok_or_else(|| {
        format!(
            "revocation list is signed by unknown key id {:?}",
            footer.key
        )
    })?;
    if !untrusted.verifies(key.key.as_bytes(), REVOCATION_ASSERTION) {
        return Err(format!(
            "revocation list signature invalid for key {:?}",
            footer.key
        ));
    }
    let claims: RevocationClaims = serde_json::from_slice(&untrusted.message)
        .map_err(|e| format!("revocation list claims: {e}"))?;
    Ok(claims)
}

/// Verify the revocation list a sync answered for `host`: signed by a trusted key (see
/// [`verify_revocations`]) and made for `host`. A host's list holds only that host's
/// revoked grants, so another host's list, or the fleet's list where this host asked
/// for its own, is refused: taken as this host's, it could leave one of this host's
/// revoked grants out.
pub fn verify_host_revocations(
    token: &str,
    trusted: &[TrustedKey],
    host: &str,
) -> Result<RevocationClaims, String> {
    let claims = verify_revocations(token, trusted)?;
    match claims.host.as_deref() {
        Some(h) if h == host => Ok(claims),
        Some(h) => Err(format!(
            "the revocation list is for host {h:?}, not this host ({host:?}); refusing it"
        )),
        None => Err(format!(
            "the revocation list names no host, but this host ({host:?}) asked for its own \
             (is jitsudod older than this host's jitsudo?); refusing it"
        )),
    }
}

// ---- host API bodies --------------------------------------------------------------------

/// `POST /v1/host/requests` (inside an envelope): what the host vouches for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// User name and uid from the kernel's real uid.
    pub user: String,
    pub uid: u32,
    /// The user's groups on the host.
    #[serde(default)]
    pub groups: Vec<String>,
    pub run_as: String,
    /// What the grant is for. Left out for `exec`, so a request for a command reads as
    /// it always did.
    #[serde(default = "exec_kind", skip_serializing_if = "is_exec_kind")]
    pub kind: Kind,
    /// Resolved absolute program path, then the arguments; for `edit`, the files.
    pub argv: Vec<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default)]
    pub once: bool,
    /// SSH client address, when the user came in over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `--ticket`: the ticket id a policy rule may require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// `jitsudo --extend GRANT`: the id of the caller's grant this request would replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

fn exec_kind() -> Kind {
    Kind::Exec
}

fn is_exec_kind(kind: &Kind) -> bool {
    *kind == Kind::Exec
}

/// A request's state as the requester sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequestStatus {
    pub id: String,
    /// `pending`, `approved`, `denied`.
    pub status: String,
    pub rule: String,
    pub message: String,
    pub approvals: u32,
    pub approvals_needed: u32,
    /// Who may approve (`bob`, `group:sre`).
    pub approvers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Only in the answer to the request itself: the capability for polling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_key: Option<String>,
    /// Once decided by people: who approved (or the one who denied), so the waiting
    /// requester hears who answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decided_by: Vec<String>,
    /// The approvers' comments (`bob: looks fine`), or the denial's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
}

/// `POST /v1/host/sync` (inside an envelope).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Answer with this host's own revocation list (`RevocationClaims::host` set, only
    /// the revoked grants issued to this host) rather than the whole fleet's. `jitsudo
    /// --sync` asks for it; older hosts send `{}` and get the fleet's list.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_revocations: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// Unexpired, unrevoked grants issued for this host.
    pub grants: Vec<SyncedGrant>,
    /// The signed revocation list.
    pub revocations: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncedGrant {
    pub user: String,
    pub token: String,
}

// ---- approver / admin API bodies --------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestView {
    pub id: String,
    pub host: String,
    pub user: String,
    pub run_as: String,
    /// `edit`: `command` is the files a `jitsudo -e` grant would name. Left out for exec.
    #[serde(default = "exec_kind", skip_serializing_if = "is_exec_kind")]
    pub kind: Kind,
    pub command: String,
    pub reason: String,
    pub status: String,
    pub rule: String,
    pub message: String,
    pub created_at: i64,
    pub duration: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    pub approvals_needed: u32,
    pub approvers: Vec<String>,
    pub approvals: Vec<ApprovalView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The grant an extension request would replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalView {
    pub approver: String,
    pub comment: String,
    pub at: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostAdd {
    pub name: String,
    pub public_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverAdd {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub admin: bool,
    /// The approver's Slack member id (`U…`), for votes from Slack's buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_id: Option<String>,
    /// What the token may do: `approve` (and read), `admin` (everything), `read`
    /// (lists, audit trail, recordings; no votes, no revocations). Default: `admin` with
    /// `admin`, else `approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Seconds until the token stops working; none: it never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverToken {
    pub name: String,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the token stops working (Unix seconds); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Every 4xx/5xx body: `{"error":"what went wrong and what to do"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sealed_recording_says_nothing_of_cut_and_a_view_defaults_to_sealed() {
        let meta = RecordingMeta {
            id: "000001".into(),
            grant: "g".into(),
            user: "alice".into(),
            run_as: "root".into(),
            command: "/bin/sh".into(),
            started: 1,
            chunks: 2,
            sha256: "ab".repeat(32),
            cut: false,
        };
        let text = serde_json::to_string(&meta).unwrap();
        assert!(!text.contains("cut"), "{text}");
        let cut = RecordingMeta { cut: true, ..meta };
        let text = serde_json::to_string(&cut).unwrap();
        assert_eq!(serde_json::from_str::<RecordingMeta>(&text).unwrap(), cut);
        let view: RecordingView = serde_json::from_str(
            r#"{"host":"h","id":"000001","grant":"g","user":"u","run_as":"root","command":"c","started":1,"chunks":1,"sha256":"x","bytes":3,"received_at":2}"#,
        )
        .unwrap();
        assert_eq!(view.state, RECORDING_SEALED);
    }

    use super::*;
    use crate::grant::keys::SecretKey;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for n in 0..70usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        for bad in ["Zm8", "Zm==Zm8=", "Z===", "Zm-_", "Zm8 "] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }

    /// A full part of incompressible bytes, signed, is under the envelope limit.
    #[test]
    fn a_full_recording_part_fits_an_envelope() {
        let key = SecretKey::generate("host").unwrap();
        let data: Vec<u8> = (0..RECORDING_PART_BYTES)
            .map(|i| (i * 7919 % 251) as u8)
            .collect();
        let body = RecordingUpload::Part {
            id: "00000A".into(),
            file: "ttyout".into(),
            offset: 1 << 40,
            data: base64_encode(&data),
        };
        let envelope = sign_envelope(&key, &"h".repeat(255), PATH_RECORDINGS, 1, &body).unwrap();
        assert!(envelope.len() < MAX_ENVELOPE_BYTES, "{}", envelope.len());
    }

    /// A command request is sent as before (no `kind`); an edit request says so, and
    /// reads back as one.
    #[test]
    fn request_kind_is_sent_only_for_edits() {
        let mut body = NewRequest {
            kind: crate::grant::Kind::Exec,
            user: "alice".into(),
            uid: 1000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec!["/etc/hosts".into()],
            reason: "x".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let text = serde_json::to_string(&body).unwrap();
        assert!(!text.contains("kind"), "{text}");
        let back: NewRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.kind, crate::grant::Kind::Exec);
        body.kind = crate::grant::Kind::Edit;
        let text = serde_json::to_string(&body).unwrap();
        assert!(text.contains(r#""kind":"edit""#), "{text}");
        assert_eq!(serde_json::from_str::<NewRequest>(&text).unwrap(), body);
    }

    #[test]
    fn envelope_round_trip_and_binding() {
        let key = SecretKey::generate("host").unwrap();
        let body = NewRequest {
            kind: crate::grant::Kind::Exec,
            user: "alice".into(),
            uid: 1000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec!["/bin/true".into()],
            reason: "x".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let t = sign_envelope(&key, "web-01", PATH_REQUESTS, 1000, &body).unwrap();
        assert_eq!(envelope_host(&t).unwrap(), "web-01");
        let env = open_envelope(&t, &key.public, "web-01", PATH_REQUESTS, 1010).unwrap();
        let back: NewRequest = serde_json::from_value(env.body).unwrap();
        assert_eq!(back, body);
        assert!(open_envelope(&t, &key.public, "web-01", PATH_SYNC, 1010)
            .unwrap_err()
            .contains("signed for"));
        assert!(
            open_envelope(&t, &key.public, "web-01", PATH_REQUESTS, 5000)
                .unwrap_err()
                .contains("clock")
        );
        let other = SecretKey::generate("host").unwrap();
        assert!(
            open_envelope(&t, &other.public, "web-01", PATH_REQUESTS, 1000)
                .unwrap_err()
                .contains("signature")
        );
    }

    #[test]
    fn revocation_list_is_not_a_grant_and_vice_versa() {
        let key = SecretKey::generate("k1").unwrap();
        let trusted = vec![TrustedKey {
            id: "k1".into(),
            key: key.public.clone(),
        }];
        let claims = RevocationClaims {
            iss: "jitsudod".into(),
            issued_at: 5,
            ids: vec!["abc".into()],
            host: None,
        };
        let list = sign_revocations(&claims, &key).unwrap();
        assert_eq!(verify_revocations(&list, &trusted).unwrap(), claims);
        // Not acceptable as a grant (different implicit assertion).
        let e = crate::grant::verify(&list, &trusted, std::time::Duration::from_secs(3600))
            .unwrap_err();
        assert!(e.to_string().contains("signature invalid"), "{e}");
        // And a grant is not acceptable as a revocation list.
        let now = crate::grant::now();
        let grant = crate::grant::sign(
            &crate::grant::Claims {
                jti: "abc".into(),
                iss: "t".into(),
                sub: "alice".into(),
                host: "h".into(),
                run_as: "root".into(),
                commands: vec!["/bin/true".into()],
                nbf: crate::grant::format_time(now),
                exp: crate::grant::format_time(now + 60),
                iat: crate::grant::format_time(now),
                uses: None,
                kind: crate::grant::Kind::Exec,
                reason: String::new(),
                approved_by: vec![],
                request: None,
                session_bound: false,
                exec: false,
                record: false,
                ticket: None,
                extends: None,
            },
            &key,
        )
        .unwrap();
        assert!(verify_revocations(&grant, &trusted)
            .unwrap_err()
            .contains("signature invalid"));
        // A host envelope is neither.
        let env = sign_envelope(&key, "h", PATH_SYNC, now, &SyncRequest::default()).unwrap();
        assert!(verify_revocations(&env, &trusted).is_err());
    }

    #[test]
    fn an_extreme_envelope_timestamp_is_refused_not_overflowed() {
        let key = SecretKey::generate("host").unwrap();
        for (ts, now) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (i64::MIN, 1000)] {
            let t = sign_envelope(&key, "web-01", PATH_SYNC, ts, &SyncRequest::default()).unwrap();
            let e = open_envelope(&t, &key.public, "web-01", PATH_SYNC, now).unwrap_err();
            assert!(e.contains("away from the service's clock"), "{e}");
        }
    }

    #[test]
    fn a_host_takes_only_its_own_revocation_list() {
        let key = SecretKey::generate("k1").unwrap();
        let trusted = vec![TrustedKey {
            id: "k1".into(),
            key: key.public.clone(),
        }];
        let list = |host: Option<&str>| {
            sign_revocations(
                &RevocationClaims {
                    iss: "jitsudod".into(),
                    issued_at: 5,
                    ids: vec!["abc".into()],
                    host: host.map(str::to_string),
                },
                &key,
            )
            .unwrap()
        };
        let own = verify_host_revocations(&list(Some("web-01")), &trusted, "web-01").unwrap();
        assert_eq!(own.host.as_deref(), Some("web-01"));
        let e = verify_host_revocations(&list(Some("web-02")), &trusted, "web-01").unwrap_err();
        assert_eq!(
            e,
            r#"the revocation list is for host "web-02", not this host ("web-01"); refusing it"#
        );
        let e = verify_host_revocations(&list(None), &trusted, "web-01").unwrap_err();
        assert!(e.starts_with("the revocation list names no host"), "{e}");
        // A name that would turn a log line around is shown escaped.
        let e =
            verify_host_revocations(&list(Some("web\u{202e}10")), &trusted, "web-01").unwrap_err();
        assert!(e.contains(r"web\u{202e}10"), "{e}");
        // The fleet's list, as older hosts read it, has no host field at all.
        let claims = RevocationClaims {
            iss: "i".into(),
            issued_at: 1,
            ids: vec![],
            host: None,
        };
        assert_eq!(
            serde_json::to_string(&claims).unwrap(),
            r#"{"iss":"i","issued_at":1,"ids":[]}"#
        );
        assert_eq!(
            serde_json::to_string(&SyncRequest::default()).unwrap(),
            "{}"
        );
    }
}
