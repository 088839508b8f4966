//! User and group lookups through NSS, for accounts that are not in /etc/passwd and
//! /etc/group (LDAP, SSSD, systemd's dynamic users); `accounts` answers the rest.
//!
//! With glibc these are direct calls: getpwnam_r(3), getpwuid_r(3), getgrnam_r(3) and
//! getgrouplist(3), which load the NSS modules nsswitch.conf names.
//!
//! The shipped `jitsudo` is linked statically against musl instead: glibc's start-up
//! probes the CPU's caches with dozens of CPUID instructions, each of which traps to the
//! hypervisor in a virtual machine, and that alone cost more than all of jitsudo's own
//! work (benches/RESULTS.md). musl has no NSS, so the musl build asks the helper
//! `/usr/libexec/jitsudo/jitsudo-nss` — this same module built against glibc — and
//! parses its answer. The helper must pass the same trust checks as every file jitsudo
//! reads (root-owned, not writable by others, at a fixed path); it runs as root with an
//! empty environment, and anything it fails to answer is an error, never "no groups".
//!
//! The helper's protocol (arguments → standard output, exit status):
//! - `user name NAME` / `user uid UID` → one passwd line; exit 1 if there is no such user
//! - `group NAME` → the group's gid; exit 1 if there is no such group
//! - `groups NAME GID` → the user's gids, primary first, separated by spaces
//!
//! Any other exit status is a failure, reported with the helper's standard error.

use std::io;

use super::{Gid, Uid, User};

pub use imp::{group_id, group_list, user};

/// The helper's fixed path.
pub const HELPER: &str = "/usr/libexec/jitsudo/jitsudo-nss";

pub enum UserKey<'a> {
    Name(&'a str),
    Id(Uid),
}

/// `user`'s answer as the helper prints it: a passwd line without the password.
pub fn passwd_line(user: &User) -> String {
    format!(
        "{}:x:{}:{}::{}:{}",
        user.name,
        user.uid.get(),
        user.gid.get(),
        user.home.display(),
        user.shell.display()
    )
}

/// Parse the helper's `groups` answer.
pub fn parse_gid_list(text: &str) -> Option<Vec<Gid>> {
    text.split_whitespace()
        .map(|g| g.parse().ok().and_then(Gid::new))
        .collect()
}

/// The helper's main: answer one query from its arguments. Returns the exit status.
pub fn helper_main(args: &[String], out: &mut dyn io::Write) -> io::Result<u8> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let found =
        match args.as_slice() {
            ["user", "name", name] => user(UserKey::Name(name))?.map(|u| passwd_line(&u)),
            ["user", "uid", uid] => {
                let uid = uid
                    .parse()
                    .ok()
                    .and_then(Uid::new)
                    .ok_or_else(|| io::Error::other(format!("not a uid: {uid}")))?;
                user(UserKey::Id(uid))?.map(|u| passwd_line(&u))
            }
            ["group", name] => group_id(name)?.map(|g| g.get().to_string()),
            ["groups", name, gid] => {
                let gid = gid
                    .parse()
                    .ok()
                    .and_then(Gid::new)
                    .ok_or_else(|| io::Error::other(format!("not a gid: {gid}")))?;
                let user = User {
                    name: name.to_string(),
                    uid: Uid::ROOT, // unused by group_list
                    gid,
                    home: Default::default(),
                    shell: Default::default(),
                };
                let gids: Vec<String> = group_list(&user)?
                    .iter()
                    .map(|g| g.get().to_string())
                    .collect();
                Some(gids.join(" "))
            }
            _ => return Err(io::Error::other(
                "usage: jitsudo-nss user name NAME | user uid UID | group NAME | groups NAME GID",
            )),
        };
    match found {
        Some(line) => {
            writeln!(out, "{line}")?;
            Ok(0)
        }
        None => Ok(1),
    }
}

/// Direct NSS calls through glibc.
#[cfg(target_env = "gnu")]
mod imp {
    use std::ffi::{CStr, CString, OsStr};
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    use super::UserKey;
    use crate::system::{Gid, User};

    pub fn user(key: UserKey<'_>) -> io::Result<Option<User>> {
        let cname;
        let key = match key {
            UserKey::Name(name) => {
                let Ok(name) = CString::new(name) else {
                    return Ok(None);
                };
                cname = name;
                CKey::Name(&cname)
            }
            UserKey::Id(uid) => CKey::Id(uid.get()),
        };
        lookup_user(key)
    }

