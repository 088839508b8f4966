//! Every call into libc lives here, each `unsafe` block with a `// SAFETY:` note.
//!
//! The rest of the crate is `#![forbid(unsafe_code)]`; it sees only safe wrappers that
//! return `io::Result` and take checked types (`Uid`, `Gid`, NUL-free `CString`s).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

pub mod accounts;
mod errno;
pub mod fs;
pub mod noexec;
pub mod nss;
pub mod process;
pub mod terminal;

use errno::cerr;
pub use fs::openat;

/// A user id that is never the "no id" value `(uid_t)-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Uid(u32);

/// A group id that is never the "no id" value `(gid_t)-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gid(u32);

impl Uid {
    /// `setresuid(-1, …)` means "leave unchanged", so 4294967295 must never name a user.
    pub fn new(raw: u32) -> Option<Uid> {
        (raw != u32::MAX).then_some(Uid(raw))
    }
    pub const ROOT: Uid = Uid(0);
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Gid {
    pub fn new(raw: u32) -> Option<Gid> {
        (raw != u32::MAX).then_some(Gid(raw))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub fn real_uid() -> Uid {
    // SAFETY: getuid has no preconditions and cannot fail.
    let raw = unsafe { libc::getuid() };
    // The kernel never hands out (uid_t)-1 as a real uid; fall back to a value that
    // matches no passwd entry rather than panicking.
    Uid::new(raw).unwrap_or(Uid(u32::MAX - 1))
}

pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// True when the no_new_privs bit is set: then the kernel ignored our setuid bit
/// (or will refuse to let the command gain privileges), so we must not pretend to work.
pub fn no_new_privs() -> bool {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer arguments; extra args must be zero.
    let ret = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    ret != 0
}

/// A passwd entry, copied out of libc's buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// Look a user up by name: /etc/passwd first, then NSS (see `accounts`).
pub fn user_by_name(name: &str) -> io::Result<Option<User>> {
    if let Some(user) = accounts::user_from_files(&accounts::Key::Name(name)) {
        return Ok(Some(user));
    }
    nss::user(nss::UserKey::Name(name))
}

/// Look a user up by uid: /etc/passwd first, then NSS (see `accounts`).
pub fn user_by_uid(uid: Uid) -> io::Result<Option<User>> {
    if let Some(user) = accounts::user_from_files(&accounts::Key::Id(uid.get())) {
        return Ok(Some(user));
    }
    nss::user(nss::UserKey::Id(uid))
}

/// Group id of a group name, for module options such as `exempt_group=`.
pub fn group_id_by_name(name: &str) -> io::Result<Option<Gid>> {
    nss::group_id(name)
}

/// All groups of `user` (primary included), as initgroups would set them.
pub fn group_list(user: &User) -> io::Result<Vec<Gid>> {
    if accounts::groups_are_files_only() {
        return accounts::groups_from_files(user);
    }
    nss::group_list(user)
}

/// Switch real, effective and saved ids (and supplementary groups) to the target user,
/// then check that none of root's ids survived. There is no way back.
pub fn irrevocably_become(uid: Uid, gid: Gid, groups: &[Gid]) -> io::Result<()> {
    let raw_groups: Vec<libc::gid_t> = groups.iter().map(|g| g.get()).collect();
    // SAFETY: the pointer/length pair describes a valid slice.
    cerr(unsafe { libc::setgroups(raw_groups.len(), raw_groups.as_ptr()) })?;
    // SAFETY: plain integer arguments.
    cerr(unsafe { libc::setresgid(gid.get(), gid.get(), gid.get()) })?;
    // SAFETY: plain integer arguments.
    cerr(unsafe { libc::setresuid(uid.get(), uid.get(), uid.get()) })?;

    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three pointers are valid for writes.
    cerr(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })?;
    let (mut gr, mut ge, mut gs) = (0, 0, 0);
    // SAFETY: the three pointers are valid for writes.
    cerr(unsafe { libc::getresgid(&mut gr, &mut ge, &mut gs) })?;
    if [r, e, s] != [uid.get(); 3] || [gr, ge, gs] != [gid.get(); 3] {
        return Err(io::Error::other("the kernel did not switch all user ids"));
    }
    Ok(())
}

/// Make root the effective group too, so files we create are root:root rather than
/// owned by the caller's group (a setuid binary keeps the caller's gid).
pub fn become_root_group() -> io::Result<()> {
    // SAFETY: plain integer arguments; -1 leaves the real and saved gid unchanged.
    cerr(unsafe { libc::setresgid(u32::MAX, 0, u32::MAX) }).map(|_| ())
}

/// Drop root for a helper process that must act as the invoking user only.
pub fn drop_to_user(uid: Uid, gid: Gid) -> io::Result<()> {
    irrevocably_become(uid, gid, &[gid])
}

/// Close every descriptor from `first` up, so nothing the caller left open reaches
/// the command or our own code.
pub fn close_fds_from(first: RawFd) {
    // The raw system call: musl has no close_range wrapper.
    // SAFETY: close_range only closes descriptors; no memory is touched. Closing
    // descriptors that Rust objects own is impossible here: this runs first thing in
    // main, before any File is opened.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if ret == 0 {
        return;
    }
    // Older kernels: walk the usual range by hand.
    for fd in first..1024 {
        // SAFETY: as above; EBADF for unused numbers is expected and ignored.
        unsafe { libc::close(fd) };
    }
}

/// Lock a file exclusively (blocking), released when the file is closed.
pub fn lock_exclusive(file: &impl AsRawFd) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory involved.
        match cerr(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Lock a file exclusively, waiting at most `wait` for another holder to let go.
/// Returns false when the wait ran out. Polls with LOCK_NB (flock has no timeout, and a
/// timer signal would interrupt more than the wait), with short sleeps that grow to
/// 50 ms so that a lock freed soon is taken soon.
pub fn lock_exclusive_within(file: &impl AsRawFd, wait: std::time::Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        // SAFETY: flock on a descriptor we own; no memory involved.
        match cerr(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
            Err(e) => return Err(e),
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// Run `f` so that the calling user cannot stop or kill this process: every blockable
/// signal is blocked (Ctrl-C, Ctrl-Z and SIGTERM wait until the end), and the real uid
/// is root for the duration, so kill(2) from the caller's uid is refused (the kernel
/// lets a sender signal a process only if the sender's real or effective uid is the
/// target's real or saved uid; a setuid process keeps the caller's real uid and is
/// otherwise theirs to SIGSTOP). For short sections that hold a host-wide lock.
///
/// The real uid is put back before returning, and nothing in `f` may depend on it. In a
/// process that is not setuid root (tests, root's own runs) only the signal mask changes.
pub fn unsignalable<T>(f: impl FnOnce() -> T) -> T {
    let (mut real, mut effective, mut saved) = (0, 0, 0);
    // SAFETY: the three pointers are valid for writes.
    let ids = cerr(unsafe { libc::getresuid(&mut real, &mut effective, &mut saved) });
    with_signals_blocked(|| {
        // SAFETY: plain integer arguments; -1 leaves the effective and saved uids as
        // they are. Allowed because the effective uid is root.
        let switched = ids.is_ok()
            && real != 0
            && effective == 0
            && unsafe { libc::setresuid(0, u32::MAX, u32::MAX) } == 0;
        let result = f();
        if switched {
            // SAFETY: as above; the effective uid is still root, so this cannot be
            // refused. If it were, we would go on with a real uid nobody reasoned
            // about: stop at once instead.
            if unsafe { libc::setresuid(real, u32::MAX, u32::MAX) } != 0 {
                std::process::abort();
            }
        }
        result
    })
}

pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Resource limits (and the SIGXFSZ disposition) the caller could have set to make a
/// cache write fail half-way; restored before the command runs (`restore_limits`, which
/// also gives the command the default SIGPIPE disposition).
#[derive(Clone, Copy)]
pub struct SavedLimits {
    fsize: libc::rlimit,
    nofile: libc::rlimit,
    core: libc::rlimit,
    sigxfsz: libc::sighandler_t,
}

impl std::fmt::Debug for SavedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedLimits { .. }")
    }
}

/// The type of getrlimit's resource argument differs between glibc and musl.
#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

fn getrlimit(resource: RlimitResource) -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is valid for writes.
    cerr(unsafe { libc::getrlimit(resource, &mut lim) })?;
    Ok(lim)
}

fn setrlimit(resource: RlimitResource, lim: &libc::rlimit) -> io::Result<()> {
    // SAFETY: lim is a valid, initialised rlimit.
    cerr(unsafe { libc::setrlimit(resource, lim) }).map(|_| ())
}

/// Raise a limit to `want`; where raising the hard limit is not permitted (no
/// CAP_SYS_RESOURCE in a container, say) settle for the hard limit.
fn raise_limit(
    resource: RlimitResource,
    saved: &libc::rlimit,
    want: libc::rlim_t,
) -> io::Result<()> {
    if saved.rlim_cur >= want {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: saved.rlim_max.max(want),
    };
    match setrlimit(resource, &raised) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => setrlimit(
            resource,
            &libc::rlimit {
                rlim_cur: saved.rlim_max,
                rlim_max: saved.rlim_max,
            },
        ),
        other => other,
    }
}

