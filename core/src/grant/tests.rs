use super::*;
use crate::grant::keys::TrustedKey;

const HOUR: i64 = 3600;

fn claims(now: i64) -> Claims {
    Claims {
        jti: "0123456789abcdef0123456789abcdef".into(),
        iss: "test".into(),
        sub: "alice".into(),
        host: "web-01".into(),
        run_as: "root".into(),
        commands: vec!["/usr/bin/id".into(), "/usr/bin/journalctl *".into()],
        nbf: format_time(now),
        exp: format_time(now + HOUR),
        iat: format_time(now),
        uses: None,
        kind: Kind::Exec,
        reason: "testing".into(),
        approved_by: vec!["bob".into()],
        request: None,
        session_bound: false,
        exec: false,
        record: false,
        ticket: None,
        extends: None,
    }
}

fn setup() -> (SecretKey, Vec<TrustedKey>) {
    let key = SecretKey::generate("k1").unwrap();
    let trusted = vec![TrustedKey {
        id: "k1".into(),
        key: key.public.clone(),
    }];
    (key, trusted)
}

const MAX: Duration = Duration::from_secs(12 * 3600);

#[test]
fn round_trip() {
    let (key, trusted) = setup();
    let now = 1_800_000_000;
    let token = sign(&claims(now), &key).unwrap();
    assert!(token.starts_with("v4.public."));
    let g = verify(&token, &trusted, MAX).unwrap();
    assert_eq!(g.claims, claims(now));
    assert_eq!(g.commands.len(), 2);
    assert_eq!(g.key_id, "k1");
    assert!(g.check_binding("web-01", "alice").is_ok());
    assert!(g.check_window(now + 10, Duration::ZERO).is_ok());
}

#[test]
fn unknown_key_and_wrong_key() {
    let (key, _) = setup();
    let token = sign(&claims(1_800_000_000), &key).unwrap();
    assert_eq!(
        verify(&token, &[], MAX).unwrap_err(),
        Rejection::UnknownKey("k1".into())
    );
    // Same id, different key: a forger who knows the id but not the secret.
    let other = SecretKey::generate("k1").unwrap();
    let trusted = vec![TrustedKey {
        id: "k1".into(),
        key: other.public.clone(),
    }];
    assert_eq!(
        verify(&token, &trusted, MAX).unwrap_err(),
        Rejection::BadSignature("k1".into())
    );
}

#[test]
fn any_flipped_payload_bit_breaks_the_signature() {
    let (key, trusted) = setup();
    let token = sign(&claims(1_800_000_000), &key).unwrap();
    let body_start = "v4.public.".len();
    let body_end = token[body_start..].find('.').unwrap() + body_start;
    let bytes = token.as_bytes();
    for i in (body_start..body_end).step_by(7) {
        let mut t = bytes.to_vec();
        // Swap to another base64url character.
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        assert!(verify(&t, &trusted, MAX).is_err(), "flip at {i} accepted");
    }
}

