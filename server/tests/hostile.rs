//! Hostile input at the HTTP API, as a suite: every case gets a clear 4xx in the API's
//! JSON error format (`{"error": …}`, axum's own rejections and unknown routes too) and
//! stores nothing. Unicode bidi and other invisible format characters are refused in
//! what approvers read (reasons, comments, command words), with the field and the code
//! point named; rows stored before that rule are shown with them written out on the
//! web page and by `jitsudoctl requests`.

mod common;

use common::hosts::{agent, post, TestHost, POLICY};
use common::world::{run_ok, Service};
use common::TempDir;
use jitsudo_core::grant::Kind;
use jitsudo_core::wire::{self, NewRequest, Signed};

/// One raw call: (status, content type, body).
fn raw(
    svc: &Service,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String, String) {
    let url = format!("{}{path}", svc.url);
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        (_, b) => {
            let mut r = a.post(&url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(b.unwrap_or(b""))
        }
    }
    .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        resp.status().as_u16(),
        ct,
        resp.body_mut().read_to_string().unwrap(),
    )
}

#[track_caller]
fn json_error(case: &str, got: (u16, String, String), want: u16, needle: &str) {
    let (status, ct, text) = got;
    assert_eq!(status, want, "{case}: {text}");
    assert!(
        ct.starts_with("application/json"),
        "{case}: content type {ct:?}: {text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{case}: not JSON: {text}"));
    let e = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: no error field: {text}"));
    assert!(e.contains(needle), "{case}: {needle:?} not in {e:?}");
}