/// Lift RLIMIT_FSIZE and RLIMIT_NOFILE as far as allowed, ignore SIGXFSZ (so a write
/// over the limit fails with EFBIG, which we handle, instead of killing us between
/// temp file and rename), and turn off core dumps while we hold root.
pub fn harden_limits() -> io::Result<SavedLimits> {
    // SAFETY: installing SIG_IGN has no memory-safety preconditions; the previous
    // disposition is returned and restored before exec.
    let sigxfsz = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let saved = SavedLimits {
        fsize: getrlimit(libc::RLIMIT_FSIZE)?,
        nofile: getrlimit(libc::RLIMIT_NOFILE)?,
        core: getrlimit(libc::RLIMIT_CORE)?,
        sigxfsz,
    };
    raise_limit(libc::RLIMIT_FSIZE, &saved.fsize, libc::RLIM_INFINITY)?;
    raise_limit(libc::RLIMIT_NOFILE, &saved.nofile, 256)?;
    setrlimit(
        libc::RLIMIT_CORE,
        &libc::rlimit {
            rlim_cur: 0,
            rlim_max: saved.core.rlim_max,
        },
    )?;
    Ok(saved)
}

pub fn restore_limits(saved: &SavedLimits) -> io::Result<()> {
    setrlimit(libc::RLIMIT_FSIZE, &saved.fsize)?;
    setrlimit(libc::RLIMIT_NOFILE, &saved.nofile)?;
    setrlimit(libc::RLIMIT_CORE, &saved.core)?;
    if saved.sigxfsz != libc::SIG_ERR {
        // SAFETY: restores the disposition the caller had (a handler address from the
        // old image is impossible here: exec resets handlers, only SIG_DFL/SIG_IGN remain
        // meaningful, and those are what signal() returned at start-up).
        unsafe { libc::signal(libc::SIGXFSZ, saved.sigxfsz) };
    }
    // Rust's runtime ignores SIGPIPE before main, and an ignored signal stays ignored
    // across exec: without this, `jitsudo yes | head` would leave `yes` writing into a
    // closed pipe instead of ending. The caller's own setting is lost by then; give the
    // command the default, as a shell would.
    // SAFETY: installing SIG_DFL has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    Ok(())
}

