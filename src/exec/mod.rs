//! Becoming the target user and starting the command under a root supervisor.
//!
//! Every run is supervised (see `supervisor`): the grant's terms hold for the command's
//! whole life, not only at exec. The supervisor ends the run when the grant's window
//! closes (expiry, or a revocation learnt by `jitsudo --sync`), and, unless the grant
//! has `exec`, refuses every exec after the granted program's own, for the whole tree.
//!
//! For root (the default target) and for the caller's own user, the command runs on the
//! caller's terminal, in the caller's job (so Ctrl-Z and `fg` work as for any command):
//! the caller already trusts root fully, and their own uid crosses no boundary.
//!
//! For any other target the command must not share the caller's terminal: with it, the
//! target user could push keystrokes into the caller's shell (TIOCSTI), read what the
//! caller types next, or change its modes. Such a command runs in a new session on a new
//! pty, and the supervisor relays between the two terminals.
#![forbid(unsafe_code)]

pub mod env;
pub mod resolve;
pub mod supervisor;

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::system::{self, Gid, SavedLimits, Uid, User};

/// How the program is reached at exec time.
pub enum Program {
    /// Exec by path.
    Path(String),
    /// Exec the descriptor whose bytes matched the grant's `sha256:` pin (see
    /// [`open_and_hash`]); `script` when those bytes start with `#!`.
    Pinned {
        path: String,
        file: File,
        script: bool,
    },
}

impl Program {
    pub fn path(&self) -> &str {
        match self {
            Program::Path(p) | Program::Pinned { path: p, .. } => p,
        }
    }
}

/// The largest pinned program jitsudo copies into memory to run it (64 MiB). The copy
/// is RAM for as long as the command runs; a bigger program must be one only root can
/// modify, which runs in place.
pub const PINNED_COPY_LIMIT: u64 = 64 * 1024 * 1024;

/// A pinned program, read once: the descriptor to exec and the hash of exactly the bytes
/// that descriptor holds.
#[derive(Debug)]
pub struct Pinned {
    pub file: File,
    pub hash: [u8; 32],
    /// The bytes start with `#!`: the kernel hands the interpreter /dev/fd/N.
    pub script: bool,
}

/// Can nobody but root change the bytes of this open file? Its owner is root and no
/// group or other write bit is set (with POSIX ACLs the group bits are the ACL mask, so a
/// named user's write entry shows there too), and it is not on FUSE, whose server answers
/// every read itself. The directories above do not matter: the bytes are read through
/// this descriptor, and it is this descriptor that runs.
fn only_root_can_change(meta: &std::fs::Metadata, fs: &system::Filesystem) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == 0 && meta.mode() & 0o022 == 0 && !fs.fuse
}

/// Open the pinned program at `path` and hash it, so that the bytes that will run are
/// exactly the bytes hashed.
///
/// A file only root can change is hashed through its descriptor, and that descriptor
/// runs (fexecve): nothing is copied. Any other file is read once, each chunk going to
/// the hash and into a memfd, which is then sealed against every change and is what
/// runs; rewriting the file in place, during the hash or while a script runs, changes
/// nothing that executes. Errors name the file and the reason.
pub fn open_and_hash(path: &str) -> Result<Pinned, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {path}: {e}"))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{path} is not an executable regular file"));
    }
    let fs = system::filesystem_of(file.as_fd())
        .map_err(|e| format!("cannot stat the filesystem of {path}: {e}"))?;
    // The kernel would refuse to exec it in place; a copy must not sidestep that.
    if fs.noexec {
        return Err(format!("{path} is on a filesystem mounted noexec"));
    }
    let in_place = only_root_can_change(&meta, &fs);
    if !in_place && meta.len() > PINNED_COPY_LIMIT {
        return Err(too_large_to_copy(path, meta.len()));
    }
    let mut copy = if in_place {
        None
    } else {
        Some(system::executable_memfd(c"jitsudo-pinned").map_err(|e| cannot_copy(path, &e))?)
    };

    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(2);
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        total += n as u64;
        if let Some(copy) = &mut copy {
            // It grew while being read.
            if total > PINNED_COPY_LIMIT {
                return Err(too_large_to_copy(path, total));
            }
            copy.write_all(chunk).map_err(|e| cannot_copy(path, &e))?;
        }
        hasher.update(chunk);
        let wanted = (2 - head.len()).min(n);
        head.extend_from_slice(&chunk[..wanted]);
    }
    let file = match copy {
        Some(copy) => {
            system::seal_contents(copy.as_fd()).map_err(|e| cannot_copy(path, &e))?;
            copy
        }
        None => file,
    };
    Ok(Pinned {
        file,
        hash: hasher.finalize().into(),
        script: head == b"#!",
    })
}

fn too_large_to_copy(path: &str, size: u64) -> String {
    format!(
        "{path} is {size} bytes, more than the {PINNED_COPY_LIMIT} bytes jitsudo copies into \
         sealed memory to run a pinned program that someone other than root can modify; \
         make it owned by root and not writable by group or others, and it runs in place \
         (fix with: chown root:root {path} && chmod go-w {path})"
    )
}

