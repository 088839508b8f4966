//! The caller's terminal: a command run as another user must not be able to reach it.
//! Run on a real terminal (tests/e2e/terminal_driver.rs) with the caller's shell reading
//! from it after jitsudo.

use crate::sandbox::Sandbox;
use crate::terminal_driver::{on_pty, Step};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The world of the TIOCSTI attacks: alice may run any python3 command as bob, a
/// world-writable drop directory for the proof, and the attacker's `script` as `name`.
/// None where the kernel refuses TIOCSTI to everyone but CAP_SYS_ADMIN
/// (dev.tty.legacy_tiocsti = 0): there is no injection to show.
fn bob_with_python(name: &str, script: &str) -> Option<(Sandbox, PathBuf, PathBuf)> {
    if std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").is_ok_and(|v| v.trim() == "0") {
        eprintln!("dev.tty.legacy_tiocsti is 0 on this kernel; the attack cannot be shown");
        return None;
    }
    let s = Sandbox::new();
    let drop_dir = s.dir.join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    std::fs::set_permissions(&drop_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = s.dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/python3 *", "--run-as", "bob"],
        ),
    );
    Some((s, drop_dir, path))
}

/// Push each character of argv[1] and a newline into the input of the terminal on fd 0,
/// as if typed there (TIOCSTI, allowed on one's controlling terminal).
const INJECT: &str = r#"
import fcntl, sys, termios
for ch in sys.argv[1] + "\n":
    fcntl.ioctl(0, termios.TIOCSTI, ch.encode())
print("injected", flush=True)
"#;

/// Bob, granted any python3 command by alice's grant, pushes `id > …/proof` into the
/// terminal he was given. Sharing alice's terminal, her shell would run it as alice
/// (Debian 12's kernel allows TIOCSTI); on a pty of his own it goes nowhere.
#[test]
fn tiocsti_by_the_target_user_does_not_reach_the_callers_shell() {
    let Some((s, drop_dir, inject)) = bob_with_python("inject.py", INJECT) else {
        return;
    };
    let proof = drop_dir.join("proof");
    let script = format!(
        "\"$J\" -u bob /usr/bin/python3 {} 'id > {}'; echo jitsudo-ended; exec /usr/bin/sh",
        inject.display(),
        proof.display()
    );
    let run = on_pty(
        &s,
        "alice",
        &script,
        &[
            Step::Expect("injected"),
            Step::Expect("jitsudo-ended"),
            // The caller's shell now reads its terminal: first anything injected into it.
            Step::Send("echo shell-alive; exit\n"),
            Step::Expect("shell-alive"),
        ],
    );
    run.assert_completed();
    // The injection itself worked: into bob's own terminal.
    assert!(run.output.contains("injected"), "{run:#?}");
    assert!(
        !proof.exists(),
        "bob's keystrokes ran in alice's shell: {:?}\n{run:#?}",
        std::fs::read_to_string(&proof)
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
}

/// Leave a process behind (SIGHUP ignored, as nohup would; its pid in `DIR/pid`) that
/// would wait until the caller's shell has its terminal back (`DIR/go`), then push
/// `id > DIR/proof` into fd 0 and write how that went to `DIR/done`.
const LINGER: &str = r#"
import fcntl, os, signal, sys, termios, time
drop = sys.argv[1]
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    deadline = time.monotonic() + 20
    while not os.path.exists(drop + "/go") and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        for ch in "id > %s/proof\n" % drop:
            fcntl.ioctl(0, termios.TIOCSTI, ch.encode())
        result = "injected"
    except OSError as e:
        result = "refused: " + e.strerror
    with open(drop + "/done", "w") as f:
        f.write(result)
    os._exit(0)
with open(drop + "/pid", "w") as f:
    f.write(str(pid))
print("left a process behind", flush=True)
"#;

/// The same attack from a process the command leaves behind, once jitsudo has returned
/// and the caller's shell reads its terminal again. The run ends with its command: the
/// process left behind is gone before jitsudo returns (and it only ever held bob's pty,
/// never the caller's terminal).
#[test]
fn a_process_left_behind_by_the_target_user_cannot_type_into_the_callers_shell() {
    let Some((s, drop_dir, linger)) = bob_with_python("linger.py", LINGER) else {
        return;
    };
    let d = drop_dir.display();
    let script = format!(
        "\"$J\" -u bob /usr/bin/python3 {} {d}; echo jitsudo-ended; touch {d}/go; \
         if [ -d /proc/$(cat {d}/pid) ]; then echo still-running; else echo left-nothing; fi; \
         exec /usr/bin/sh",
        linger.display()
    );
    let run = on_pty(
        &s,
        "alice",
        &script,
        &[
            Step::Expect("left a process behind"),
            Step::Expect("jitsudo-ended"),
            Step::Expect("left-nothing"),
            Step::Send("echo shell-alive; exit\n"),
            Step::Expect("shell-alive"),
        ],
    );
    run.assert_completed();
    assert!(!drop_dir.join("done").exists(), "{run:#?}");
    assert!(!drop_dir.join("proof").exists(), "{run:#?}");
}

/// Without a controlling terminal (`setsid`) but with the caller's terminal still on the
/// standard streams, there is nothing to relay: handing those descriptors to bob would
/// give him the caller's terminal, so the run is refused.
#[test]
fn a_terminal_that_is_not_the_controlling_one_is_not_handed_over() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/tty", "--run-as", "bob"]),
    );
    let run = on_pty(
        &s,
        "alice",
        r#"tty; /usr/bin/setsid "$J" -u bob /usr/bin/tty; echo "rc=$?""#,
        &[Step::Expect("rc=")],
    );
    run.assert_completed();
    assert!(
        run.output
            .contains("a standard stream is a terminal, but not jitsudo's controlling terminal"),
        "{run:#?}"
    );
    assert!(run.output.contains("rc=1"), "{run:#?}");
    let ttys = run
        .output
        .lines()
        .filter(|l| l.starts_with("/dev/pts/"))
        .count();
    assert_eq!(
        ttys, 1,
        "bob's command must not have run on the caller's terminal: {run:#?}"
    );
}
