//! A host spoken for over HTTP, without a host machine: its key, registration, signed
//! requests and syncs, for the suites of the service's edge (revocation lists, denial
//! of service, hostile input).
#![allow(dead_code)] // Not every suite that includes this module uses all of it.

use jitsudo_core::grant::keys::{PublicKey, SecretKey, TrustedKey};
use jitsudo_core::wire::{self, NewRequest, RequestStatus, Signed, SyncRequest, SyncResponse};

use super::world::Service;

/// One auto-approved rule.
pub const POLICY: &str =
    "[[rule]]\nname = \"auto\"\ncommands = [\"/usr/bin/id\"]\ndecision = \"auto\"\n";

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

pub fn trusted(svc: &Service) -> Vec<TrustedKey> {
    let block = svc.trusted_block();
    let value = |k: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(k))
            .and_then(|v| v.trim().strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("no {k} in {block}"))
    };
    vec![TrustedKey {
        id: value("id"),
        key: PublicKey::from_paserk(&value("public_key")).unwrap(),
    }]
}

pub fn post<T: serde::Serialize>(
    svc: &Service,
    path: &str,
    token: Option<&str>,
    body: &T,
) -> (u16, String) {
    let mut r = agent()
        .post(format!("{}{path}", svc.url))
        .header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let mut resp = r.send(serde_json::to_string(body).unwrap()).unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

pub struct TestHost {
    pub name: String,
    pub key: SecretKey,
}

impl TestHost {
    pub fn register(svc: &Service, name: &str) -> TestHost {
        let key = SecretKey::generate("host").unwrap();
        let (s, t) = post(
            svc,
            "/v1/admin/hosts",
            Some(&svc.admin_token),
            &serde_json::json!({"name": name, "public_key": key.public.to_paserk()}),
        );
        assert_eq!(s, 200, "{t}");
        TestHost {
            name: name.into(),
            key,
        }
    }

    pub fn envelope<T: serde::Serialize>(&self, path: &str, body: &T) -> Signed {
        Signed {
            envelope: wire::sign_envelope(
                &self.key,
                &self.name,
                path,
                jitsudo_core::grant::now(),
                body,
            )
            .unwrap(),
        }
    }

    /// An auto-approved grant for alice; its id.
    pub fn grant(&self, svc: &Service) -> String {
        let body = NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: "alice".into(),
            uid: 1000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec!["/usr/bin/id".into()],
            reason: "test".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let (s, t) = post(
            svc,
            wire::PATH_REQUESTS,
            None,
            &self.envelope(wire::PATH_REQUESTS, &body),
        );
        assert_eq!(s, 200, "{t}");
        let status: RequestStatus = serde_json::from_str(&t).unwrap();
        let token = status.grant.expect("auto grant");
        jitsudo_core::grant::verify(&token, &trusted(svc), std::time::Duration::from_secs(3600))
            .unwrap()
            .id()
            .to_string()
    }

    pub fn sync(&self, svc: &Service, own: bool) -> SyncResponse {
        let body = SyncRequest {
            host_revocations: own,
        };
        let (s, t) = post(
            svc,
            wire::PATH_SYNC,
            None,
            &self.envelope(wire::PATH_SYNC, &body),
        );
        assert_eq!(s, 200, "{t}");
        serde_json::from_str(&t).unwrap()
    }
}

pub fn revoke(svc: &Service, grant: &str) {
    let (s, t) = post(
        svc,
        &format!("/v1/grants/{grant}/revoke"),
        Some(&svc.admin_token),
        &serde_json::json!({"reason": "laptop stolen"}),
    );
    assert_eq!(s, 200, "{t}");
}