    enum CKey<'a> {
        Name(&'a CStr),
        Id(u32),
    }

    /// Call a reentrant getpw*_r/getgr*_r function with a buffer that grows (up to
    /// `max` bytes) while it answers ERANGE. `call` gets the buffer and returns the
    /// function's result and, if it found an entry, what to keep of it (copied out while
    /// the buffer is alive).
    fn with_growing_buffer<T>(
        max: usize,
        mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
    ) -> io::Result<Option<T>> {
        let mut len = 1024;
        loop {
            let mut buf = vec![0 as libc::c_char; len];
            match call(&mut buf) {
                (libc::ERANGE, _) if len < max => len *= 4,
                (0, found) => return Ok(found),
                (err, _) => return Err(io::Error::from_raw_os_error(err)),
            }
        }
    }

    fn lookup_user(key: CKey<'_>) -> io::Result<Option<User>> {
        let found = with_growing_buffer(1 << 20, |buf| {
            // SAFETY: passwd is plain old data; an all-zero value is valid and is fully
            // overwritten by getpw*_r on success.
            let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let ret = match key {
                // SAFETY: all pointers are valid for the call; buf is writable for its
                // length; name is NUL-terminated.
                CKey::Name(name) => unsafe {
                    libc::getpwnam_r(
                        name.as_ptr(),
                        &mut pwd,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut result,
                    )
                },
                // SAFETY: as above.
                CKey::Id(uid) => unsafe {
                    libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result)
                },
            };
            if ret != 0 || result.is_null() {
                return (ret, None);
            }
            // SAFETY: on success the string fields point into `buf` (alive here) and are
            // NUL-terminated; null pointers are checked by `cstr_field`.
            let fields = unsafe {
                (
                    cstr_field(pwd.pw_name),
                    cstr_field(pwd.pw_dir),
                    cstr_field(pwd.pw_shell),
                )
            };
            (0, Some((fields, pwd.pw_uid, pwd.pw_gid)))
        })?;
        let Some(((name, home, shell), uid, gid)) = found else {
            return Ok(None);
        };
        let (Some(uid), Some(gid)) = (crate::system::Uid::new(uid), Gid::new(gid)) else {
            return Ok(None);
        };
        let Ok(name) = String::from_utf8(name) else {
            return Ok(None);
        };
        Ok(Some(User {
            name,
            uid,
            gid,
            home: PathBuf::from(OsStr::from_bytes(&home)),
            shell: PathBuf::from(OsStr::from_bytes(&shell)),
        }))
    }

    /// # Safety
    /// `ptr` must be null or point to a NUL-terminated string that outlives the call.
    // SAFETY: an unsafe fn so each caller states why its pointer is valid (lookup_user:
    // the fields of a passwd filled by a successful getpw*_r, pointing into a live buffer).
    unsafe fn cstr_field(ptr: *const libc::c_char) -> Vec<u8> {
        if ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec()
        }
    }

    pub fn group_id(name: &str) -> io::Result<Option<Gid>> {
        let Ok(cname) = CString::new(name) else {
            return Ok(None);
        };
        let found = with_growing_buffer(1 << 22, |buf| {
            // SAFETY: group is plain old data; zeroed is a valid value.
            let mut grp: libc::group = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::group = std::ptr::null_mut();
            // SAFETY: all pointers valid for the call, buf writable for its length.
            let ret = unsafe {
                libc::getgrnam_r(
                    cname.as_ptr(),
                    &mut grp,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                )
            };
            (ret, (ret == 0 && !result.is_null()).then_some(grp.gr_gid))
        })?;
        Ok(found.and_then(Gid::new))
    }

    pub fn group_list(user: &User) -> io::Result<Vec<Gid>> {
        let name = CString::new(user.name.as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut count: libc::c_int = 64;
        loop {
            let mut groups = vec![0 as libc::gid_t; count as usize];
            let mut n = count;
            // SAFETY: groups has room for n entries; name is NUL-terminated. On -1, n is
            // set to the number needed.
            let ret = unsafe {
                libc::getgrouplist(name.as_ptr(), user.gid.get(), groups.as_mut_ptr(), &mut n)
            };
            if ret == -1 {
                if n <= count || n > 65536 {
                    return Err(io::Error::other("getgrouplist failed"));
                }
                count = n;
                continue;
            }
            groups.truncate(n.max(0) as usize);
            return Ok(groups.into_iter().filter_map(Gid::new).collect());
        }
    }
}

