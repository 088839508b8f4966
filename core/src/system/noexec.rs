//! Refusing every exec after the granted program's own, for its whole process tree.
//!
//! The command installs a seccomp filter just before it execs. The filter lets exactly
//! one call through by itself: the command's own exec, recognised by its system-call
//! number and its exact arguments — the path, argv and envp pointers (for a pinned
//! program the descriptor and the empty path of execveat) of the call this process is
//! about to make (`PreparedExec::first_exec`). After that exec the address space is the
//! new program's, which never passes those values by accident; a program that could
//! forge them runs arbitrary code as root already. Every other `execve` and `execveat`
//! gets SECCOMP_RET_USER_NOTIF: the kernel suspends the caller and asks the holder of
//! the filter's listener, the root supervisor (the command hands it over a socket,
//! SCM_RIGHTS, before it execs), which refuses it with EACCES and logs it. The command's
//! own exec therefore costs no round trip to the supervisor. The filter is inherited by
//! every child and survives exec, so this holds for the whole tree; only root outside
//! the tree could remove it, and the supervisor is out of the tree's reach.
//!
//! Nothing is decided on the path a refused process asks for (it could change it after
//! we read it): the path is read from /proc/PID/mem only to log what was refused. If
//! the supervisor is gone, the kernel fails every exec under the filter (ENOSYS): closed.
//!
//! Anything but the native system-call ABI (x32 on x86_64, a wrong audit arch) kills
//! the process: a filter keyed on native numbers must not be sidestepped by another
//! numbering.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

use super::cerr;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// System-call numbers at or above this are x32's on x86_64 (and invalid elsewhere).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

// Offsets in struct seccomp_data.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The one exec the filter lets through by itself: the command's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstExec {
    /// execve or execveat.
    pub nr: u32,
    /// Its first arguments, exactly as they will be passed.
    pub args: Vec<u64>,
}

/// Offset of the low word of argument `i` in struct seccomp_data (little-endian: the
/// high word follows it).
fn arg_offset(i: usize) -> u32 {
    16 + 8 * i as u32
}

/// The filter program. Jump offsets count the instructions skipped.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn program(first: &FirstExec) -> Vec<libc::sock_filter> {
    let mut p = vec![
        /* 0 */ stmt(LD_W_ABS, ARCH_OFFSET),
        /* 1 */ jump(JEQ_K, AUDIT_ARCH, 1, 0),
        /* 2 */ stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        /* 3 */ stmt(LD_W_ABS, NR_OFFSET),
        /* 4 */ jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        /* 5 */ stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        /* 6 */ jump(JEQ_K, libc::SYS_execve as u32, 2, 0),
        /* 7 */ jump(JEQ_K, libc::SYS_execveat as u32, 1, 0),
        /* 8 */ stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    ];
    // An exec: it is the command's own only if the number and every word of the first
    // arguments match; any mismatch goes to the last instruction (ask the supervisor).
    let words: Vec<(u32, u32)> = first
        .args
        .iter()
        .enumerate()
        .flat_map(|(i, &arg)| {
            [
                (arg_offset(i), arg as u32),
                (arg_offset(i) + 4, (arg >> 32) as u32),
            ]
        })
        .collect();
    let ask = p.len() + 1 + 2 * words.len() + 1;
    let to_ask = |from: usize| (ask - from - 1) as u8;
    p.push(jump(JEQ_K, first.nr, 0, to_ask(p.len())));
    for (offset, value) in words {
        p.push(stmt(LD_W_ABS, offset));
        p.push(jump(JEQ_K, value, 0, to_ask(p.len())));
    }
    p.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
    debug_assert_eq!(p.len(), ask);
    p.push(stmt(RET_K, libc::SECCOMP_RET_USER_NOTIF));
    p
}

/// Install the exec filter on the calling thread (the command, single-threaded, just
/// before its exec) and return the listener. Must run with CAP_SYS_ADMIN (root): then
/// no_new_privs is not needed, and a setuid granted program keeps working. The
/// listener is close-on-exec, so the command never holds its own listener.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn install_exec_filter(first: &FirstExec) -> io::Result<OwnedFd> {
    let filter = program(first);
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let install = |flags: libc::c_ulong| {
        // SAFETY: prog points to a valid program that outlives the call; the kernel
        // copies it. The flags are plain bits; the return value is a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(fd)
        }
    };
    // SPEC_ALLOW: the filter is an exec gate, not a sandbox for hostile code, so it must
    // not turn on the kernel's speculative-store-bypass mitigation for the command
    // (`spec_store_bypass_disable=seccomp`), which it did not have before and which
    // would slow every run down. Kernels before 4.17 do not know the flag (EINVAL).
    let listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    let fd = match install(listener | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => install(listener)?,
        other => other?,
    };
    // SAFETY: fd was just returned by seccomp and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn install_exec_filter(_first: &FirstExec) -> io::Result<OwnedFd> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no exec filter for this architecture",
    ))
}

