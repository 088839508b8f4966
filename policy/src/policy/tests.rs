use super::*;

const P: &str = "/etc/jitsudo/policy.toml";

fn policy(text: &str) -> Policy {
    parse(Path::new(P), text).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    parse(Path::new(P), text).unwrap_err().0
}

/// 2026-11-23 was a Monday; 10:00 UTC that day.
const MONDAY_10: i64 = 1_795_428_000;

fn ask<'a>(user: &'a str, groups: &'a [String], path: &'a str, args: &'a [String]) -> Ask<'a> {
    Ask {
        user,
        groups,
        host: "web-01",
        run_as: "root",
        kind: Kind::Exec,
        path,
        args,
        reason: "INC-1",
        duration: None,
        once: false,
        source: None,
        now: MONDAY_10,
        ticket: None,
        extension: None,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn monday_constant_is_a_monday_at_ten() {
    let p = policy("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nweekdays = [\"mon\"]\nhours = \"10:00-10:01\"\n");
    assert!(matches!(
        p.decide(&ask("a", &[], "/bin/true", &[])).outcome,
        Outcome::Auto(_)
    ));
}

#[test]
fn no_rule_means_deny() {
    let p = policy("");
    let d = p.decide(&ask("alice", &[], "/bin/true", &[]));
    assert_eq!(d.rule, NO_MATCH);
    assert!(
        matches!(d.outcome, Outcome::Deny(ref m) if m.contains("no policy rule allows /bin/true"))
    );
}

#[test]
fn first_match_wins_and_is_recorded() {
    let p = policy(
        "[[rule]]\nname = \"deny-shells\"\ncommands = [\"/bin/sh *\"]\ndecision = \"deny\"\n\
         [[rule]]\nname = \"anything\"\ncommands = [\"/bin/sh *\", \"/bin/true\"]\ndecision = \"auto\"\n",
    );
    let args = strings(&["-c", "id"]);
    let d = p.decide(&ask("alice", &[], "/bin/sh", &args));
    assert_eq!(d.rule, "deny-shells");
    assert!(matches!(d.outcome, Outcome::Deny(_)));
    let d = p.decide(&ask("alice", &[], "/bin/true", &[]));
    assert_eq!(d.rule, "anything");
    assert_eq!(
        d.outcome,
        Outcome::Auto(Terms {
            duration: 900,
            uses: None,
            allow_exec: false,
            record: false,
        })
    );
}

#[test]
fn users_groups_hosts_and_run_as_select_rules() {
    let p = policy(
        "[[rule]]\nname = \"ops\"\ngroups = [\"ops\"]\nhosts = [\"web-*\"]\ncommands = [\"/bin/true\"]\nrun_as = [\"postgres\"]\ndecision = \"auto\"\n",
    );
    let ops = strings(&["ops"]);
    let mut a = ask("alice", &ops, "/bin/true", &[]);
    assert_eq!(
        p.decide(&a).outcome,
        Outcome::Deny("no policy rule allows /bin/true as root on web-01".into())
    );
    a.run_as = "postgres";
    assert_eq!(p.decide(&a).rule, "ops");
    a.host = "db-01";
    assert_eq!(p.decide(&a).rule, NO_MATCH);
    a.host = "web-07";
    a.groups = &[];
    assert_eq!(p.decide(&a).rule, NO_MATCH);
}

#[test]
fn command_spec_of_rule_must_allow_the_request() {
    let p = policy("[[rule]]\ncommands = [\"/usr/bin/journalctl -u *\", \"/usr/bin/systemctl restart nginx\"]\ndecision = \"auto\"\n");
    let ok = strings(&["-u", "nginx", "-f"]);
    assert_ne!(
        p.decide(&ask("a", &[], "/usr/bin/journalctl", &ok)).rule,
        NO_MATCH
    );
    let bad = strings(&["-k"]);
    assert_eq!(
        p.decide(&ask("a", &[], "/usr/bin/journalctl", &bad)).rule,
        NO_MATCH
    );
    let extra = strings(&["restart", "nginx", "now"]);
    assert_eq!(
        p.decide(&ask("a", &[], "/usr/bin/systemctl", &extra)).rule,
        NO_MATCH
    );
}

#[test]
fn approval_rules_carry_count_and_approvers() {
    let p = policy(
        "[[rule]]\nname = \"two\"\ncommands = [\"/bin/true\"]\ndecision = \"approve\"\napprovals = 2\napprovers = [\"bob\", \"group:sre\"]\nsingle_use = true\nmax_duration = \"1h\"\ndefault_duration = \"10m\"\n",
    );
    let d = p.decide(&ask("alice", &[], "/bin/true", &[]));
    assert_eq!(
        d.outcome,
        Outcome::Approve {
            terms: Terms {
                duration: 600,
                uses: Some(1),
                allow_exec: false,
                record: false,
            },
            approvals: 2,
            approvers: vec![
                Principal::User("bob".into()),
                Principal::Group("sre".into())
            ],
            chat_approval: true,
            approver_mfa: false,
        }
    );
    let Outcome::Approve { approvers, .. } = d.outcome else {
        unreachable!()
    };
    assert!(approvers[1].admits("carol", &strings(&["sre"])));
    assert!(!approvers[0].admits("carol", &strings(&["sre"])));
}

#[test]
fn durations_and_once() {
    let p = policy(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nmax_duration = \"1h\"\n",
    );
    let mut a = ask("a", &[], "/bin/true", &[]);
    a.duration = Some(1800);
    a.once = true;
    assert_eq!(
        p.decide(&a).outcome,
        Outcome::Auto(Terms {
            duration: 1800,
            uses: Some(1),
            allow_exec: false,
            record: false,
        })
    );
    a.duration = Some(7200);
    assert!(
        matches!(p.decide(&a).outcome, Outcome::Deny(ref m) if m.contains("exceeds max_duration 1h"))
    );
}

#[test]
fn hours_weekdays_and_offsets() {
    let p = policy(
        "[[rule]]\nname = \"office\"\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nhours = \"09:00-17:00\"\nweekdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\ntimezone = \"+02:00\"\n",
    );
    let mut a = ask("a", &[], "/bin/true", &[]);
    assert!(
        matches!(p.decide(&a).outcome, Outcome::Auto(_)),
        "Monday 12:00 local"
    );
    a.now = MONDAY_10 + 6 * 3600; // 18:00 local
    let d = p.decide(&a);
    assert!(
        matches!(d.outcome, Outcome::Deny(ref m) if m.contains("outside allowed hours 09:00-17:00") && m.contains("rule office")),
        "{d:?}"
    );
    a.now = MONDAY_10 - 4 * 3600 + 60; // 08:01 local
    assert!(matches!(p.decide(&a).outcome, Outcome::Deny(_)));
    a.now = MONDAY_10 + 5 * 86400; // Saturday
    assert!(
        matches!(p.decide(&a).outcome, Outcome::Deny(ref m) if m.contains("sat is not an allowed weekday"))
    );
    // A window that wraps midnight.
    let night = policy(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nhours = \"22:00-06:00\"\n",
    );
    a.now = MONDAY_10 - 7 * 3600; // 03:00 UTC
    assert!(matches!(night.decide(&a).outcome, Outcome::Auto(_)));
    a.now = MONDAY_10;
    assert!(matches!(night.decide(&a).outcome, Outcome::Deny(_)));
}

#[test]
fn networks_and_reason() {
    let p = policy(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nnetworks = [\"10.0.0.0/8\", \"2001:db8::/32\"]\nrequire_reason = true\n",
    );
    let mut a = ask("a", &[], "/bin/true", &[]);
    assert!(matches!(p.decide(&a).outcome, Outcome::Deny(ref m) if m.contains("SSH session")));
    a.source = Some("10.1.2.3".parse().unwrap());
    assert!(matches!(p.decide(&a).outcome, Outcome::Auto(_)));
    a.source = Some("::ffff:10.9.9.9".parse().unwrap());
    assert!(matches!(p.decide(&a).outcome, Outcome::Auto(_)));
    a.source = Some("2001:db8:1::5".parse().unwrap());
    assert!(matches!(p.decide(&a).outcome, Outcome::Auto(_)));
    a.source = Some("192.168.0.1".parse().unwrap());
    assert!(matches!(p.decide(&a).outcome, Outcome::Deny(ref m) if m.contains("192.168.0.1")));
    a.source = Some("10.1.2.3".parse().unwrap());
    a.reason = "  ";
    assert!(
        matches!(p.decide(&a).outcome, Outcome::Deny(ref m) if m.contains("reason is required"))
    );
}

#[test]
fn errors_name_file_and_line() {
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"maybe\"\n");
    assert!(
        e.starts_with(&format!("{P}:3:")) && e.contains("auto, approve or deny"),
        "{e}"
    );
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\ncolour = 1\n");
    assert!(e.contains("colour"), "{e}");
    let e = err("[[rule]]\ncommands = [\n  \"/bin/true\",\n  \"true\",\n]\ndecision = \"auto\"\n");
    assert!(
        e.starts_with(&format!("{P}:4:")) && e.contains("absolute"),
        "{e}"
    );
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"approve\"\n");
    assert!(e.contains(":3:") && e.contains("approvers"), "{e}");
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nhours = \"9-5\"\n");
    assert!(e.contains(":4:"), "{e}");
    let e = err(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\ntimezone = \"Europe/Berlin\"\n",
    );
    assert!(e.contains(":4:") && e.contains("fixed offset"), "{e}");
    let e = err(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nnetworks = [\"10.0.0.0/33\"]\n",
    );
    assert!(e.contains(":4:"), "{e}");
    let e =
        err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nmax_duration = \"2d\"\n");
    assert!(e.contains(":4:") && e.contains("ceiling"), "{e}");
    let e = err("[[rule]]\nname = \"x\"\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\n[[rule]]\nname = \"x\"\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\n");
    assert!(e.contains(":6:") && e.contains("twice"), "{e}");
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\napprovals = 2\n");
    assert!(e.contains(":4:"), "{e}");
    let e = err("[[rule]]\ndecision = \"auto\"\n");
    assert!(e.contains("commands"), "{e}");
}