/// Run `f` with every blockable signal blocked, so a Ctrl-C or SIGTERM cannot land
/// between writing a temporary file and renaming it into place.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t is plain data; sigfillset/sigprocmask get valid pointers.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to initialised sigset_t values.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
    }
    let result = f();
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    result
}

/// Unblock all signals, so the command does not inherit a mask the caller chose.
fn clear_signal_mask() {
    // SAFETY: valid pointer to an initialised (empty) sigset_t.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Replace this process with `path`. Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    clear_signal_mask();
    let argv_ptrs = null_terminated(argv);
    let envp_ptrs = null_terminated(envp);
    // SAFETY: path is NUL-terminated; argv/envp are NULL-terminated arrays of pointers to
    // NUL-terminated strings that outlive the call (owned by the caller's slices).
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// An exec prepared to the last byte: the strings and the pointer arrays the system call
/// will get are built (and stay where they are) before it is made, so that the exec
/// filter can be told exactly which call is the command's own (`noexec::FirstExec`).
pub struct PreparedExec<'a> {
    program: ExecProgram<'a>,
    /// The empty path of `execveat(fd, "", …, AT_EMPTY_PATH)`.
    empty: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

enum ExecProgram<'a> {
    Path(CString),
    /// The open descriptor of a pinned program (the very bytes hashed).
    Fd(BorrowedFd<'a>),
}

impl<'a> PreparedExec<'a> {
    pub fn path(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> PreparedExec<'a> {
        Self::new(ExecProgram::Path(path), argv, envp)
    }

    pub fn fd(fd: BorrowedFd<'a>, argv: Vec<CString>, envp: Vec<CString>) -> PreparedExec<'a> {
        Self::new(ExecProgram::Fd(fd), argv, envp)
    }

    fn new(program: ExecProgram<'a>, argv: Vec<CString>, envp: Vec<CString>) -> PreparedExec<'a> {
        // The CStrings' bytes live on the heap: moving the Vecs into the struct moves
        // neither them nor the pointer arrays' buffers.
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        PreparedExec {
            program,
            empty: CString::default(),
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
        }
    }

    /// The system call `exec` will make: its number and its first arguments, pointers
    /// included.
    pub fn first_exec(&self) -> noexec::FirstExec {
        let argv = self.argv_ptrs.as_ptr() as u64;
        let envp = self.envp_ptrs.as_ptr() as u64;
        match &self.program {
            ExecProgram::Path(path) => noexec::FirstExec {
                nr: libc::SYS_execve as u32,
                args: vec![path.as_ptr() as u64, argv, envp],
            },
            ExecProgram::Fd(fd) => noexec::FirstExec {
                nr: libc::SYS_execveat as u32,
                args: vec![
                    fd.as_raw_fd() as u64,
                    self.empty.as_ptr() as u64,
                    argv,
                    envp,
                    libc::AT_EMPTY_PATH as u64,
                ],
            },
        }
    }

    /// Replace this process with the program. Returns only on failure.
    pub fn exec(&self) -> io::Error {
        clear_signal_mask();
        match &self.program {
            // SAFETY: path is NUL-terminated; both arrays are NULL-terminated arrays of
            // pointers to NUL-terminated strings owned by `self`, alive across the call.
            ExecProgram::Path(path) => unsafe {
                libc::syscall(
                    libc::SYS_execve,
                    path.as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.envp_ptrs.as_ptr(),
                )
            },
            // SAFETY: fd is a valid open descriptor for the call (borrowed for 'a); the
            // empty path and the arrays are owned by `self`, as above.
            ExecProgram::Fd(fd) => unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    fd.as_raw_fd(),
                    self.empty.as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.envp_ptrs.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            },
        };
        io::Error::last_os_error()
    }
}

/// Clear FD_CLOEXEC on a descriptor, for the one case where the program must stay
/// reachable as /dev/fd/N after exec (a pinned `#!` script run by fexecve).
pub fn keep_open_across_exec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    let flags = cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    // SAFETY: as above.
    cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags & !libc::FD_CLOEXEC) })?;
    Ok(())
}