/// No NSS in this libc: ask the glibc-built helper.
#[cfg(not(target_env = "gnu"))]
mod imp {
    use std::io;
    use std::path::Path;

    use super::{parse_gid_list, UserKey, HELPER};
    use crate::system::{accounts, ChildEnd, Gid, User};

    pub fn user(key: UserKey<'_>) -> io::Result<Option<User>> {
        let uid;
        let args = match key {
            UserKey::Name(name) => ["user", "name", name],
            UserKey::Id(id) => {
                uid = id.get().to_string();
                ["user", "uid", uid.as_str()]
            }
        };
        let Some(line) = ask(&args)? else {
            return Ok(None);
        };
        accounts::parse_passwd_line(line.as_bytes())
            .map(Some)
            .ok_or_else(|| io::Error::other(format!("{HELPER} answered a malformed passwd line")))
    }

    pub fn group_id(name: &str) -> io::Result<Option<Gid>> {
        let Some(line) = ask(&["group", name])? else {
            return Ok(None);
        };
        match line.parse().ok().and_then(Gid::new) {
            Some(gid) => Ok(Some(gid)),
            None => Err(io::Error::other(format!(
                "{HELPER} answered a malformed gid"
            ))),
        }
    }

    pub fn group_list(user: &User) -> io::Result<Vec<Gid>> {
        let gid = user.gid.get().to_string();
        let answer = ask(&["groups", &user.name, &gid])?
            .ok_or_else(|| io::Error::other(format!("{HELPER} found no groups")))?;
        parse_gid_list(&answer)
            .ok_or_else(|| io::Error::other(format!("{HELPER} answered a malformed group list")))
    }

    /// Run the helper; `Ok(None)` when it says "not found".
    fn ask(args: &[&str]) -> io::Result<Option<String>> {
        crate::secure_file::open_trusted(Path::new(HELPER))
            .map_err(|e| io::Error::other(format!("refusing {HELPER}: {e}")))?;
        let (end, out) = crate::system::run_as_full_root(HELPER, args, &[])
            .map_err(|e| io::Error::other(format!("cannot run {HELPER}: {e}")))?;
        match end {
            ChildEnd::Exited(0) => {
                let text = String::from_utf8(out)
                    .map_err(|_| io::Error::other(format!("{HELPER} answered non-UTF-8")))?;
                let line = text.strip_suffix('\n').unwrap_or(&text);
                if line.contains('\n') {
                    return Err(io::Error::other(format!("{HELPER} answered several lines")));
                }
                Ok(Some(line.to_string()))
            }
            ChildEnd::Exited(1) => Ok(None),
            other => Err(io::Error::other(format!("{HELPER} failed ({other:?})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::accounts::parse_passwd_line;

    #[test]
    fn passwd_line_round_trips() {
        let user = parse_passwd_line(b"alice:x:1000:1000:Alice:/home/alice:/bin/bash").unwrap();
        let line = passwd_line(&user);
        assert_eq!(line, "alice:x:1000:1000::/home/alice:/bin/bash");
        assert_eq!(parse_passwd_line(line.as_bytes()), Some(user));
    }

    #[test]
    fn gid_lists_are_strict() {
        assert_eq!(
            parse_gid_list("1000 27 100"),
            Some(vec![
                Gid::new(1000).unwrap(),
                Gid::new(27).unwrap(),
                Gid::new(100).unwrap()
            ])
        );
        assert_eq!(parse_gid_list("1000 x"), None);
        assert_eq!(parse_gid_list("4294967295"), None);
        assert_eq!(parse_gid_list("-1"), None);
    }

    #[test]
    fn helper_answers_root_and_refuses_nonsense() {
        let mut out = Vec::new();
        let status = helper_main(&["user".into(), "uid".into(), "0".into()], &mut out).unwrap();
        assert_eq!(status, 0);
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("root:x:0:0::"), "{line}");
        let mut out = Vec::new();
        let status = helper_main(
            &["user".into(), "name".into(), "no-such-user-jt".into()],
            &mut out,
        )
        .unwrap();
        assert_eq!((status, out.len()), (1, 0));
        assert!(helper_main(
            &["user".into(), "uid".into(), "4294967295".into()],
            &mut out
        )
        .is_err());
        assert!(helper_main(&["frobnicate".into()], &mut out).is_err());
    }
}
