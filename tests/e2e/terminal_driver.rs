//! A real terminal for a test: a python3 `pty` driver, run as root in the sandbox, starts
//! `sh -c SCRIPT` as a test user on a new pty (its session's controlling terminal, as a
//! login would give), then plays a script of steps against it (wait for text, type,
//! wait for raw mode, resize) and reports everything the terminal showed and the exit
//! code. Every wait is bounded by one deadline: a hang fails the test with the output so
//! far, it never blocks the suite. The script finds the jitsudo under test in `$J`.
//!
//! Shared by tests/e2e (behaviour on a terminal) and tests/attacks (terminal attacks).

// Not every suite uses every step.
#![allow(dead_code)]

use crate::sandbox::Sandbox;

/// One step of the conversation with the terminal.
pub enum Step<'a> {
    /// Wait until this text appears (after the previous match).
    Expect(&'a str),
    /// Type this.
    Send(&'a str),
    /// Wait until the terminal is in raw mode (no ICANON): jitsudo's supervisor has
    /// taken it over.
    WaitRaw,
    /// Set the terminal's window size (rows, columns), as a terminal emulator does.
    Resize(u16, u16),
}

/// What the terminal showed, and how the script ended.
#[derive(Debug)]
pub struct PtyRun {
    pub output: String,
    pub code: Option<i32>,
    /// Set when a step or the end did not come before the deadline.
    pub error: Option<String>,
}

impl PtyRun {
    /// The run completed all its steps and the script ended.
    #[track_caller]
    pub fn assert_completed(&self) {
        assert!(self.error.is_none(), "{self:#?}");
    }
}

const DRIVER: &str = r#"
import json, os, pty, select, signal, struct, sys, termios, time, fcntl

spec = json.loads(sys.argv[1])
deadline = time.monotonic() + spec["timeout"]
pid, fd = pty.fork()
if pid == 0:
    os.execve(spec["argv"][0], spec["argv"], spec["env"])
out = bytearray()
cursor = 0

def finish(error, code=None):
    if error is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    print(json.dumps({"output": out.decode("utf-8", "replace"), "code": code, "error": error}))
    sys.exit(0)

def read_some(what):
    """Read what the terminal shows; False at its end (every slave closed)."""
    left = deadline - time.monotonic()
    if left <= 0:
        finish("timeout waiting for " + what)
    ready, _, _ = select.select([fd], [], [], left)
    if not ready:
        finish("timeout waiting for " + what)
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    out.extend(data)
    return bool(data)

for kind, arg in spec["steps"]:
    if kind == "expect":
        needle = arg.encode()
        while out.find(needle, cursor) < 0:
            if not read_some(repr(arg)):
                finish("the terminal closed before " + repr(arg))
        cursor = out.find(needle, cursor) + len(needle)
    elif kind == "send":
        os.write(fd, arg.encode())
    elif kind == "wait_raw":
        while termios.tcgetattr(fd)[3] & termios.ICANON:
            if time.monotonic() > deadline:
                finish("timeout waiting for raw mode")
            select.select([], [], [], 0.01)
    elif kind == "resize":
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", arg[0], arg[1], 0, 0))
while read_some("the end of the output"):
    pass
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        finish(None, os.waitstatus_to_exitcode(status))
    if time.monotonic() > deadline:
        finish("timeout waiting for the script to exit")
    select.select([], [], [], 0.01)
"#;

/// Run `sh -c script` as `user` on a new terminal and play `steps` (within 30 s).
pub fn on_pty(s: &Sandbox, user: &str, script: &str, steps: &[Step]) -> PtyRun {
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|step| match step {
            Step::Expect(text) => serde_json::json!(["expect", text]),
            Step::Send(text) => serde_json::json!(["send", text]),
            Step::WaitRaw => serde_json::json!(["wait_raw", null]),
            Step::Resize(rows, cols) => serde_json::json!(["resize", [rows, cols]]),
        })
        .collect();
    let spec = serde_json::json!({
        "argv": ["/usr/bin/setpriv", "--reuid", user, "--regid", user, "--init-groups", "--",
                 "/usr/bin/sh", "-c", script],
        "env": {"PATH": "/usr/bin:/bin", "TERM": "dumb", "J": s.bin.display().to_string()},
        "steps": steps,
        "timeout": 30,
    });
    let out = s
        .ns_command("/usr/bin/python3")
        .args(["-c", DRIVER, &spec.to_string()])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run the pty driver");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pty driver failed ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    PtyRun {
        output: report["output"].as_str().unwrap_or_default().to_string(),
        code: report["code"].as_i64().map(|c| c as i32),
        error: report["error"].as_str().map(str::to_string),
    }
}