fn cannot_copy(path: &str, e: &io::Error) -> String {
    let hint = if e.raw_os_error() == Some(libc::EACCES) {
        " (vm.memfd_noexec forbids executable memfds)"
    } else {
        ""
    };
    format!(
        "cannot copy {path} into sealed memory to run it: {e}{hint}; a pinned program \
         only root can modify (owned by root, not writable by group or others) runs in \
         place instead"
    )
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

/// The grant's terms the supervisor enforces while the command runs.
pub struct Bounds<'a> {
    /// When the grant's window closes (seconds since the epoch).
    pub exp: i64,
    /// SIGTERM at the end, SIGKILL this much later (`end_grace`).
    pub end_grace: Duration,
    /// Warn the command's terminal this long before the end (`end_warning`).
    pub end_warning: Duration,
    /// The grant's `exec` claim: the command may execute other programs.
    pub allow_exec: bool,
    /// The id of the grant the command runs under (it changes when an extension takes
    /// over), for the terminal and the log.
    pub grant: String,
    /// Whether the grant with this id has been revoked since the run started: asked
    /// every `supervisor::REVOCATION_CHECK`, and expected to read the list only when it
    /// changed.
    pub revoked: Box<dyn FnMut(&str) -> bool + 'a>,
    /// A grant in the caller's cache that replaces the grant with this id (an approved
    /// `jitsudo --extend`) and covers this very run, asked when the grant is revoked or
    /// its end (or the warning before it) comes. `None`: the run ends as it would have.
    pub successor: FindSuccessor<'a>,
    /// Log an event of the run (syslog and journal).
    pub log: Box<dyn FnMut(RunEvent<'_>) + 'a>,
    /// The run's session recording, when its grant or the host config asks for one: the
    /// supervisor writes what passes through the pty (and the pipes of standard streams
    /// that are not terminals) and seals it at the end. A write that fails ends the run.
    pub recorder: Option<crate::iolog::writer::Recorder>,
}

/// `Bounds::successor`: the current grant's id in, its successor out.
pub type FindSuccessor<'a> = Box<dyn FnMut(&str) -> Option<Successor> + 'a>;

/// The grant a run continues under (see `Bounds::successor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub grant: String,
    /// Its end (seconds since the epoch).
    pub exp: i64,
}

/// What the supervisor logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEvent<'s> {
    /// A process of the run tried to execute `path`, and was refused; `program` is the
    /// program that tried.
    BlockedExec { path: &'s str, program: &'s str },
    /// The window closed while the command ran (or its recording failed), and the run
    /// is being ended.
    Ended(EndReason),
    /// The run's grant was replaced by an extension (`to`, ending at `exp`), and the run
    /// continues under it.
    Extended {
        from: &'s str,
        to: &'s str,
        exp: i64,
    },
    /// The run's recording is complete and sealed.
    RecordingSealed(&'s crate::iolog::writer::Seal),
    /// The run's recording could not be written (the run was stopped for it), or sealed.
    RecordingFailed { id: &'s str, why: &'s str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Expired,
    Revoked,
    /// `[record] on_error = "stop"`: a recording that cannot be written stops the run.
    RecordingFailed,
}

impl EndReason {
    pub fn text(self) -> &'static str {
        match self {
            EndReason::Expired => "grant expired",
            EndReason::Revoked => "grant revoked",
            EndReason::RecordingFailed => "recording failed",
        }
    }
}

/// Whether the command shares the caller's terminal session or gets its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// On the caller's terminal, in the caller's job.
    Shared,
    /// A new session on a new pty, under a root supervisor (also every recorded run:
    /// what the command shows and reads must pass through the supervisor).
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

/// Start the command under the supervisor, which ends as it ends. Returns only if the
/// command could not be started, with the reason.
pub fn exec(plan: ExecPlan, bounds: Bounds<'_>) -> io::Error {
    supervisor::run(plan, bounds)
}

/// Become the target user and exec (in a child of the supervisor). With `confine`, first
/// install the exec filter and hand its listener to the supervisor over that socket.
/// Returns only on failure, with the reason.
fn exec_in_place(plan: ExecPlan, confine: Option<&File>) -> io::Error {
    match exec_inner(plan, confine) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(plan: ExecPlan, confine: Option<&File>) -> io::Result<std::convert::Infallible> {
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

    if let Program::Pinned {
        file, script: true, ..
    } = &plan.program
    {
        // The kernel starts a `#!` script's interpreter on /dev/fd/N, so that one
        // descriptor must survive exec; for binaries it stays close-on-exec.
        system::keep_open_across_exec(file.as_fd())?;
    }

    // The exec, prepared to its last pointer before the filter is installed: the filter
    // lets exactly this call through by itself (see system::noexec).
    let prepared = match &plan.program {
        Program::Path(path) => system::PreparedExec::path(cstring(path.as_bytes())?, argv, envp),
        Program::Pinned { file, .. } => system::PreparedExec::fd(file.as_fd(), argv, envp),
    };
    system::restore_limits(&plan.limits)?;
    system::set_umask(plan.umask);
    if let Some(socket) = confine {
        // Installed while still root, with CAP_SYS_ADMIN, so no_new_privs is not needed
        // (it would strip a setuid granted program of its rights).
        let listener =
            system::noexec::install_exec_filter(&prepared.first_exec()).map_err(|e| {
                io::Error::other(format!(
                    "cannot stop the command from running other programs: this kernel refused \
                     the seccomp exec filter ({e}); it needs Linux 5.0 or later with seccomp \
                     user notification, or a grant that allows exec (jitsudoctl mint --allow-exec, \
                     policy allow_exec = true)"
                ))
            })?;
        system::noexec::send_fd(socket.as_fd(), listener.as_fd())
            .map_err(|e| io::Error::other(format!("cannot hand the exec filter over: {e}")))?;
        // Only the supervisor holds the listener now.
        drop(listener);
    }
    system::irrevocably_become(plan.target.uid, plan.target.gid, &plan.groups)?;
    Err(prepared.exec())
}
