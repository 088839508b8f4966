//! Running the unprivileged network helper /usr/libexec/jitsudo/jitsudo-net: check it
//! is a trusted file, fork, drop to the given user, exec it with an empty environment,
//! hand it its `Task` on stdin and collect the `ChildMsg` lines it answers with. The
//! protocol itself is `jitsudo_core::helper`'s, shared with the helper.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

pub(super) use jitsudo_core::helper::{ChildMsg, Task, NET_HELPER};

use crate::system::{self, ChildEnd};

/// More than any answer the service gives (grants, a revocation list) needs.
const MAX_CHILD_OUTPUT: u64 = 16 << 20;

/// Run the network helper on `task` in a child that has become `uid`/`gid`; collect the
/// lines it reports.
pub(super) fn in_child(
    uid: system::Uid,
    gid: system::Gid,
    task: &Task,
) -> Result<(Vec<ChildMsg>, ChildEnd), String> {
    // The helper passes the checks of every file jitsudo trusts (root-owned, not
    // writable by others, nor are its directories) before a child may run it.
    crate::secure_file::open_trusted(Path::new(NET_HELPER))
        .map_err(|e| format!("refusing the network helper {NET_HELPER}: {e}"))?;
    let input = serde_json::to_vec(task).map_err(|e| format!("cannot encode the task: {e}"))?;
    let (task_read, mut task_write) =
        system::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let (read_end, mut write_end) =
        system::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    // The closure owns the child's ends; in the parent they are dropped unrun when
    // fork_child returns, so the parent sees end-of-file once the helper is done. Both
    // pipes are close-on-exec: the helper keeps only its standard input and output.
    let pid = system::fork_child(move || {
        let fail = |out: &mut dyn Write, message: String| {
            send(out, &ChildMsg::Failed { message });
            1
        };
        if let Err(e) = system::drop_to_user(uid, gid) {
            return fail(
                &mut write_end,
                format!("cannot drop privileges for the network helper: {e}"),
            );
        }
        let stdout = match write_end.try_clone() {
            Ok(f) => f,
            Err(e) => return fail(&mut write_end, format!("cannot start {NET_HELPER}: {e}")),
        };
        let e = Command::new(NET_HELPER)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::from(task_read))
            .stdout(Stdio::from(stdout))
            .exec();
        fail(&mut write_end, format!("cannot run {NET_HELPER}: {e}"))
    })
    .map_err(|e| format!("cannot start the network helper: {e}"))?;
    // The helper reads all of its task before it answers; if it ended early, its
    // answer (or its absence) says so below.
    let _ = task_write.write_all(&input);
    drop(task_write);
    let mut msgs = Vec::new();
    let mut reader = BufReader::new(read_end.take(MAX_CHILD_OUTPUT));
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        if let Ok(m) = serde_json::from_str::<ChildMsg>(line.trim()) {
            msgs.push(m);
        }
        line.clear();
    }
    let end =
        system::wait_child(pid).map_err(|e| format!("cannot wait for the network helper: {e}"))?;
    Ok((msgs, end))
}

fn send(out: &mut dyn Write, msg: &ChildMsg) {
    let _ = writeln!(out, "{}", serde_json::to_string(msg).unwrap_or_default());
    let _ = out.flush();
}
