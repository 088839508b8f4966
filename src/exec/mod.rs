//! Becoming the target user and replacing ourselves with the command.
//!
//! For root (the default target) and for the caller's own user, jitsudo execs the
//! command in place: no root parent lingers, the command gets the caller's terminal and
//! signals directly, and its exit status is ours by construction. The caller already
//! trusts root fully, and their own uid crosses no boundary.
//!
//! For any other target the command must not share the caller's terminal: with it, the
//! target user could push keystrokes into the caller's shell (TIOCSTI), read what the
//! caller types next, or change its modes. Such a command runs in a new session on a new
//! pty, under a root supervisor that relays between the two terminals (see
//! `supervisor`).
#![forbid(unsafe_code)]

pub mod env;
pub mod resolve;
pub mod supervisor;

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use crate::system::{self, Gid, SavedLimits, Uid, User};

/// How the program is reached at exec time.
pub enum Program {
    /// Exec by path.
    Path(String),
    /// Exec the open file whose hash matched the grant's `sha256:` pin.
    Pinned { path: String, file: File },
}

impl Program {
    pub fn path(&self) -> &str {
        match self {
            Program::Path(p) | Program::Pinned { path: p, .. } => p,
        }
    }
}

/// Open `path` and hash its content. The returned file is what will run.
pub fn open_and_hash(path: &str) -> io::Result<(File, [u8; 32])> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::other("not an executable regular file"));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok((file, hasher.finalize().into()))
}

/// Everything needed to start the command.
pub struct ExecPlan {
    pub program: Program,
    /// argv[0] is the program path as matched.
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub target: User,
    pub groups: Vec<Gid>,
    pub umask: u32,
    pub limits: SavedLimits,
    pub session: Session,
}

/// Whether the command shares the caller's terminal session or gets its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// Exec in place, on the caller's terminal.
    Shared,
    /// A new session on a new pty, under a root supervisor.
    Separate,
}

impl Session {
    /// Root and the caller themself share the caller's session; anyone else does not.
    pub fn for_target(target: Uid, caller: Uid) -> Session {
        if target == Uid::ROOT || target == caller {
            Session::Shared
        } else {
            Session::Separate
        }
    }
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "NUL byte in argument or environment",
        )
    })
}

/// Start the command as the plan says: exec in place, or under the supervisor. Returns
/// only if the command could not be started, with the reason; once it has started, this
/// process either is the command or ends as it ends.
pub fn exec(plan: ExecPlan) -> io::Error {
    match plan.session {
        Session::Shared => exec_in_place(plan),
        Session::Separate => supervisor::run(plan),
    }
}

/// Become the target user and exec. Returns only on failure, with the reason.
fn exec_in_place(plan: ExecPlan) -> io::Error {
    match exec_inner(plan) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(plan: ExecPlan) -> io::Result<std::convert::Infallible> {
    let argv = plan
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let envp = plan
        .env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv)
        })
        .collect::<io::Result<Vec<_>>>()?;

    if let Program::Pinned { file, .. } = &plan.program {
        // A `#!` script is re-opened by its interpreter through /dev/fd/N, so that one
        // descriptor must survive exec; for binaries it stays close-on-exec.
        let mut head = [0u8; 2];
        let is_script = file.try_clone().and_then(|mut f| {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(0))?;
            f.read(&mut head)
        })? == 2
            && &head == b"#!";
        if is_script {
            system::keep_open_across_exec(file.as_fd())?;
        }
    }

    system::restore_limits(&plan.limits)?;
    system::set_umask(plan.umask);
    system::irrevocably_become(plan.target.uid, plan.target.gid, &plan.groups)?;

    Err(match &plan.program {
        Program::Path(path) => system::execve(&cstring(path.as_bytes())?, &argv, &envp),
        Program::Pinned { file, .. } => system::fexecve(file.as_fd(), &argv, &envp),
    })
}
