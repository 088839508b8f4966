//! The HTTP surface without a host: JSON errors, limits, authentication, metrics,
//! policy reload on SIGHUP, TLS.

mod common;

use std::process::Command;
use std::time::Duration;

use common::world::{bin, run_ok, Service};
use common::TempDir;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, Signed};

const POLICY: &str =
    "[[rule]]\nname = \"auto\"\ncommands = [\"/usr/bin/id\"]\ndecision = \"auto\"\n";

fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, Option<String>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.call()
        }
        (_, b) => {
            let mut r = agent.post(url).header("content-type", "application/json");
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            r.send(b.unwrap_or(""))
        }
    };
    let mut resp = result.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap(), retry)
}

#[track_caller]
fn json_error(status: u16, text: &str, want: u16, needle: &str) {
    assert_eq!(status, want, "{text}");
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {text}"));
    assert!(e.contains(needle), "{needle:?} not in {e:?}");
}

fn request_body(key: &SecretKey, host: &str, user: &str) -> String {
    let body = NewRequest {
        kind: jitsudo_core::grant::Kind::Exec,
        user: user.into(),
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
    let env = wire::sign_envelope(
        key,
        host,
        wire::PATH_REQUESTS,
        jitsudo_core::grant::now(),
        &body,
    )
    .unwrap();
    serde_json::to_string(&Signed { envelope: env }).unwrap()
}

#[test]
fn errors_limits_auth_metrics_and_reload() {
    common::require_root();
    let db = TempDir::new("api-db");
    let svc = Service::start_with(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
        "user_requests_per_minute = 3\nmax_body_bytes = 2048\n",
        "",
    );
    let u = |p: &str| format!("{}{p}", svc.url);

    let (s, t, _) = call("GET", &u("/healthz"), None, None);
    assert_eq!((s, t.as_str()), (200, r#"{"status":"ok"}"#));
    let (s, t, _) = call("GET", &u("/nope"), None, None);
    json_error(s, &t, 404, "/v1");
    let (s, t, _) = call("GET", &u(wire::PATH_REQUESTS), None, None);
    json_error(s, &t, 405, "method");
    let (s, t, _) = call("POST", &u(wire::PATH_REQUESTS), None, Some("{not json"));
    json_error(s, &t, 400, "invalid JSON");
    let big = format!("{{\"envelope\":\"{}\"}}", "a".repeat(4096));
    let (s, t, _) = call("POST", &u(wire::PATH_REQUESTS), None, Some(&big));
    json_error(s, &t, 413, "too large");

    // Hosts must be registered, by an admin.
    let key = SecretKey::generate("host").unwrap();
    let (s, t, _) = call(
        "POST",
        &u(wire::PATH_REQUESTS),
        None,
        Some(&request_body(&key, "web-07", "alice")),
    );
    json_error(s, &t, 401, "jitsudoctl host add web-07");
    let (s, t, _) = call("GET", &u("/v1/requests"), None, None);
    json_error(s, &t, 401, "Bearer");
    let (s, t, _) = call("GET", &u("/v1/requests"), Some("jt_wrong"), None);
    json_error(s, &t, 401, "unknown approver token");
    let hostadd = format!(
        r#"{{"name":"web-07","public_key":"{}"}}"#,
        key.public.to_paserk()
    );
    let (s, t, _) = call(
        "POST",
        &u("/v1/admin/hosts"),
        Some(&svc.admin_token),
        Some(&hostadd),
    );
    assert_eq!(s, 200, "{t}");
    let (s, t, _) = call(
        "POST",
        &u("/v1/admin/hosts"),
        Some(&svc.admin_token),
        Some(&hostadd),
    );
    json_error(s, &t, 409, "already registered");
    let (s, t, _) = call(
        "POST",
        &u("/v1/admin/hosts"),
        Some(&svc.admin_token),
        Some(r#"{"name":"x","public_key":"k4.secret.AAAA"}"#),
    );
    json_error(s, &t, 400, "k4.public");

    // Per-user rate limit: 3 a minute for alice on web-07, others unaffected.
    for _ in 0..3 {
        let (s, t, _) = call(
            "POST",
            &u(wire::PATH_REQUESTS),
            None,
            Some(&request_body(&key, "web-07", "alice")),
        );
        assert_eq!(s, 200, "{t}");
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["rule"].as_str()),
            (Some("approved"), Some("auto"))
        );
        assert!(v["grant"].as_str().unwrap().starts_with("v4.public."));
    }
    let (s, t, retry) = call(
        "POST",
        &u(wire::PATH_REQUESTS),
        None,
        Some(&request_body(&key, "web-07", "alice")),
    );
    json_error(s, &t, 429, "rate limit");
    assert!(retry.is_some());
    let (s, _, _) = call(
        "POST",
        &u(wire::PATH_REQUESTS),
        None,
        Some(&request_body(&key, "web-07", "bob")),
    );
    assert_eq!(s, 200);

    // Bad input inside a valid envelope.
    let mut bad = NewRequest {
        kind: jitsudo_core::grant::Kind::Exec,
        user: "alice;rm".into(),
        uid: 1,
        groups: vec![],
        run_as: "root".into(),
        argv: vec!["/usr/bin/id".into()],
        reason: String::new(),
        duration: None,
        once: false,
        source: None,
        ticket: None,
        extends: None,
    };
    let send = |b: &NewRequest| {
        let env = wire::sign_envelope(
            &key,
            "web-07",
            wire::PATH_REQUESTS,
            jitsudo_core::grant::now(),
            b,
        )
        .unwrap();
        call(
            "POST",
            &u(wire::PATH_REQUESTS),
            None,
            Some(&serde_json::to_string(&Signed { envelope: env }).unwrap()),
        )
    };
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "not a valid user name");
    bad.user = "carol".into();
    bad.argv = vec!["id".into()];
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "absolute");
    bad.argv = vec!["/usr/bin/id".into(), "a\nb".into()];
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "control");
    // Edit requests name plain absolute files, and no run-as user.
    bad.kind = jitsudo_core::grant::Kind::Edit;
    bad.argv = vec!["/etc/nginx/*.conf".into()];
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "contains '*'");
    bad.argv = vec!["/etc/../etc/shadow".into()];
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "normal form");
    bad.argv = vec!["/etc/hosts".into()];
    bad.run_as = "bob".into();
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "an edit grant has no run_as user");
    bad.run_as = "root".into();
    bad.kind = jitsudo_core::grant::Kind::Login;
    let (s, t, _) = send(&bad);
    json_error(s, &t, 400, "login grants are not requested");
    bad.kind = jitsudo_core::grant::Kind::Exec;

    // Metrics.
    let (s, t, _) = call("GET", &u("/metrics"), None, None);
    assert_eq!(s, 200);
    assert!(
        t.contains("jitsudod_decisions_total{decision=\"auto\"} 4"),
        "{t}"
    );
    assert!(t.contains("jitsudod_rate_limited_total 1"), "{t}");
    assert!(
        t.contains("jitsudod_auth_failures_total{kind=\"host\"} 1"),
        "{t}"
    );

    // SIGHUP: an invalid policy is rejected and the old one kept; a valid one replaces it.
    let policy_file = svc.dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        "[[rule]]\ncommands = [\"/usr/bin/id\"]\ndecision = \"sometimes\"\n",
    )
    .unwrap();
    run_ok(Command::new("kill").args(["-HUP", &svc.pid().to_string()]));
    std::thread::sleep(Duration::from_millis(500));
    assert!(svc.log().contains("policy.toml:3"), "{}", svc.log());
    let (s, t, _) = call(
        "POST",
        &u(wire::PATH_REQUESTS),
        None,
        Some(&request_body(&key, "web-07", "dave")),
    );
    assert!(
        s == 200 && t.contains("\"approved\""),
        "old policy still active: {t}"
    );
    std::fs::write(
        &policy_file,
        "[[rule]]\nname = \"no\"\ncommands = [\"/usr/bin/id\"]\ndecision = \"deny\"\n",
    )
    .unwrap();
    run_ok(Command::new("kill").args(["-HUP", &svc.pid().to_string()]));
    std::thread::sleep(Duration::from_millis(500));
    let (s, t, _) = call(
        "POST",
        &u(wire::PATH_REQUESTS),
        None,
        Some(&request_body(&key, "web-07", "erin")),
    );
    assert!(
        s == 200 && t.contains("\"denied\"") && t.contains("\"rule\":\"no\""),
        "{t}"
    );
    let (_, t, _) = call("GET", &u("/metrics"), None, None);
    assert!(
        t.contains("jitsudod_policy_reloads_total{result=\"rejected\"} 1"),
        "{t}"
    );
    assert!(
        t.contains("jitsudod_policy_reloads_total{result=\"ok\"} 1"),
        "{t}"
    );

    // `jitsudoctl policy check` names the file and line.
    std::fs::write(
        &policy_file,
        "\n[[rule]]\ncommands = [\"relative\"]\ndecision = \"auto\"\n",
    )
    .unwrap();
    let out = Command::new(bin("jitsudoctl"))
        .args(["policy", "check"])
        .arg(&policy_file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("policy.toml:3:") && err.contains("absolute"),
        "{err}"
    );
}