#[test]
fn format_confusions_are_named() {
    let (_, trusted) = setup();
    let cases = [
        ("v3.public.AAAA", "version 3"),
        ("v4.local.AAAA", "v4.local"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.", "JWT"),
        ("hello", "not a PASETO"),
    ];
    for (token, want) in cases {
        let e = verify(token, &trusted, MAX).unwrap_err().to_string();
        assert!(e.contains(want), "{token}: {e}");
    }
    let huge = format!("v4.public.{}", "A".repeat(MAX_TOKEN_BYTES));
    assert!(verify(&huge, &trusted, MAX)
        .unwrap_err()
        .to_string()
        .contains("limit"));
}

#[test]
fn lifetime_over_limit() {
    let (key, trusted) = setup();
    let mut c = claims(1_800_000_000);
    c.exp = format_time(1_800_000_000 + 13 * HOUR);
    let token = sign(&c, &key).unwrap();
    assert!(matches!(
        verify(&token, &trusted, MAX),
        Err(Rejection::LifetimeTooLong { .. })
    ));
}

#[test]
fn binding_and_window_messages() {
    let (key, trusted) = setup();
    let now = 1_800_000_000;
    let g = verify(&sign(&claims(now), &key).unwrap(), &trusted, MAX).unwrap();
    assert_eq!(
        g.check_binding("db-02", "alice").unwrap_err().to_string(),
        "grant is for host \"web-01\", this host is \"db-02\""
    );
    assert!(g.check_binding("web-01", "mallory").is_err());
    let e = g
        .check_window(now + HOUR + 180, Duration::ZERO)
        .unwrap_err();
    assert_eq!(e.to_string(), "grant expired 3m ago");
    // Within skew: still fine.
    assert!(g
        .check_window(now + HOUR + 30, Duration::from_secs(60))
        .is_ok());
    let e = g
        .check_window(now - 600, Duration::from_secs(60))
        .unwrap_err();
    assert_eq!(e.to_string(), "grant is not yet valid (starts in 10m)");
}

#[test]
fn invalid_claims_cannot_be_minted() {
    let (key, _) = setup();
    let mut c = claims(1_800_000_000);
    c.commands = vec!["whoami".into()];
    assert!(sign(&c, &key).is_err());
    let mut c = claims(1_800_000_000);
    c.uses = Some(0);
    assert!(sign(&c, &key).is_err());
    let mut c = claims(1_800_000_000);
    c.sub = "a\nb".into();
    assert!(sign(&c, &key).is_err());
}

#[test]
fn signature_is_bound_to_the_grant_purpose() {
    // A token signed with another implicit assertion (another purpose) must not verify.
    let (key, trusted) = setup();
    let payload = serde_json::to_vec(&claims(1_800_000_000)).unwrap();
    let footer = br#"{"key":"k1"}"#;
    let token = paseto::sign(&key.key, &payload, footer, b"other-purpose");
    assert!(matches!(
        verify(&token, &trusted, MAX),
        Err(Rejection::BadSignature(_))
    ));
}

#[test]
fn unknown_claims_rejected() {
    let (key, trusted) = setup();
    let mut v = serde_json::to_value(claims(1_800_000_000)).unwrap();
    v["admin"] = serde_json::Value::Bool(true);
    let payload = serde_json::to_vec(&v).unwrap();
    let token = paseto::sign(&key.key, &payload, br#"{"key":"k1"}"#, IMPLICIT_ASSERTION);
    assert!(matches!(
        verify(&token, &trusted, MAX),
        Err(Rejection::Malformed(_))
    ));
}

#[test]
fn human_durations() {
    assert_eq!(human_duration(0), "0s");
    assert_eq!(human_duration(180), "3m");
    assert_eq!(human_duration(3725), "1h 2m");
    assert_eq!(human_duration(90000), "1d 1h");
}

#[test]
fn verification_mark_skips_only_the_signature_of_the_same_token_and_key() {
    let (key, trusted) = setup();
    let token = sign(&claims(1_800_000_000), &key).unwrap();
    let g = verify(&token, &trusted, MAX).unwrap();
    let mark = mark_for(&g, &trusted).unwrap();
    assert!(verify_cached(&token, &trusted, MAX, Some(&mark)).is_ok());

    // A different token under the same mark is verified in full: here, refused.
    let body_start = "v4.public.".len();
    let mut bytes = token.clone().into_bytes();
    bytes[body_start + 10] = if bytes[body_start + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let forged = String::from_utf8(bytes).unwrap();
    assert!(verify_cached(&forged, &trusted, MAX, Some(&mark)).is_err());

    // The same id now names another key (rotation, or a replaced config): the mark no
    // longer matches and the signature check fails.
    let other = SecretKey::generate("k1").unwrap();
    let rotated = vec![TrustedKey {
        id: "k1".into(),
        key: other.public.clone(),
    }];
    assert_eq!(
        verify_cached(&token, &rotated, MAX, Some(&mark)).unwrap_err(),
        Rejection::BadSignature("k1".into())
    );
    // And a removed key is still an unknown key.
    assert!(matches!(
        verify_cached(&token, &[], MAX, Some(&mark)),
        Err(Rejection::UnknownKey(_))
    ));
    // Lifetime is still checked.
    assert!(matches!(
        verify_cached(&token, &trusted, Duration::from_secs(60), Some(&mark)),
        Err(Rejection::LifetimeTooLong { .. })
    ));
}

fn edit_claims(files: &[&str]) -> Claims {
    Claims {
        kind: Kind::Edit,
        commands: files.iter().map(|f| f.to_string()).collect(),
        ..claims(1_800_000_000)
    }
}

#[test]
fn edit_grant_names_files() {
    let (key, trusted) = setup();
    let token = sign(&edit_claims(&["/etc/nginx/nginx.conf", "/etc/hosts"]), &key).unwrap();
    let g = verify(&token, &trusted, MAX).unwrap();
    assert_eq!(g.claims.kind, Kind::Edit);
    assert_eq!(g.commands[0].path, "/etc/nginx/nginx.conf");
    assert_eq!(g.commands[0].args, crate::matcher::ArgRule::None);
    assert!(g.commands[1].allows("/etc/hosts", &[] as &[&str]));
}

#[test]
fn edit_grant_refuses_paths_that_are_not_one_plain_file() {
    let (key, _) = setup();
    for (file, needle) in [
        ("etc/hosts", "not an absolute path"),
        ("/etc/../etc/shadow", "normal form"),
        ("/etc//hosts", "normal form"),
        ("/etc/./hosts", "normal form"),
        ("/etc/nginx/", "names a directory"),
        ("/", "names a directory"),
        ("/etc/nginx/*.conf", "contains '*'"),
        ("/etc/host?", "contains '?'"),
        ("/etc/[ab]", "contains '['"),
        ("/etc/a b", "contains ' '"),
        ("/etc/a\\ b", "contains '\\\\'"),
        ("/etc/a\nb", "contains '\\n'"),
        ("sha256:00 /etc/hosts", "not an absolute path"),
    ] {
        let err = sign(&edit_claims(&[file]), &key).unwrap_err();
        assert!(err.contains(needle), "{file:?}: {err}");
    }
    let err = sign(&edit_claims(&[]), &key).unwrap_err();
    assert!(err.contains("at least one file"), "{err}");
    let mut as_bob = edit_claims(&["/etc/hosts"]);
    as_bob.run_as = "bob".into();
    let err = sign(&as_bob, &key).unwrap_err();
    assert!(err.contains("no run_as user"), "{err}");
}

#[test]
fn edit_kind_in_the_payload_is_lowercase() {
    let json = serde_json::to_string(&edit_claims(&["/etc/hosts"])).unwrap();
    assert!(json.contains(r#""kind":"edit""#), "{json}");
}

#[test]
fn exec_claim_is_left_out_when_false_and_round_trips_when_true() {
    let plain = serde_json::to_string(&claims(1_800_000_000)).unwrap();
    assert!(!plain.contains("\"exec\":"), "{plain}");
    let (key, trusted) = setup();
    let mut with_exec = claims(1_800_000_000);
    with_exec.exec = true;
    let json = serde_json::to_string(&with_exec).unwrap();
    assert!(json.contains("\"exec\":true"), "{json}");
    let g = verify(&sign(&with_exec, &key).unwrap(), &trusted, MAX).unwrap();
    assert!(g.claims.exec);
    let g = verify(&sign(&claims(1_800_000_000), &key).unwrap(), &trusted, MAX).unwrap();
    assert!(!g.claims.exec);
}
