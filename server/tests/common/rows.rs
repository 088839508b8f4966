//! Rows for the storage and service suites: a request, a grant, an approver.

use jitsudod::model::{Approver, GrantRow, Kind, RequestRow};

pub const NOW: i64 = 1_800_000_000;

pub fn request(id: &str, status: &str, needed: i64, approvers: &[&str]) -> RequestRow {
    RequestRow {
        id: id.into(),
        host: "web-01".into(),
        user: "alice".into(),
        uid: 1000,
        run_as: "root".into(),
        kind: Kind::Exec,
        command: "/bin/true".into(),
        reason: "INC-1".into(),
        duration: 600,
        uses: Some(1),
        allow_exec: false,
        record: false,
        ticket: None,
        extends: None,
        chat_approval: true,
        approver_mfa: false,
        source: None,
        status: status.parse().unwrap(),
        rule: "r1".into(),
        message: "m".into(),
        approvals_needed: needed,
        approvers: serde_json::to_string(approvers).unwrap(),
        poll_hash: "ph".into(),
        created_at: NOW,
        decided_at: None,
        decided_by: None,
    }
}

pub fn grant(id: &str, request: &str, exp: i64) -> GrantRow {
    GrantRow {
        id: id.into(),
        request_id: request.into(),
        host: "web-01".into(),
        user: "alice".into(),
        token: format!("token-{id}"),
        key_id: "k1".into(),
        exp,
        created_at: NOW,
    }
}

pub fn who(name: &str, groups: &[&str]) -> Approver {
    Approver {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        admin: false,
        sign_in: None,
        read_only: false,
    }
}
