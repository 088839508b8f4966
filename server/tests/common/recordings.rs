//! What the recording suites share: the policy their service runs, and GETs that keep
//! the status and read large bodies (a recording's files, in base64).

use std::path::{Path, PathBuf};

use jitsudo_core::iolog::writer::{Recorder, Seal};
use jitsudo_core::iolog::{SessionInfo, Stream};

use super::world::Service;

/// The host the recordings of these suites come from.
pub const REC_HOST: &str = "rec-01";

pub const POLICY: &str = r#"
[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"
max_duration = "1h"
"#;

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// GET with an optional bearer token: (status, body).
pub fn get(svc: &Service, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut r = agent().get(format!("{}{path}", svc.url));
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let mut resp = r.call().unwrap();
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// A recorded session's description, as the supervisor writes it.
pub fn session(user: &str, grant: &str) -> SessionInfo {
    SessionInfo {
        started: (jitsudo_core::grant::now(), 0),
        user: user.into(),
        host: REC_HOST.into(),
        cwd: "/".into(),
        run_user: "root".into(),
        run_uid: 0,
        run_group: "root".into(),
        run_gid: 0,
        tty: "/dev/pts/9".into(),
        lines: 24,
        columns: 80,
        command: "/bin/sh".into(),
        argv: vec!["sh".into(), "-c".into(), "work".into()],
        grant: grant.into(),
    }
}

/// Record `bytes` of varied output (beginning with `marker`), in writes of 64 KiB.
pub fn record(base: &Path, user: &str, grant: &str, marker: &str, bytes: usize) -> (Seal, PathBuf) {
    let mut r = Recorder::create(base, &session(user, grant), true).unwrap();
    r.record(Stream::TtyIn, b"work\r").unwrap();
    r.record(Stream::TtyOut, marker.as_bytes()).unwrap();
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7919 % 251) as u8).collect();
    for chunk in data.chunks(64 << 10) {
        r.record(Stream::TtyOut, chunk).unwrap();
    }
    let dir = r.dir().to_path_buf();
    (r.finish().unwrap(), dir)
}