#[test]
fn offsets_and_globs() {
    assert_eq!(parse_offset("UTC").unwrap(), 0);
    assert_eq!(parse_offset("+02:00").unwrap(), 7200);
    assert_eq!(parse_offset("-0530").unwrap(), -(5 * 3600 + 30 * 60));
    assert_eq!(parse_offset("UTC+1").unwrap(), 3600);
    assert!(parse_offset("+25").is_err());
    assert!(glob("web-*", "web-01"));
    assert!(glob("*", "x"));
    assert!(glob("w?b-*1", "web-01"));
    assert!(!glob("web-*", "db-01"));
    assert!(!glob("web", "web-01"));
}

fn edit_ask<'a>(files: &'a [String]) -> Ask<'a> {
    Ask {
        kind: Kind::Edit,
        ..ask("alice", &[], &files[0], &files[1..])
    }
}

const EDIT_RULE: &str = "[[rule]]\nname = \"conf\"\nkind = \"edit\"\ncommands = [\"/etc/nginx/nginx.conf\", \"/etc/hosts\"]\ndecision = \"auto\"\n";

#[test]
fn edit_rules_grant_only_edits_of_the_files_they_name() {
    let p = policy(EDIT_RULE);
    assert_eq!(p.rules[0].kind, Kind::Edit);
    let both = strings(&["/etc/hosts", "/etc/nginx/nginx.conf"]);
    assert!(matches!(
        p.decide(&edit_ask(&both)).outcome,
        Outcome::Auto(_)
    ));
    let one = strings(&["/etc/hosts"]);
    assert!(matches!(
        p.decide(&edit_ask(&one)).outcome,
        Outcome::Auto(_)
    ));
    // One file the rule does not name spoils the request.
    let more = strings(&["/etc/hosts", "/etc/shadow"]);
    let d = p.decide(&edit_ask(&more));
    assert_eq!(d.rule, NO_MATCH);
    assert!(
        matches!(&d.outcome, Outcome::Deny(m) if m == "no policy rule allows editing /etc/hosts /etc/shadow on web-01"),
        "{d:?}"
    );
    // An edit rule never allows running the file, nor an exec rule editing it.
    assert_eq!(
        p.decide(&ask("alice", &[], "/etc/hosts", &[])).rule,
        NO_MATCH
    );
    let exec = policy("[[rule]]\ncommands = [\"/etc/hosts\"]\ndecision = \"auto\"\n");
    assert_eq!(exec.decide(&edit_ask(&one)).rule, NO_MATCH);
}

