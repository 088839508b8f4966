//! Hostile callers: odd user ids, paths that try to escape the grant, huge inputs,
//! closed standard streams, low resource limits.

use crate::sandbox::{Refusal, Sandbox};
use std::os::unix::fs::PermissionsExt;

#[test]
fn invalid_and_numeric_user_ids() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id -u"]));
    for bad in ["#4294967295", "#-1", "#+0", "#0x0", "#", "#99999999999"] {
        s.run("alice", &["-u", bad, "/usr/bin/id", "-u"])
            .assert_denied("is not a valid user id");
    }
    s.run("alice", &["-u", "-1", "/usr/bin/id", "-u"])
        .assert_denied("'-1' is not a valid user name");
    s.run("alice", &["-u", "nosuchuser", "/usr/bin/id", "-u"])
        .assert_denied("unknown user 'nosuchuser'");
    // #0 is just root: allowed by a root grant, nothing more.
    assert_eq!(
        s.run("alice", &["-u", "#0", "/usr/bin/id", "-u"])
            .stdout
            .trim(),
        "0"
    );
}

#[test]
fn paths_that_try_to_escape_the_grant() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let link = s.dir.join("id-link");
    std::os::unix::fs::symlink("/usr/bin/id", &link).unwrap();
    s.run("alice", &[link.to_str().unwrap()])
        .assert_denied("no grant allows");
    s.run("alice", &["/usr/bin/../bin/id"])
        .assert_denied("not in normal form");
    s.run("alice", &["./id"])
        .assert_denied("not an absolute path");
    s.run("alice", &["usr/bin/id"])
        .assert_denied("not an absolute path");
    s.run("alice", &["//usr/bin/id"])
        .assert_denied("not in normal form");
}

#[test]
fn huge_token_file_is_refused_without_reading_it_all() {
    let s = Sandbox::new();
    let big = s.dir.join("big-token");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.run("alice", &["--import", big.to_str().unwrap()])
        .assert_denied("larger than 65536 bytes");
}

#[test]
fn import_reads_files_with_the_callers_rights() {
    let s = Sandbox::new();
    // /etc/shadow is root-only: alice must not get jitsudo to read it for her.
    let out = s.run("alice", &["--import", "/etc/shadow"]);
    out.assert_denied("cannot read /etc/shadow: Permission denied");
}

#[test]
fn malformed_tokens_are_named() {
    let s = Sandbox::new();
    s.import("alice", "v3.public.AAAA")
        .assert_denied("PASETO version 3 is not accepted");
    s.import("alice", "v4.local.AAAA")
        .assert_denied("v4.local (encrypted) tokens are not accepted");
    s.import("alice", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.")
        .assert_denied("looks like a JWT");
    s.import("alice", "v4.public.!!!")
        .assert_denied("bad token encoding");
    s.import("alice", "").assert_denied("not a PASETO");
}

#[test]
fn closed_standard_streams_and_low_limits() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "3"]),
    );
    // stdin, stdout and stderr closed, at most 8 files, and no file may grow. jitsudo
    // must neither crash half-way through recording the use nor lose the cache: either
    // it can lift the limits (CAP_SYS_RESOURCE) and the use is counted, or the write
    // fails cleanly, the command does not run and nothing is counted.
    let script = format!(
        "ulimit -n 8; ulimit -f 0; setpriv --reuid alice --regid alice --init-groups -- {} /usr/bin/touch /tmp/ran <&- >&- 2>&-; echo rc=$?",
        s.bin.display()
    );
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/touch /tmp/ran", "--uses", "3"],
        ),
    );
    let out = s
        .ns_command("bash")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ran = s.path("/tmp/ran").exists();
    let cache = std::fs::read_to_string(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&cache).expect("cache stays valid JSON");
    let used = parsed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["used"].as_u64().unwrap())
        .sum::<u64>();
    if ran {
        assert_eq!((text.trim(), used), ("rc=0", 1), "{cache}");
    } else {
        assert_eq!((text.trim(), used), ("rc=1", 0), "{cache}");
    }
    // Afterwards, without the limits, everything works and the counts add up.
    let out = s.run("alice", &["/usr/bin/touch", "/tmp/ran"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list = s.run("alice", &["-l"]);
    let left = if ran { " 1 " } else { " 2 " };
    assert!(
        list.stdout
            .lines()
            .any(|l| l.contains("/usr/bin/touch") && l.contains(left)),
        "{list:?}"
    );
    let _ = std::fs::remove_file(s.path("/tmp/ran"));
}

#[test]
fn runs_without_setuid_are_refused_clearly() {
    let s = Sandbox::new();
    std::fs::set_permissions(&s.bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("must be installed setuid root");
}

#[test]
fn config_replaced_by_symlink_hard_link_or_fifo_is_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let config = s.path("/etc/jitsudo/jitsudo.toml");
    let real = s.path("/etc/jitsudo/real.toml");
    std::fs::rename(&config, &real).unwrap();

    std::os::unix::fs::symlink("/etc/jitsudo/real.toml", &config).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("jitsudo.toml is a symlink");
    std::fs::remove_file(&config).unwrap();

    std::fs::hard_link(&real, &config).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("has 2 hard links");
    std::fs::remove_file(&config).unwrap();

    let status = std::process::Command::new("mkfifo")
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("jitsudo.toml is not a regular file");
    std::fs::remove_file(&config).unwrap();

    std::fs::rename(&real, &config).unwrap();
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).code, 1);
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
}