// ---- pinned programs: where the bytes live, and a sealed copy of them ------------------

/// What the filesystem holding an open file says about it, for the pin check.
#[derive(Clone, Copy, Debug)]
pub struct Filesystem {
    /// FUSE: every read is answered by a user-space server (with fusermount, any user's),
    /// which can report root ownership and return other bytes on the next read.
    pub fuse: bool,
    /// Mounted noexec: the kernel refuses to execute files from it.
    pub noexec: bool,
}

const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

/// The filesystem `fd` lives on: its type from fstatfs, its mount flags from fstatvfs
/// (the libc crate's glibc statfs has no flags field). The field and constant types
/// differ between glibc and musl; the casts are no-ops on some targets.
#[allow(clippy::unnecessary_cast)]
pub fn filesystem_of(fd: BorrowedFd<'_>) -> io::Result<Filesystem> {
    // SAFETY: statfs is plain integer data, for which all-zero bytes are a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open descriptor; st is valid for writes of a statfs.
    cerr(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    // SAFETY: as above, for statvfs.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open descriptor; vfs is valid for writes of a statvfs.
    cerr(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut vfs) })?;
    let (fs_type, flags) = (st.f_type as u64, vfs.f_flag as u64);
    Ok(Filesystem {
        fuse: fs_type == FUSE_SUPER_MAGIC,
        noexec: flags & (libc::ST_NOEXEC as u64) != 0,
    })
}