#[test]
fn edit_rules_name_plain_absolute_files() {
    for (file, needle) in [
        ("etc/hosts", "not an absolute path"),
        ("/etc/nginx/*.conf", "contains '*'"),
        ("/etc/../etc/shadow", "normal form"),
        ("/etc/nginx/", "names a directory"),
    ] {
        let e = err(&format!(
            "[[rule]]\nkind = \"edit\"\ncommands = [\"{file}\"]\ndecision = \"auto\"\n"
        ));
        assert!(
            e.contains(needle) && e.starts_with(&format!("{P}:3: file")),
            "{file}: {e}"
        );
    }
    let e = err("[[rule]]\nkind = \"login\"\ncommands = [\"/etc/hosts\"]\ndecision = \"auto\"\n");
    assert!(e.contains("kind \"login\" must be exec or edit"), "{e}");
    let e = err("[[rule]]\nkind = \"edit\"\nrun_as = [\"bob\"]\ncommands = [\"/etc/hosts\"]\ndecision = \"auto\"\n");
    assert!(e.contains("an edit rule has no run_as"), "{e}");
}

#[test]
fn allow_exec_is_off_unless_the_rule_turns_it_on() {
    let p = policy(
        "[[rule]]\nname = \"pager\"\ncommands = [\"/usr/bin/less *\"]\ndecision = \"auto\"\nallow_exec = true\n\
         [[rule]]\nname = \"plain\"\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\n",
    );
    let args = strings(&["/etc/hosts"]);
    let d = p.decide(&ask("alice", &[], "/usr/bin/less", &args));
    assert!(
        matches!(
            d.outcome,
            Outcome::Auto(Terms {
                allow_exec: true,
                record: false,
                ..
            })
        ),
        "{d:?}"
    );
    let d = p.decide(&ask("alice", &[], "/bin/true", &[]));
    assert!(
        matches!(
            d.outcome,
            Outcome::Auto(Terms {
                allow_exec: false,
                record: false,
                ..
            })
        ),
        "{d:?}"
    );
}