#[test]
fn cache_fifo_and_writable_state_directory_are_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let cache = s.path("/var/lib/jitsudo/users/42001.json");
    let saved = std::fs::read(&cache).unwrap();
    std::fs::remove_file(&cache).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&cache)
        .status()
        .unwrap()
        .success());
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("42001.json is not a regular file");
    std::fs::remove_file(&cache).unwrap();
    std::fs::write(&cache, &saved).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();

    std::fs::set_permissions(
        s.path("/var/lib/jitsudo/users"),
        std::fs::Permissions::from_mode(0o730),
    )
    .unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("/var/lib/jitsudo/users is writable by group or others");
    std::fs::set_permissions(
        s.path("/var/lib/jitsudo/users"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();

    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o620)).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("42001.json is writable by group or others");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
}

#[test]
fn killing_jitsudo_mid_use_never_corrupts_the_cache() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/true", "--uses", "1000"]),
    );
    // Start many runs and SIGKILL them at staggered moments; afterwards the cache must
    // parse, and the uses counted must not exceed the runs that were started.
    let mut started = 0;
    for round in 0..40u64 {
        let mut child = s.jitsudo("alice").arg("/usr/bin/true").spawn().unwrap();
        started += 1;
        std::thread::sleep(std::time::Duration::from_micros(200 * (round % 10)));
        let _ = child.kill();
        let _ = child.wait();
    }
    let cache = std::fs::read_to_string(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&cache).expect("cache is intact");
    let used = parsed["entries"][0]["used"].as_u64().unwrap();
    assert!(used <= started, "{used} uses counted for {started} runs");
    // No temporary files were left behind to confuse later runs.
    let leftovers: Vec<_> = std::fs::read_dir(s.path("/var/lib/jitsudo/users"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty() || leftovers.len() < 5, "{leftovers:?}");
    // And the grant still works, counting exactly one more use.
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    let cache = std::fs::read_to_string(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&cache).unwrap();
    assert_eq!(parsed["entries"][0]["used"].as_u64().unwrap(), used + 1);
}

#[test]
fn token_from_an_untrusted_key_claiming_a_trusted_key_id_is_refused() {
    let s = Sandbox::new();
    let rogue_dir = s.dir.join("rogue");
    let out = std::process::Command::new(&s.ctl)
        .args(["keygen", "--id", "k1", "--out"])
        .arg(&rogue_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = s.mint_with_key(
        &rogue_dir.join("k1.key"),
        "alice",
        &["--command", "/usr/bin/id"],
    );
    s.import("alice", &token)
        .assert_denied("grant signature invalid for key \"k1\"");
    crate::cache::plant(&s, 42001, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("signature invalid");
}

#[test]
fn payload_bit_flips_are_refused() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id"]);
    s.logs();
    for offset in [0, 7, 30, 61, 100, 150] {
        let flipped = crate::cache::flip_payload_char(&token, offset);
        let out = s.import("alice", &flipped);
        out.assert_denied("grant");
        assert!(
            out.stderr.contains("signature invalid") || out.stderr.contains("malformed"),
            "{out:?}"
        );
    }
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());
    let logs = s.logs();
    assert_eq!(
        logs.iter().filter(|l| l.contains("import refused")).count(),
        6,
        "{logs:#?}"
    );
}

#[test]
fn signals_during_counted_runs_never_overspend_or_corrupt() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/true", "--uses", "500"]),
    );
    let mut started = 0u64;
    for (i, signal) in ["TERM", "INT", "HUP", "QUIT", "USR1"]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let child = s.jitsudo("alice").arg("/usr/bin/true").spawn().unwrap();
        started += 1;
        std::thread::sleep(std::time::Duration::from_micros(150 * (i as u64 % 8)));
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        let _ = child.wait_with_output();
    }
    let cache = std::fs::read_to_string(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&cache).expect("cache intact");
    let used = parsed["entries"][0]["used"].as_u64().unwrap();
    assert!(used <= started);
    let logs = s.logs();
    let allowed = logs
        .iter()
        .filter(|l| l.starts_with("<85>") && l.contains("COMMAND=/usr/bin/true"))
        .count() as u64;
    // Every counted use was logged first; a signal may land after the log line and
    // before the count, never the other way round.
    assert!(used <= allowed, "{used} uses counted but {allowed} logged");
}
