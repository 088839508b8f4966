//! Becoming the target user and replacing ourselves with the command.
//!
//! jitsudo execs the command in place: no root parent lingers, the command gets the
//! caller's terminal and signals directly, and its exit status is ours by construction.
//! (A monitor process would be needed only to act when the command ends, e.g. to close
//! a session record; nothing in the exec path needs that today.)
#![forbid(unsafe_code)]

pub mod env;
pub mod resolve;

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use crate::system::{self, Gid, SavedLimits, User};

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
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "NUL byte in argument or environment",
        )
    })
}

/// Become the target user and exec. Returns only on failure, with the reason.
pub fn exec(plan: ExecPlan) -> io::Error {
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