#[test]
fn record_is_off_unless_the_rule_turns_it_on() {
    let p = policy(
        "[[rule]]\nname = \"shell\"\ncommands = [\"/bin/bash\"]\ndecision = \"auto\"\nallow_exec = true\nrecord = true\n\
         [[rule]]\nname = \"plain\"\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\n",
    );
    let d = p.decide(&ask("alice", &[], "/bin/bash", &[]));
    assert!(
        matches!(d.outcome, Outcome::Auto(Terms { record: true, .. })),
        "{d:?}"
    );
    let d = p.decide(&ask("alice", &[], "/bin/true", &[]));
    assert!(
        matches!(d.outcome, Outcome::Auto(Terms { record: false, .. })),
        "{d:?}"
    );
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nrecord = \"yes\"\n");
    assert!(e.contains(":4:") && e.contains("boolean"), "{e}");
}

const TICKET_RULE: &str = "[[rule]]\nname = \"ops\"\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nticket = \"^(INC|CHG)-[0-9]+$\"\n";

#[test]
fn a_ticket_rule_requires_a_matching_ticket_and_names_the_pattern() {
    let p = policy(TICKET_RULE);
    let missing = p.decide(&ask("alice", &[], "/bin/true", &[]));
    assert!(
        matches!(missing.outcome, Outcome::Deny(ref m) if m.contains("a ticket id matching ^(INC|CHG)-[0-9]+$ is required") && m.contains("--ticket")),
        "{missing:?}"
    );
    for bad in ["INC-", "inc-42", "INC-42x", "xINC-42", "INC-42\nINC-43"] {
        let d = p.decide(&Ask {
            ticket: Some(bad),
            ..ask("alice", &[], "/bin/true", &[])
        });
        assert!(
            matches!(d.outcome, Outcome::Deny(ref m) if m.contains("does not match the required pattern ^(INC|CHG)-[0-9]+$")),
            "{bad:?}: {d:?}"
        );
    }
    let ok = p.decide(&Ask {
        ticket: Some("CHG-7"),
        ..ask("alice", &[], "/bin/true", &[])
    });
    assert!(matches!(ok.outcome, Outcome::Auto(_)), "{ok:?}");
}