fn new_request(argv: &[&str], reason: &str) -> NewRequest {
    NewRequest {
        kind: Kind::Exec,
        user: "alice".into(),
        uid: 1000,
        groups: vec![],
        run_as: "root".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        reason: reason.into(),
        duration: None,
        once: false,
        source: None,
        ticket: None,
        extends: None,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// The invisible characters refused, each by code point.
const HIDDEN: &[char] = &[
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}',
    '\u{2060}',
    '\u{FEFF}',
    '\u{2028}',
    '\u{2029}',
    '\u{00AD}',
    '\u{E0041}',
];

#[test]
fn hostile_requests_get_a_json_4xx_and_store_nothing() {
    common::require_root();
    let db = TempDir::new("hostile-db");
    let url = format!("sqlite://{}/x.db", db.path().display());
    let policy = "[[rule]]\nname = \"auto\"\ncommands = [\"/usr/bin/id\", \"/usr/bin/id *\"]\ndecision = \"auto\"\n\
                  [[rule]]\nname = \"ask\"\ncommands = [\"/bin/echo *\"]\ndecision = \"approve\"\napprovers = [\"bob\"]\n";
    let svc = Service::start_with(
        &url,
        policy,
        None,
        "user_requests_per_minute = 100000\nhost_requests_per_minute = 100000\nmax_body_bytes = 4096\n",
        "",
    );
    let _ = POLICY;
    let bob = svc.add_approver("bob", &[]);
    let host = TestHost::register(&svc, "web-01");
    let bearer = format!("Bearer {bob}");
    let auth = ("authorization", bearer.as_str());
    let mut cases = 0;
    let mut case = |name: &str, got: (u16, String, String), want: u16, needle: &str| {
        json_error(name, got, want, needle);
        cases += 1;
    };

    // ---- routes, methods, paths: axum's own rejections in the JSON format too -------
    case(
        "unknown route",
        raw(&svc, "GET", "/nope", &[], None),
        404,
        "/v1",
    );
    case(
        "unknown /v1 route",
        raw(&svc, "GET", "/v1/nope", &[auth], None),
        404,
        "/v1",
    );
    case(
        "wrong method",
        raw(&svc, "GET", wire::PATH_REQUESTS, &[], None),
        405,
        "method",
    );
    case(
        "DELETE",
        raw(&svc, "DELETE", "/v1/requests", &[auth], None),
        405,
        "method",
    );
    case(
        "path not UTF-8",
        raw(&svc, "GET", "/v1/requests/%FF%FE", &[auth], None),
        400,
        "bad path",
    );
    case(
        "host path not UTF-8",
        raw(&svc, "GET", "/v1/host/requests/%FF%FE", &[], None),
        400,
        "bad path",
    );
    case(
        "recording path not UTF-8",
        raw(&svc, "GET", "/v1/recordings/%FF/x", &[auth], None),
        400,
        "bad path",
    );
    case(
        "../ id",
        raw(&svc, "GET", "/v1/requests/..%2F..%2Fetc", &[auth], None),
        400,
        "not a request id",
    );
    case(
        "grant ../ id",
        raw(
            &svc,
            "POST",
            "/v1/grants/..%2Fx/revoke",
            &[auth, JSON],
            Some(br#"{"reason":"x"}"#),
        ),
        400,
        "not a grant id",
    );
    case(
        "bad query",
        raw(&svc, "GET", "/v1/requests?limit=many", &[auth], None),
        400,
        "bad query",
    );
    case(
        "bad audit query",
        raw(&svc, "GET", "/v1/audit?since=yesterday", &[auth], None),
        400,
        "bad query",
    );

    // ---- authentication -------------------------------------------------------------
    case(
        "no token",
        raw(&svc, "GET", "/v1/requests", &[], None),
        401,
        "Bearer",
    );
    case(
        "basic scheme",
        raw(
            &svc,
            "GET",
            "/v1/requests",
            &[("authorization", "Basic Ym9iOng=")],
            None,
        ),
        401,
        "Bearer",
    );
    case(
        "unknown token",
        raw(
            &svc,
            "GET",
            "/v1/requests",
            &[("authorization", "Bearer jt_nope")],
            None,
        ),
        401,
        "unknown approver token",
    );
    case(
        "not admin",
        raw(
            &svc,
            "POST",
            "/v1/admin/approvers",
            &[auth, JSON],
            Some(br#"{"name":"eve","groups":[],"admin":true}"#),
        ),
        403,
        "not an admin",
    );
    // RFC 9110: the scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let h = format!("{scheme} {bob}");
        let (s, _, t) = raw(&svc, "GET", "/v1/requests", &[("authorization", &h)], None);
        assert_eq!(s, 200, "{scheme}: {t}");
    }

    // ---- bodies ---------------------------------------------------------------------
    let good = serde_json::to_vec(
        &host.envelope(wire::PATH_REQUESTS, &new_request(&["/usr/bin/id"], "x")),
    )
    .unwrap();
    case(
        "text/plain body",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[("content-type", "text/plain")],
            Some(&good),
        ),
        415,
        "must be JSON",
    );
    case(
        "no content type",
        raw(&svc, "POST", wire::PATH_REQUESTS, &[], Some(&good)),
        415,
        "without a Content-Type",
    );
    case(
        "form body",
        raw(
            &svc,
            "POST",
            "/v1/requests/ab/deny",
            &[auth, ("content-type", "application/x-www-form-urlencoded")],
            Some(b"reason=x"),
        ),
        415,
        "must be JSON",
    );
    case(
        "malformed JSON",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(b"{not json"),
        ),
        400,
        "invalid JSON",
    );
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    case(
        "deeply nested JSON",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(deep.as_bytes()),
        ),
        400,
        "invalid JSON",
    );
    case(
        "non-UTF-8 body",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(b"{\"envelope\":\"\xff\xfe\"}"),
        ),
        400,
        "invalid JSON",
    );
    case(
        "unknown field",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(br#"{"envelope":"x","extra":1}"#),
        ),
        400,
        "unknown field",
    );
    let big = format!("{{\"envelope\":\"{}\"}}", "a".repeat(8192));
    case(
        "oversized body",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(big.as_bytes()),
        ),
        413,
        "too large",
    );
    case(
        "not an envelope",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(br#"{"envelope":"v4.public.AAAA"}"#),
        ),
        400,
        "",
    );

    // ---- host envelopes -------------------------------------------------------------
    let stranger = TestHost {
        name: "web-99".into(),
        key: jitsudo_core::grant::keys::SecretKey::generate("host").unwrap(),
    };
    let body = |s: &Signed| serde_json::to_vec(s).unwrap();
    case(
        "unknown host",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(&body(&stranger.envelope(
                wire::PATH_REQUESTS,
                &new_request(&["/usr/bin/id"], "x"),
            ))),
        ),
        401,
        "not registered",
    );
    for (name, ts) in [
        ("i64::MIN", i64::MIN),
        ("i64::MAX", i64::MAX),
        ("an hour ago", jitsudo_core::grant::now() - 3600),
    ] {
        let env = wire::sign_envelope(
            &host.key,
            "web-01",
            wire::PATH_REQUESTS,
            ts,
            &new_request(&["/usr/bin/id"], "x"),
        )
        .unwrap();
        case(
            &format!("timestamp {name}"),
            raw(
                &svc,
                "POST",
                wire::PATH_REQUESTS,
                &[JSON],
                Some(&body(&Signed { envelope: env })),
            ),
            401,
            "away from the service's clock",
        );
    }
    let once = body(&host.envelope(wire::PATH_SYNC, &wire::SyncRequest::default()));
    assert_eq!(
        raw(&svc, "POST", wire::PATH_SYNC, &[JSON], Some(&once)).0,
        200
    );
    case(
        "replayed nonce",
        raw(&svc, "POST", wire::PATH_SYNC, &[JSON], Some(&once)),
        401,
        "replayed",
    );
    case(
        "envelope for another path",
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(&body(
                &host.envelope(wire::PATH_SYNC, &wire::SyncRequest::default()),
            )),
        ),
        401,
        "signed for",
    );
    let ask = |argv: &[&str], reason: &str| {
        raw(
            &svc,
            "POST",
            wire::PATH_REQUESTS,
            &[JSON],
            Some(&body(
                &host.envelope(wire::PATH_REQUESTS, &new_request(argv, reason)),
            )),
        )
    };
    case(
        "long reason",
        ask(&["/usr/bin/id"], &"x".repeat(1001)),
        400,
        "at most 1000",
    );
    case(
        "control character in reason",
        ask(&["/usr/bin/id"], "a\nb"),
        400,
        "control characters",
    );
    case("relative program", ask(&["id"], "x"), 400, "");
    case("empty argv", ask(&[], "x"), 400, "argv is empty");

    // ---- invisible characters: refused, named by field and code point --------------
    for &c in HIDDEN {
        let cp = format!("U+{:04X}", c as u32);
        case(
            &format!("reason with {cp}"),
            ask(&["/usr/bin/id"], &format!("ok {c}gnp.exe")),
            400,
            &format!("reason contains {cp}"),
        );
        case(
            &format!("argv with {cp}"),
            ask(&["/usr/bin/id", &format!("-u{c}")], "x"),
            400,
            &format!("argv[1] contains {cp}"),
        );
    }
    case(
        "program path with U+202E",
        ask(&["/usr/bin/\u{202e}di"], "x"),
        400,
        "argv[0] contains U+202E",
    );

    // A request approvers decide, to try comments and denial reasons on.
    let (s, t) = post(
        &svc,
        wire::PATH_REQUESTS,
        None,
        &host.envelope(
            wire::PATH_REQUESTS,
            &new_request(&["/bin/echo", "hi"], "INC-1"),
        ),
    );
    assert_eq!(s, 200, "{t}");
    let pending: wire::RequestStatus = serde_json::from_str(&t).unwrap();
    assert_eq!(pending.status, "pending");
    let id = pending.id.clone();
    case(
        "approve comment with U+FEFF",
        raw(
            &svc,
            "POST",
            &format!("/v1/requests/{id}/approve"),
            &[auth, JSON],
            Some("{\"comment\":\"lgtm\u{feff}\"}".as_bytes()),
        ),
        400,
        "comment contains U+FEFF",
    );
    for &c in HIDDEN {
        let cp = format!("U+{:04X}", c as u32);
        let b = serde_json::to_vec(&serde_json::json!({"comment": format!("fine{c}")})).unwrap();
        case(
            &format!("comment with {cp}"),
            raw(
                &svc,
                "POST",
                &format!("/v1/requests/{id}/approve"),
                &[auth, JSON],
                Some(&b),
            ),
            400,
            &format!("comment contains {cp}"),
        );
    }
    case(
        "deny reason with U+2067",
        raw(
            &svc,
            "POST",
            &format!("/v1/requests/{id}/deny"),
            &[auth, JSON],
            Some("{\"reason\":\"no \u{2067}x\"}".as_bytes()),
        ),
        400,
        "reason contains U+2067",
    );
    case(
        "deny without reason",
        raw(
            &svc,
            "POST",
            &format!("/v1/requests/{id}/deny"),
            &[auth, JSON],
            Some(br#"{"reason":" "}"#),
        ),
        400,
        "reason is required",
    );
    case(
        "approve unknown request",
        raw(
            &svc,
            "POST",
            "/v1/requests/abcdef/approve",
            &[auth, JSON],
            Some(br#"{"comment":""}"#),
        ),
        404,
        "no request",
    );
    let (s, t) = post(
        &svc,
        wire::PATH_REQUESTS,
        None,
        &host.envelope(wire::PATH_REQUESTS, &new_request(&["/usr/bin/id"], "INC-2")),
    );
    assert_eq!(s, 200, "{t}");
    let views: serde_json::Value = svc.get_json("/v1/requests", &bob);
    let grant = views
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["grant_id"].as_str())
        .unwrap()
        .to_string();
    case(
        "revoke reason with U+2028",
        raw(
            &svc,
            "POST",
            &format!("/v1/grants/{grant}/revoke"),
            &[auth, JSON],
            Some("{\"reason\":\"a\u{2028}b\"}".as_bytes()),
        ),
        400,
        "reason contains U+2028",
    );
    case(
        "revoke unknown grant",
        raw(
            &svc,
            "POST",
            "/v1/grants/nope/revoke",
            &[auth, JSON],
            Some(br#"{"reason":"x"}"#),
        ),
        404,
        "no grant",
    );

    // Nothing hostile was stored: the two requests above are all there is, still as
    // they were, and no grant was revoked.
    let views = svc.get_json("/v1/requests", &bob);
    let views = views.as_array().unwrap();
    assert_eq!(views.len(), 2, "{views:#?}");
    assert!(views
        .iter()
        .all(|v| v["approvals"].as_array().unwrap().is_empty()));
    assert!(views
        .iter()
        .any(|v| v["id"] == id.as_str() && v["status"] == "pending"));
    let (s, _, t) = raw(&svc, "GET", "/v1/revocations", &[], None);
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
    let list = wire::verify_revocations(
        v["revocations"].as_str().unwrap(),
        &common::hosts::trusted(&svc),
    )
    .unwrap();
    assert!(list.ids.is_empty());
    println!("{cases} hostile cases, each a JSON 4xx");
    assert!(cases >= 90, "{cases}");
}

/// Requests stored before invisible characters were refused are shown with them
/// written out (`\u{202e}`) wherever a person reads them.
#[test]
fn rows_stored_before_are_shown_with_invisible_characters_written_out() {
    common::require_root();
    let db = TempDir::new("hostile-old-db");
    let url = format!("sqlite://{}/x.db", db.path().display());
    common::block_on(async {
        let store = jitsudod::store::Db::connect(&url).await.unwrap();
        let mut row = common::rows::request("0123456789abcdef", "pending", 1, &["bob"]);
        row.reason = "ok \u{202e}gnp.exe".into();
        row.command = "/usr/bin/id a\u{200b}b".into();
        row.created_at = jitsudo_core::grant::now();
        store.insert_request(&row, None).await.unwrap();
        store.close().await;
    });
    let svc = Service::start(
        &url,
        "[[rule]]\nname = \"r1\"\ncommands = [\"/usr/bin/id *\"]\ndecision = \"approve\"\napprovers = [\"bob\"]\n",
        None,
    );
    let bob = svc.add_approver("bob", &[]);

    // jitsudoctl requests
    let out = run_ok(svc.ctl(&bob).args(["requests", "--pending"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("reason: ok \\u{202e}gnp.exe"), "{text}");
    assert!(text.contains("/usr/bin/id a\\u{200b}b"), "{text}");
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{200b}'),
        "{text}"
    );

    // The approver web page.
    let no_redirects = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let resp = no_redirects
        .post(format!("{}/ui/login", svc.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={bob}"))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let mut page = no_redirects
        .get(format!("{}/ui", svc.url))
        .header("cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.body_mut().read_to_string().unwrap();
    assert!(html.contains("Reason: ok \\u{202e}gnp.exe"), "{html}");
    assert!(html.contains("/usr/bin/id a\\u{200b}b"), "{html}");
    assert!(
        !html.contains('\u{202e}') && !html.contains('\u{200b}'),
        "{html}"
    );
}
