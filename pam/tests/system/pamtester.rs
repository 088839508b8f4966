//! Each phase of the real pam_jitsudo.so, loaded by libpam in pamtester, in a private
//! mount namespace (see sandbox.rs).

use std::time::Duration;

use crate::sandbox::{messages, priority, Sandbox, HOST};

const STACK: &str = "auth     required MODULE\n\
                     account  required MODULE exempt_group=jitadmins\n\
                     session  required MODULE\n";

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn account_needs_a_login_grant() {
    let sb = Sandbox::new();
    sb.pam_service("jt", STACK);

    // No grant: denied, told why, and logged as an alert with rhost and service.
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &["rhost=198.51.100.4"], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "jitsudo: login refused for jtalice: no login grant for {HOST}"
        )),
        "{out:?}"
    );
    let lines = sb.log.wait_for("login denied", WAIT);
    assert_eq!(
        messages(&lines),
        vec![format!(
            "jtalice : login denied: no login grant for {HOST} ; SERVICE=jt ; RHOST=198.51.100.4 ; TTY=unknown"
        )]
    );
    assert_eq!(
        priority(&lines[0]),
        10 * 8 + 1,
        "authpriv.alert: {}",
        lines[0]
    );

    // An exec grant does not let anyone log in.
    let (exec_token, _) = sb.mint("jtalice", &["--command", "/usr/bin/id"]);
    assert_eq!(
        sb.jitsudo_as("jtalice", &["--import", "-"], &exec_token)
            .code,
        0
    );
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");

    // A login grant cached by the setuid binary's --import admits the user.
    let id = sb.import_login_grant("jtalice", &[]);
    sb.log.take();
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &["rhost=198.51.100.4"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let lines = sb.log.wait_for("login allowed", WAIT);
    assert_eq!(
        messages(&lines),
        vec![format!(
            "jtalice : login allowed ; SERVICE=jt ; RHOST=198.51.100.4 ; TTY=unknown ; GRANT={id}"
        )]
    );
    assert_eq!(priority(&lines[0]), 10 * 8 + 5, "authpriv.notice");

    // Someone else's grant is not jtbob's.
    let out = sb.pamtester("jt", "jtbob", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");

    // Break-glass: a member of the exempt group gets in without a grant.
    let out = sb.pamtester("jt", "jtadmin", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 0, "{out:?}");
    sb.log.wait_for(
        "jtadmin : login allowed: member of exempt group jitadmins",
        WAIT,
    );
}

#[test]
fn one_time_login_grant_and_revocation() {
    let sb = Sandbox::new();
    sb.pam_service("jt", STACK);
    let id = sb.import_login_grant("jtalice", &["--uses", "1"]);
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 0, "{out:?}");
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("one-time grant has already been used"),
        "{out:?}"
    );

    let id2 = sb.import_login_grant("jtbob", &[]);
    sb.revoke(&[&id2]);
    let out = sb.pamtester("jt", "jtbob", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    let lines = messages(&sb.log.wait_for("jtbob : login denied", WAIT));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("grant has been revoked (grant {id2})"))),
        "{lines:#?}"
    );
    let _ = id;
}