/// A new anonymous memory file that can be sealed and executed (close-on-exec).
///
/// memfd_create through the raw system call: the static musl build's libc may not wrap
/// it. `MFD_EXEC` asks for an executable memfd explicitly, as kernels from 6.3 on expect
/// (where `vm.memfd_noexec = 2` refuses it with EACCES); older kernels do not know the
/// flag and answer EINVAL, and there every memfd is executable, so ask again without it.
pub fn executable_memfd(name: &CStr) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags: libc::c_uint| {
        // SAFETY: name is NUL-terminated and outlives the call; the flags are plain bits.
        // The kernel returns a new descriptor or -1 with errno set.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(fd as RawFd)
        }
    };
    let fd = match create(base | libc::MFD_EXEC) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => create(base)?,
        other => other?,
    };
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Seal a memfd so that its content can never change again, by anyone, through any
/// descriptor or mapping: no writes, no growing, no shrinking, and no removing the seals.
/// The seals are read back, so a kernel that accepted fewer fails here.
pub fn seal_contents(fd: BorrowedFd<'_>) -> io::Result<()> {
    let want = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, want) })?;
    // SAFETY: as above.
    let have = cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })?;
    if have & want != want {
        return Err(io::Error::other(format!(
            "the kernel kept seals {have:#x}, not {want:#x}"
        )));
    }
    Ok(())
}

/// Seconds since the epoch from the realtime clock.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Process id, for the syslog tag.
pub fn process_id() -> u32 {
    std::process::id()
}

/// Run `f` with the effective uid/gid of the caller (saved ids stay root), then switch
/// back. Used to open files the caller names, with the caller's rights.
pub fn as_user_temporarily<T>(
    uid: Uid,
    gid: Gid,
    f: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    // SAFETY: plain integer arguments; -1 leaves real and saved ids unchanged.
    cerr(unsafe { libc::setresgid(u32::MAX, gid.get(), u32::MAX) })?;
    // SAFETY: as above.
    if let Err(e) = cerr(unsafe { libc::setresuid(u32::MAX, uid.get(), u32::MAX) }) {
        restore_root_or_abort();
        return Err(e);
    }
    let result = f();
    restore_root_or_abort();
    result
}

/// Regain effective root from the saved uid. If that fails we are in a state nobody
/// reasoned about, so stop at once rather than continue.
fn restore_root_or_abort() {
    // SAFETY: plain integer arguments; the saved uid/gid are 0 in a setuid-root process.
    let ok = unsafe { libc::setresuid(u32::MAX, 0, u32::MAX) } == 0
        // SAFETY: as above.
        && unsafe { libc::setresgid(u32::MAX, 0, u32::MAX) } == 0;
    if !ok {
        std::process::abort();
    }
}

// ---- helper processes for the approval-service client ----------------------------------

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
}

/// A pipe whose both ends are close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    cerr(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    let (r, w) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    Ok((r, w))
}

/// Ask for a pipe buffer of `bytes` (rounded up by the kernel to a power of two pages).
/// Best effort: above `/proc/sys/fs/pipe-max-size` or a user's pipe quota the kernel
/// refuses, and the pipe keeps its default 64 KiB, which is only slower.
pub fn set_pipe_size(pipe: &impl AsRawFd, bytes: usize) -> io::Result<usize> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours; a descriptor that
    // is not a pipe is refused with EBADF.
    let size = cerr(unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) })?;
    Ok(size as usize)
}

/// True when this process has exactly one thread. The link count of /proc/self/task is
/// two plus the number of threads: one stat, where reading /proc/self/status would make
/// the kernel format the whole status text (this runs on every command's path).
fn single_threaded() -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self/task") {
        Ok(meta) => meta.nlink() == 3,
        Err(_) => false,
    }
}