#[test]
fn ticket_patterns_are_matched_whole_and_checked_at_load() {
    let p = policy(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nticket = \"INC-[0-9]+\"\n",
    );
    let t = p.rules[0].ticket.as_ref().unwrap();
    assert!(t.admits("INC-1"));
    assert!(!t.admits("see INC-1"));
    assert!(!t.admits("INC-1 and more"));
    let e = err(
        "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\n\nticket = \"^(INC|CHG\"\n",
    );
    assert!(
        e.starts_with("/etc/jitsudo/policy.toml:5:") && e.contains("not a valid regex"),
        "{e}"
    );
}

#[test]
fn chat_votes_are_off_with_chat_approval_false_or_approver_mfa() {
    let rule = |extra: &str| {
        policy(&format!(
            "[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"approve\"\napprovers = [\"bob\"]\n{extra}"
        ))
    };
    let chat = |p: &Policy| match p.decide(&ask("alice", &[], "/bin/true", &[])).outcome {
        Outcome::Approve { chat_approval, .. } => chat_approval,
        other => panic!("{other:?}"),
    };
    assert!(chat(&rule("")));
    assert!(!chat(&rule("chat_approval = false\n")));
    assert!(!chat(&rule("approver_mfa = true\n")));
    assert!(!chat(&rule("chat_approval = true\napprover_mfa = true\n")));
}

#[test]
fn extensions_follow_max_extensions_and_their_own_decision() {
    let p = policy(
        "[[rule]]\nname = \"r\"\ncommands = [\"/bin/true\"]\ndecision = \"approve\"\napprovers = [\"bob\"]\nmax_extensions = 2\nextension_decision = \"auto\"\n\
         [[rule]]\nname = \"never\"\ncommands = [\"/bin/false\"]\ndecision = \"auto\"\n",
    );
    let ext = |path: &'static str, n: u32| {
        p.decide(&Ask {
            extension: Some(n),
            ..ask("alice", &[], path, &[])
        })
        .outcome
    };
    assert!(matches!(
        p.decide(&ask("alice", &[], "/bin/true", &[])).outcome,
        Outcome::Approve { .. }
    ));
    assert!(matches!(ext("/bin/true", 0), Outcome::Auto(_)));
    assert!(matches!(ext("/bin/true", 1), Outcome::Auto(_)));
    assert!(
        matches!(ext("/bin/true", 2), Outcome::Deny(ref m) if m.contains("extended 2 time(s) already") && m.contains("max_extensions = 2")),
        "{:?}",
        ext("/bin/true", 2)
    );
    assert!(
        matches!(ext("/bin/false", 0), Outcome::Deny(ref m) if m.contains("allows no extensions")),
        "{:?}",
        ext("/bin/false", 0)
    );
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nextension_decision = \"approve\"\n");
    assert!(
        e.contains(":4:") && e.contains("needs decision = \"approve\""),
        "{e}"
    );
    let e = err("[[rule]]\ncommands = [\"/bin/true\"]\ndecision = \"auto\"\nmax_extensions = -1\n");
    assert!(e.contains(":4:") && e.contains("max_extensions"), "{e}");
}