/// One suspended exec, as the kernel reported it.
#[derive(Clone, Copy, Debug)]
pub struct ExecRequest {
    pub id: u64,
    pub pid: u32,
    /// The system call: execve or execveat.
    nr: i32,
    args: [u64; 6],
}

/// Wait for the next suspended exec on `listener` (a blocking read; call when poll says
/// it is readable). `None` when the process that asked has gone meanwhile.
pub fn receive(listener: BorrowedFd<'_>) -> io::Result<Option<ExecRequest>> {
    // SAFETY: seccomp_notif is plain integer data; the kernel wants it zeroed.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: listener is a seccomp listener; notif is valid for writes of the
        // struct this ioctl number encodes.
        let ret = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                &mut notif as *mut libc::seccomp_notif,
            )
        };
        if ret == 0 {
            return Ok(Some(ExecRequest {
                id: notif.id,
                pid: notif.pid,
                nr: notif.data.nr,
                args: notif.data.args,
            }));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // The asking process died before we read its request.
            Some(libc::ENOENT) => return Ok(None),
            _ => return Err(e),
        }
    }
}

fn respond(listener: BorrowedFd<'_>, id: u64, error: i32, flags: u32) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    // SAFETY: listener is a seccomp listener; resp is an initialised response.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    match cerr(ret) {
        // The process died meanwhile: nothing to answer.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Fail the exec with EACCES.
pub fn refuse(listener: BorrowedFd<'_>, request: &ExecRequest) -> io::Result<()> {
    respond(listener, request.id, -libc::EACCES, 0)
}

/// Whether the request is still pending: after reading the asking process's memory,
/// this shows the pid was not reused meanwhile (what was read belongs to it).
fn still_pending(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: listener is a seccomp listener; id is a valid u64.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
            &mut id as *mut u64,
        )
    };
    ret == 0
}

/// The longest path read from a process's memory for the log.
const PATH_LIMIT: usize = 4096;