#[test]
fn auth_asks_for_a_token_verifies_and_caches_it() {
    let sb = Sandbox::new();
    sb.pam_service("jt", STACK);
    let (token, id) = sb.mint("jtalice", &["--kind", "login", "--for", "20m"]);

    let out = sb.pamtester(
        "jt",
        "jtalice",
        &["authenticate", "acct_mgmt"],
        &[],
        &format!("{token}\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("jitsudo login grant for jtalice on {HOST}")),
        "prompt: {out:?}"
    );
    let lines = messages(&sb.log.wait_for("login allowed", WAIT));
    assert!(
        lines.contains(&format!(
        "jtalice : login grant imported ; SERVICE=jt ; RHOST=unknown ; TTY=unknown ; GRANT={id}"
    )),
        "{lines:#?}"
    );

    // Cached where the setuid binary looks: jitsudo -l lists it.
    let out = sb.jitsudo_as("jtalice", &["-l"], "");
    assert!(
        out.stdout.contains(&id[..12]) && out.stdout.contains("(login)"),
        "{out:?}"
    );

    // A cached grant is not proof: auth asks again, and with nothing pasted the module
    // has no say (PAM_IGNORE), which in an auth stack of this module alone libpam turns
    // into a failure.
    let out = sb.pamtester("jt", "jtalice", &["authenticate"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("paste the token"), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(!out.stderr.contains("refused"), "{out:?}");
    assert!(!out.stdout.contains("successfully"), "{out:?}");
    // Pasting it again is proof.
    let out = sb.pamtester(
        "jt",
        "jtalice",
        &["authenticate"],
        &[],
        &format!("{token}\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
}

/// What the auth phase answers, seen through real libpam: no token pasted is PAM_IGNORE
/// (a later module decides, so `pam_permit` lets it through and the module alone fails),
/// a bad token is a refusal whatever follows it, a good one succeeds; and every user —
/// with a grant, without, exempt, unknown — sees the same prompt and answers.
#[test]
fn auth_without_a_pasted_token_has_no_say() {
    let sb = Sandbox::new();
    // exempt_group on the auth lines too: it must change nothing there.
    sb.pam_service("alone", "auth required MODULE exempt_group=jitadmins\n");
    sb.pam_service(
        "then-permit",
        "auth required MODULE exempt_group=jitadmins\nauth required pam_permit.so\n",
    );
    sb.import_login_grant("jtalice", &[]);
    let (token, _) = sb.mint("jtcarol", &["--kind", "login"]);
    let same = |out: &crate::sandbox::Outcome, user: &str| {
        (
            out.code,
            out.stdout.replace(user, "U"),
            out.stderr.replace(user, "U"),
        )
    };
    let mut answers = Vec::new();
    for user in ["jtalice", "jtcarol", "jtadmin", "jtnobody"] {
        let alone = sb.pamtester("alone", user, &["authenticate"], &[], "");
        assert_eq!(alone.code, 1, "{user}: {alone:?}");
        assert!(
            alone
                .stderr
                .contains(&format!("jitsudo login grant for {user} on {HOST}")),
            "{user}: {alone:?}"
        );
        assert!(
            alone.stderr.contains("Permission denied"),
            "{user}: {alone:?}"
        );
        let permit = sb.pamtester("then-permit", user, &["authenticate"], &[], "");
        assert_eq!(permit.code, 0, "{user}: {permit:?}");
        let junk = sb.pamtester("then-permit", user, &["authenticate"], &[], "junk\n");
        assert_eq!(junk.code, 1, "{user}: {junk:?}");
        assert!(
            junk.stderr
                .contains("jitsudo: grant token refused: malformed grant"),
            "{user}: {junk:?}"
        );
        answers.push((same(&alone, user), same(&permit, user), same(&junk, user)));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");

    let out = sb.pamtester(
        "alone",
        "jtcarol",
        &["authenticate"],
        &[],
        &format!("{token}\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("successfully authenticated"), "{out:?}");
}

#[test]
fn auth_refuses_malformed_tokens_with_a_clear_message_and_no_crash() {
    let sb = Sandbox::new();
    sb.pam_service("jt", STACK);
    let (exec_token, _) = sb.mint("jtalice", &["--command", "/usr/bin/id"]);
    let (bob_token, _) = sb.mint("jtbob", &["--kind", "login"]);
    let (_, expired_id) = sb.mint(
        "jtalice",
        &["--kind", "login", "--start", "-2h", "--for", "1h"],
    );
    // One base64 character of the payload changed: still well-formed, no longer signed.
    let mut tampered = sb.mint("jtalice", &["--kind", "login"]).0.into_bytes();
    let at = "v4.public.".len() + 12;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            "hello world".into(),
            "malformed grant: not a PASETO v4.public token",
        ),
        (
            "v4.public.!!!!".into(),
            "malformed grant: bad token encoding",
        ),
        ("eyJhbGciOiJIUzI1NiJ9.e30.x".into(), "this looks like a JWT"),
        (
            "\u{1b}[31mv4.local.AAAA".into(),
            "not a PASETO v4.public token",
        ),
        (tampered, "grant signature invalid"),
        (
            exec_token,
            "this is an exec grant; logging in needs a login grant",
        ),
        (bob_token, "grant is for user \"jtbob\", not \"jtalice\""),
        ("A".repeat(3000), "not a PASETO v4.public token"),
    ];
    for (pasted, why) in cases {
        let out = sb.pamtester(
            "jt",
            "jtalice",
            &["authenticate"],
            &[],
            &format!("{pasted}\n"),
        );
        assert_eq!(out.code, 1, "{why}: {out:?}");
        assert!(
            out.stderr.contains("jitsudo: grant token refused: ") && out.stderr.contains(why),
            "{why}: {out:?}"
        );
        assert!(out.stderr.contains("Permission denied"), "{why}: {out:?}");
        let lines = messages(&sb.log.wait_for("login grant refused", WAIT));
        // The log escapes ';', its field separator, as \x3b.
        let logged = why.replace(';', "\\x3b");
        assert!(
            lines.iter().any(|l| l.contains(&logged)),
            "{why}: {lines:#?}"
        );
    }
    let _ = expired_id;
    // Nothing refused was cached.
    let out = sb.jitsudo_as("jtalice", &["-l"], "");
    assert!(out.stdout.contains("no usable grants"), "{out:?}");
    // No input at all (EOF) or an empty line: no say, which alone is a failure; no crash.
    for input in ["", "\n"] {
        let out = sb.pamtester("jt", "jtalice", &["authenticate"], &[], input);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(!out.stderr.contains("refused"), "{out:?}");
    }
}

#[test]
fn session_lines_and_session_bound_grants() {
    let sb = Sandbox::new();
    sb.pam_service("jt", STACK);
    let id = sb.import_login_grant("jtalice", &["--session-bound"]);
    let kept = sb.import_login_grant("jtbob", &[]);

    let ops = ["acct_mgmt", "open_session", "close_session"];
    let out = sb.pamtester(
        "jt",
        "jtalice",
        &ops,
        &["rhost=203.0.113.9", "tty=pts/7"],
        "",
    );
    assert_eq!(out.code, 0, "{out:?}");
    let lines = messages(&sb.log.wait_for("session-bound grant dropped", WAIT));
    let tail = format!("SERVICE=jt ; RHOST=203.0.113.9 ; TTY=pts/7 ; GRANT={id}");
    assert_eq!(
        lines,
        vec![
            format!("jtalice : login allowed ; {tail}"),
            format!("jtalice : session opened ; {tail}"),
            format!("jtalice : session closed ; {tail}"),
            format!("jtalice : session-bound grant dropped ; {tail}"),
        ]
    );
    // The grant ended with the session: the next login is refused.
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    // A grant that is not session-bound outlives its session.
    let out = sb.pamtester("jt", "jtbob", &ops, &[], "");
    assert_eq!(out.code, 0, "{out:?}");
    let out = sb.pamtester("jt", "jtbob", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 0, "{out:?}");
    let lines = messages(&sb.log.take());
    assert!(!lines.iter().any(|l| l.contains("dropped")), "{lines:#?}");
    let _ = kept;
}

#[test]
fn bad_module_arguments_are_a_service_error() {
    let sb = Sandbox::new();
    sb.pam_service("jt", "account required MODULE exmpt_group=jitadmins\n");
    let out = sb.pamtester("jt", "jtadmin", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    // pam_strerror(PAM_SERVICE_ERR)
    assert!(out.stderr.contains("Error in service module"), "{out:?}");
    let lines = messages(&sb.log.wait_for("bad module arguments", WAIT));
    assert!(
        lines[0].starts_with("jtadmin : error: account: bad module arguments: unknown module argument \"exmpt_group=jitadmins\""),
        "{lines:#?}"
    );

    for stack in [
        "auth required MODULE debug=1\n",
        "session required MODULE audit_only audit_only\n",
    ] {
        sb.pam_service("jt2", stack);
        let ops: &[&str] = if stack.starts_with("auth") {
            &["authenticate"]
        } else {
            &["open_session"]
        };
        let out = sb.pamtester("jt2", "jtalice", ops, &[], "");
        assert_eq!(out.code, 1, "{stack}: {out:?}");
        assert!(
            out.stderr.contains("Error in service module"),
            "{stack}: {out:?}"
        );
    }
}

#[test]
fn missing_or_untrusted_config_fails_closed_with_a_log_line() {
    let sb = Sandbox::new();
    sb.pam_service("jt", STACK);
    sb.import_login_grant("jtalice", &[]);
    let dev_log = sb.capture_dev_log();

    // World-writable config: refused, logged to the configured socket is impossible, so
    // the line goes to /dev/log.
    std::fs::set_permissions(
        sb.path("/etc/jitsudo/jitsudo.toml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Error in service module"), "{out:?}");
    let lines = messages(&dev_log.wait_for("refusing every login", WAIT));
    assert!(
        lines[0].contains("jtalice : error: account: cannot use /etc/jitsudo/jitsudo.toml: refusing config: /etc/jitsudo/jitsudo.toml is writable by group or others"),
        "{lines:#?}"
    );

    std::fs::remove_file(sb.path("/etc/jitsudo/jitsudo.toml")).unwrap();
    for ops in [
        &["acct_mgmt"][..],
        &["authenticate"],
        &["open_session"],
        &["close_session"],
    ] {
        let out = sb.pamtester("jt", "jtalice", ops, &[], "");
        assert_eq!(out.code, 1, "{ops:?}: {out:?}");
        assert!(
            out.stderr.contains("Error in service module"),
            "{ops:?}: {out:?}"
        );
    }
    let lines = messages(&dev_log.wait_for("close_session", WAIT));
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].contains("error: account: cannot use /etc/jitsudo/jitsudo.toml: /etc/jitsudo/jitsudo.toml does not exist"),
        "{lines:#?}"
    );

    // A config that does not parse names the line.
    sb.write_file(
        "/etc/jitsudo/jitsudo.toml",
        "host = \"web-01\"\nbogus = 1\n",
        0o644,
    );
    let out = sb.pamtester("jt", "jtalice", &["acct_mgmt"], &[], "");
    assert_eq!(out.code, 1, "{out:?}");
    let lines = messages(&dev_log.wait_for("bogus", WAIT));
    assert!(
        lines[0].contains("/etc/jitsudo/jitsudo.toml:2:"),
        "{lines:#?}"
    );
}

#[test]
fn audit_only_allows_and_logs_what_it_would_deny() {
    let sb = Sandbox::new();
    sb.pam_service("jt", "account required MODULE audit_only\n");
    let out = sb.pamtester("jt", "jtcarol", &["acct_mgmt"], &["rhost=192.0.2.1"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let lines = sb.log.wait_for("audit_only", WAIT);
    assert_eq!(
        messages(&lines),
        vec![format!(
            "jtcarol : login would be denied (audit_only): no login grant for {HOST} ; SERVICE=jt ; RHOST=192.0.2.1 ; TTY=unknown"
        )]
    );
}