#[test]
fn tls_listener_and_refusal_of_plain_http_off_loopback() {
    common::require_root();
    let dir = TempDir::new("tls");
    let d = dir.path();
    // A CA and a leaf certificate for 127.0.0.1 signed by it.
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_ok(
        Command::new("openssl")
            .current_dir(d)
            .args(["req", "-x509"])
            .args(ec)
            .args([
                "-days",
                "2",
                "-subj",
                "/CN=test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ]),
    );
    run_ok(
        Command::new("openssl")
            .current_dir(d)
            .arg("req")
            .args(ec)
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ]),
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run_ok(Command::new("openssl").current_dir(d).args([
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]));
    let db = format!("sqlite://{}/x.db", d.display());
    let top = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        d.join("cert.pem").display(),
        d.join("key.pem").display()
    );
    // [tls] must come after the top-level keys, so put it in the limits slot's place.
    let svc = Service::start_with(
        &db,
        POLICY,
        None,
        &format!("user_requests_per_minute = 10\n{top}"),
        "",
    );
    assert!(svc.url.starts_with("https://127.0.0.1:"), "{}", svc.url);
    let pem = std::fs::read(d.join("ca.pem")).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        )
        .build()
        .new_agent();
    let text = agent
        .get(format!("{}/healthz", svc.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(text.contains("ok"));
    // jitsudoctl trusts the CA file it is given.
    let out = svc
        .ctl(&svc.admin_token)
        .args(["requests", "--ca-file"])
        .arg(d.join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without [tls], a non-loopback listener is refused at start.
    let cfg = d.join("plain.toml");
    std::fs::write(&cfg, "listen = \"0.0.0.0:0\"\ndatabase = \"sqlite:///tmp/none.db\"\npolicy = \"p.toml\"\nactive_key = \"k1\"\n[[signing_key]]\nfile = \"/nonexistent\"\n").unwrap();
    let out = Command::new(bin("jitsudod"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("plain.toml:1:") && err.contains("[tls]"),
        "{err}"
    );
}
