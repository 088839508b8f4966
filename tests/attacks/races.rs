//! Races on the use count and the cache: 64 concurrent uses of a one-time grant, an
//! N-use grant under contention, and jitsudo killed or signalled mid-use or mid-import.

use crate::sandbox::Sandbox;
use std::io::Write;
use std::process::Stdio;

#[test]
fn sixty_four_concurrent_uses_of_a_one_time_grant_run_exactly_once() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "1"]);
    s.import_ok("alice", &token);
    s.logs();
    let (ran, refused) = sixty_four_at_once(&s);
    assert_eq!((ran, refused), (1, 63));
    let logs = s.logs();
    assert_eq!(
        logs.iter()
            .filter(|l| l.starts_with("<85>") && l.contains("COMMAND=/usr/bin/id -u"))
            .count(),
        1
    );
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("one-time grant has already been used"))
            .count(),
        63
    );
}

#[test]
fn n_use_grant_under_contention_runs_exactly_n_times() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "5"]);
    s.import_ok("alice", &token);
    let (ran, refused) = sixty_four_at_once(&s);
    assert_eq!((ran, refused), (5, 59));
}

/// Start 64 runs of `/usr/bin/id -u` as alice before waiting for any of them; count
/// those that ran as root and those refused (exit 1, nothing printed).
fn sixty_four_at_once(s: &Sandbox) -> (usize, usize) {
    let children: Vec<_> = (0..64)
        .map(|_| {
            s.jitsudo("alice")
                .args(["/usr/bin/id", "-u"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ran = outcomes
        .iter()
        .filter(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| o.status.code() == Some(1) && o.stdout.is_empty())
        .count();
    (ran, refused)
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
    // A run killed mid-write strands its temp file; writers hold the user's lock and
    // share one temp name, so at most one is ever left, and the next writer removes it.
    let temps = || -> Vec<String> {
        std::fs::read_dir(s.path("/var/lib/jitsudo/users"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect()
    };
    let leftovers = temps();
    assert!(
        leftovers.is_empty() || leftovers == [".42001.json.tmp"],
        "{leftovers:?}"
    );
    // And the grant still works, counting exactly one more use.
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    let cache = std::fs::read_to_string(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&cache).unwrap();
    assert_eq!(parsed["entries"][0]["used"].as_u64().unwrap(), used + 1);
    assert!(temps().is_empty(), "{:?}", temps());
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

#[test]
fn killing_jitsudo_mid_import_never_corrupts_the_cache() {
    let s = Sandbox::new();
    let first_token = s.mint("alice", &["--command", "/usr/bin/true"]);
    let started = std::time::Instant::now();
    let first = s.import_ok("alice", &first_token);
    // How long a whole import takes here (about 25 ms for a debug build, most of it
    // before jitsudo has even started): the kills below are spread over all of it.
    let import_time = started.elapsed();
    let cache_path = s.path("/var/lib/jitsudo/users/42001.json");
    let mut minted = vec![first_token];
    let mut held = vec![first.clone()];
    // Import a new grant each round and SIGKILL the import at staggered moments: before
    // it reads the token, while it verifies, while it rewrites the cache, and after. After
    // every round the cache must parse, hold every grant it held before (the first one
    // included), and hold only whole tokens that were minted.
    for round in 0..40u64 {
        let token = s.mint("alice", &["--command", &format!("/usr/bin/echo {round}")]);
        minted.push(token.clone());
        let mut child = s
            .jitsudo("alice")
            .args(["--import", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // jitsudo may already be dead (or done) by the time the token is written.
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(token.as_bytes());
        drop(stdin);
        let stagger = std::time::Duration::from_micros(150 * (round % 13));
        std::thread::sleep(stagger + import_time * round as u32 / 30);
        let _ = child.kill();
        let _ = child.wait();
        let cache = std::fs::read_to_string(&cache_path).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&cache)
            .unwrap_or_else(|e| panic!("round {round}: cache is not JSON ({e}): {cache}"));
        let entries = parsed["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("round {round}: no entries: {cache}"));
        let jtis: Vec<&str> = entries.iter().map(|e| e["jti"].as_str().unwrap()).collect();
        for jti in &held {
            assert!(
                jtis.contains(&jti.as_str()),
                "round {round}: grant {jti} is gone (first grant {first}): {cache}"
            );
        }
        for entry in entries {
            let token = entry["token"].as_str().unwrap();
            assert!(
                minted.iter().any(|t| t == token),
                "round {round}: a token that was never minted: {cache}"
            );
        }
        held = jtis.iter().map(|j| j.to_string()).collect();
    }
    // The first grant still runs, and importing still works.
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/echo after"]),
    );
}