/// Fork a child that runs `child` and exits with the status it returns; the parent gets
/// the child's pid. The child restores default SIGINT/SIGQUIT handling, so Ctrl-C
/// reaches it even while the parent ignores it. Refused unless the process is
/// single-threaded: after fork only the calling thread exists, and locks held by other
/// threads would stay locked forever.
pub fn fork_child(child: impl FnOnce() -> i32) -> io::Result<libc::pid_t> {
    use std::io::Write;
    if !single_threaded() {
        return Err(io::Error::other(
            "refusing to fork a multi-threaded process",
        ));
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: the process is single-threaded (checked above), so the child gets a
    // consistent copy of all memory and locks; it ends with _exit and never returns
    // into the parent's stack frames.
    let pid = cerr(unsafe { libc::fork() })?;
    if pid != 0 {
        return Ok(pid);
    }
    // SAFETY: restoring default dispositions takes no pointers.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGQUIT, libc::SIG_DFL);
    }
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(1);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the child at once, without running the parent's atexit
    // handlers or destructors a second time.
    unsafe { libc::_exit(code) }
}

/// Wait for a child started by `fork_child`.
pub fn wait_child(pid: libc::pid_t) -> io::Result<ChildEnd> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: status is valid for writes; pid is our own child.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if libc::WIFEXITED(status) {
            return Ok(ChildEnd::Exited(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(ChildEnd::Signaled(libc::WTERMSIG(status)));
        }
    }
}

/// Ignore SIGINT and SIGQUIT until the guard is dropped (then back to the default), so
/// that Ctrl-C ends the waiting child but lets this process report what was left.
pub struct InterruptsIgnored(());

pub fn ignore_interrupts() -> InterruptsIgnored {
    // SAFETY: setting a disposition to SIG_IGN takes no pointers.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    InterruptsIgnored(())
}

impl Drop for InterruptsIgnored {
    fn drop(&mut self) {
        // SAFETY: as above; the default disposition is what a command we exec expects.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
        }
    }
}

// ---- the re-authentication helper ------------------------------------------------------

/// Milliseconds since boot, suspend included (CLOCK_BOOTTIME): immune to changes of the
/// realtime clock, and meaningful only together with the boot id.
pub fn boot_clock_ms() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid for writes; CLOCK_BOOTTIME exists on every supported kernel.
    cerr(unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) })?;
    Ok((ts.tv_sec as u64).saturating_mul(1000) + (ts.tv_nsec as u64) / 1_000_000)
}

/// Run `program` (an absolute, trusted path) as root in every id (real, effective, saved;
/// group root, no supplementary groups) with exactly the environment `env`, stdin on
/// /dev/null, stderr shared with ours, and stdout captured. SIGINT and SIGQUIT are
/// ignored here while it runs and default in the child, so Ctrl-C ends the helper and
/// we can still report it; our previous dispositions are restored afterwards.
pub fn run_as_full_root(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> io::Result<(ChildEnd, Vec<u8>)> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, Stdio};
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls (setgroups, setresgid, setresuid, signal).
    unsafe {
        command.pre_exec(|| {
            let root_group: [libc::gid_t; 1] = [0];
            cerr(libc::setgroups(1, root_group.as_ptr()))?;
            cerr(libc::setresgid(0, 0, 0))?;
            cerr(libc::setresuid(0, 0, 0))?;
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    // SAFETY: setting SIG_IGN takes no pointers; the old dispositions are restored below.
    let (old_int, old_quit) = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    let output = command.output();
    for (signal, old) in [(libc::SIGINT, old_int), (libc::SIGQUIT, old_quit)] {
        if old != libc::SIG_ERR {
            // SAFETY: puts back a disposition signal() returned above (SIG_DFL, SIG_IGN:
            // no handler of ours is ever installed in this process).
            unsafe { libc::signal(signal, old) };
        }
    }
    let output = output?;
    let end = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => ChildEnd::Exited(code),
        (None, Some(signal)) => ChildEnd::Signaled(signal),
        (None, None) => ChildEnd::Exited(-1),
    };
    Ok((end, output.stdout))
}