/// What the refused exec was: (the path it asked for, the program that asked). For the
/// log only; `None` when the process went away before it could be read.
pub fn describe(listener: BorrowedFd<'_>, request: &ExecRequest) -> Option<(String, String)> {
    let pid = request.pid;
    let program = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".to_string());
    let (dirfd, addr, flags) = if request.nr == libc::SYS_execveat as i32 {
        (request.args[0] as i32, request.args[1], request.args[4])
    } else {
        (libc::AT_FDCWD, request.args[0], 0)
    };
    let mut path = read_string(pid, addr).unwrap_or_else(|| "?".to_string());
    if path.is_empty() && flags & libc::AT_EMPTY_PATH as u64 != 0 {
        // fexecve: the program is the open descriptor.
        path = std::fs::read_link(format!("/proc/{pid}/fd/{dirfd}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("fd {dirfd}"));
    }
    still_pending(listener, request.id).then_some((path, program))
}

/// A NUL-terminated string at `addr` in process `pid`, read page by page (a read that
/// crosses into an unmapped page fails as a whole).
fn read_string(pid: u32, addr: u64) -> Option<String> {
    let mem = File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < PATH_LIMIT {
        let to_page_end = 4096 - (at % 4096) as usize;
        let mut buf = vec![0u8; to_page_end.min(PATH_LIMIT - out.len())];
        let n = mem.read_at(&mut buf, at).ok()?;
        if n == 0 {
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

// ---- handing the listener to the supervisor -------------------------------------------

/// A connected pair of datagram sockets (close-on-exec), to pass one descriptor.
pub fn socket_pair() -> io::Result<(File, File)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    cerr(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded; both descriptors are ours alone.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

const CMSG_ROOM: usize = 64;

/// Send `fd` over the socket `sock` (SCM_RIGHTS), with one byte of data.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut byte = [1u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u8; CMSG_ROOM];
    // SAFETY: msghdr is plain data; all-zero is valid and the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: msg_control points to CMSG_ROOM bytes, more than CMSG_SPACE of one fd, so
    // the first header and its data lie within `control`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: msg describes live buffers (iov, control) for the whole call.
        let ret = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match cerr(ret as libc::c_int) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Receive a descriptor sent with `send_fd` (close-on-exec). `None` when the other end
/// closed without sending one.
pub fn receive_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u8; CMSG_ROOM];
    // SAFETY: as in send_fd.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_ROOM as _;
    let n = loop {
        // SAFETY: msg describes live buffers for the whole call.
        let ret = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match cerr(ret as libc::c_int) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    if n == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of headers; the
    // CMSG macros walk exactly those.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                // The descriptor is new in this process and owned by nobody else.
                return Ok(Some(OwnedFd::from_raw_fd(fd)));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(None)
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions the filter uses.
    fn run(first: &FirstExec, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let prog = program(first);
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        NR_OFFSET => nr,
                        ARCH_OFFSET => arch,
                        k if (16..64).contains(&k) => {
                            let arg = args[((k - 16) / 8) as usize];
                            if (k - 16) % 8 == 0 {
                                arg as u32
                            } else {
                                (arg >> 32) as u32
                            }
                        }
                        k => panic!("unexpected load offset {k}"),
                    }
                }
                JEQ_K | JGE_K => {
                    let taken = if i.code == JEQ_K {
                        acc == i.k
                    } else {
                        acc >= i.k
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
            assert!(pc < prog.len(), "jumped past the end");
        }
    }

    const PATH: u64 = 0x0000_7ffd_1234_5670;
    const ARGV: u64 = 0x0000_5555_0000_1000;
    const ENVP: u64 = 0x0000_5555_0000_2000;

    fn own_execve() -> FirstExec {
        FirstExec {
            nr: libc::SYS_execve as u32,
            args: vec![PATH, ARGV, ENVP],
        }
    }

    #[test]
    fn only_the_commands_own_exec_passes_every_other_asks_the_rest_is_allowed() {
        let (execve, execveat) = (libc::SYS_execve as u32, libc::SYS_execveat as u32);
        let first = own_execve();
        let own = [PATH, ARGV, ENVP, 0, 0, 0];
        assert_eq!(
            run(&first, execve, AUDIT_ARCH, own),
            libc::SECCOMP_RET_ALLOW
        );
        // Any one word different (high or low half of any argument): ask.
        for (i, delta) in [(0, 1u64), (0, 1 << 32), (1, 8), (2, 1 << 40)] {
            let mut args = own;
            args[i] ^= delta;
            assert_eq!(
                run(&first, execve, AUDIT_ARCH, args),
                libc::SECCOMP_RET_USER_NOTIF,
                "argument {i} changed by {delta:#x}"
            );
        }
        assert_eq!(
            run(&first, execveat, AUDIT_ARCH, own),
            libc::SECCOMP_RET_USER_NOTIF
        );
        for nr in [0, 1, libc::SYS_openat as u32, libc::SYS_clone as u32, 400] {
            assert_eq!(
                run(&first, nr, AUDIT_ARCH, own),
                libc::SECCOMP_RET_ALLOW,
                "syscall {nr}"
            );
        }
    }

    #[test]
    fn a_pinned_programs_execveat_is_matched_with_its_descriptor_and_flags() {
        let first = FirstExec {
            nr: libc::SYS_execveat as u32,
            args: vec![5, PATH, ARGV, ENVP, libc::AT_EMPTY_PATH as u64],
        };
        let execveat = libc::SYS_execveat as u32;
        let own = [5, PATH, ARGV, ENVP, libc::AT_EMPTY_PATH as u64, 0];
        assert_eq!(
            run(&first, execveat, AUDIT_ARCH, own),
            libc::SECCOMP_RET_ALLOW
        );
        let mut other_fd = own;
        other_fd[0] = 6;
        assert_eq!(
            run(&first, execveat, AUDIT_ARCH, other_fd),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(&first, libc::SYS_execve as u32, AUDIT_ARCH, own),
            libc::SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn other_abis_are_killed() {
        let first = own_execve();
        let execve = libc::SYS_execve as u32;
        let own = [PATH, ARGV, ENVP, 0, 0, 0];
        // x32's execve, and any number with the x32 bit, even with the right arguments.
        assert_eq!(
            run(&first, X32_SYSCALL_BIT | 520, AUDIT_ARCH, own),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            run(&first, X32_SYSCALL_BIT | execve, AUDIT_ARCH, own),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        // i386 (AUDIT_ARCH_I386), where 11 is execve.
        assert_eq!(
            run(&first, 11, 0x4000_0003, own),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }
}
