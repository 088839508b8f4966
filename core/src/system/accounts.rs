//! User and group lookups, files first.
//!
//! Most hosts answer from /etc/passwd and /etc/group. Going through NSS for those costs
//! the setuid path more than everything else it does: nsswitch.conf, nscd probes, and
//! for group lists `dlopen` of libnss_systemd and its libraries. So: look in the files
//! ourselves; only when the user is not there (LDAP, SSSD) ask NSS. Group lists come
//! from /etc/group unless nsswitch.conf names a group source other than `files` (and
//! `systemd`, whose extra groups are only for systemd's dynamic users), in which case
//! getgrouplist(3) asks them all.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{Gid, Uid, User};

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";
const NSSWITCH: &str = "/etc/nsswitch.conf";

pub enum Key<'a> {
    Name(&'a str),
    Id(u32),
}

/// Parse one passwd line; `None` for comments, NIS compat entries and malformed lines.
pub fn parse_passwd_line(line: &[u8]) -> Option<User> {
    if line.is_empty() || line[0] == b'#' || line[0] == b'+' || line[0] == b'-' {
        return None;
    }
    let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
    if fields.len() != 7 {
        return None;
    }
    let name = std::str::from_utf8(fields[0]).ok()?.to_string();
    let uid = Uid::new(std::str::from_utf8(fields[2]).ok()?.parse().ok()?)?;
    let gid = Gid::new(std::str::from_utf8(fields[3]).ok()?.parse().ok()?)?;
    if name.is_empty() {
        return None;
    }
    Some(User {
        name,
        uid,
        gid,
        home: PathBuf::from(OsStr::from_bytes(fields[5])),
        shell: PathBuf::from(OsStr::from_bytes(fields[6])),
    })
}

/// Find a user in passwd-format text; the first matching line wins, as with NSS files.
pub fn find_user(text: &[u8], key: &Key<'_>) -> Option<User> {
    text.split(|&b| b == b'\n')
        .filter_map(parse_passwd_line)
        .find(|u| match key {
            Key::Name(n) => u.name == *n,
            Key::Id(id) => u.uid.get() == *id,
        })
}

fn nsswitch() -> &'static str {
    static CONF: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CONF.get_or_init(|| std::fs::read_to_string(NSSWITCH).unwrap_or_default())
}

/// /etc/passwd, read once per process: the setuid path looks up both the caller and the
/// target user.
fn passwd_file() -> Option<&'static [u8]> {
    static TEXT: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| std::fs::read(PASSWD).ok()).as_deref()
}

/// The user from /etc/passwd, if NSS would consult that file first.
pub fn user_from_files(key: &Key<'_>) -> Option<User> {
    if nss_sources(nsswitch(), "passwd")
        .first()
        .map(String::as_str)
        != Some("files")
    {
        return None;
    }
    find_user(passwd_file()?, key)
}

/// Groups `user` belongs to in group-format text, primary group first.
pub fn groups_in(text: &[u8], user: &User) -> Vec<Gid> {
    let mut groups = vec![user.gid];
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() || line[0] == b'#' || line[0] == b'+' || line[0] == b'-' {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if fields.len() != 4 {
            continue;
        }
        let Some(gid) = std::str::from_utf8(fields[2])
            .ok()
            .and_then(|g| g.parse().ok())
            .and_then(Gid::new)
        else {
            continue;
        };
        let member = fields[3]
            .split(|&b| b == b',')
            .any(|m| m == user.name.as_bytes());
        if member && !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    groups
}

/// The sources nsswitch.conf lists for a database (`files` if it says nothing).
pub fn nss_sources(conf: &str, database: &str) -> Vec<String> {
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((db, rest)) = line.split_once(':') else {
            continue;
        };
        if db.trim() == database {
            return rest
                .split_whitespace()
                .filter(|w| !w.starts_with('['))
                .map(str::to_string)
                .collect();
        }
    }
    vec!["files".to_string()]
}

/// Can the group list be read from /etc/group alone?
pub fn groups_are_files_only() -> bool {
    nss_sources(nsswitch(), "group")
        .iter()
        .all(|s| s == "files" || s == "systemd")
}

pub fn groups_from_files(user: &User) -> io::Result<Vec<Gid>> {
    let text = std::fs::read(GROUP)?;
    Ok(groups_in(&text, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        +nisuser::::::\n\
        bad line\n\
        alice:x:1001:1001:Alice:/home/alice:/bin/sh\n\
        alice:x:2002:2002:dup:/x:/bin/false\n\
        nobody:x:4294967295:1:overflow:/:/bin/false\n";

    #[test]
    fn finds_users_by_name_and_id_first_match_wins() {
        let a = find_user(PASSWD_TEXT, &Key::Name("alice")).unwrap();
        assert_eq!((a.uid.get(), a.gid.get()), (1001, 1001));
        assert_eq!(a.home, PathBuf::from("/home/alice"));
        assert_eq!(find_user(PASSWD_TEXT, &Key::Id(0)).unwrap().name, "root");
        assert!(find_user(PASSWD_TEXT, &Key::Name("nisuser")).is_none());
        assert!(find_user(PASSWD_TEXT, &Key::Name("bad line")).is_none());
        // (uid_t)-1 never names a user.
        assert!(find_user(PASSWD_TEXT, &Key::Name("nobody")).is_none());
        assert!(find_user(PASSWD_TEXT, &Key::Id(u32::MAX)).is_none());
    }

    #[test]
    fn group_membership() {
        let alice = find_user(PASSWD_TEXT, &Key::Name("alice")).unwrap();
        let groups =
            b"root:x:0:\nadm:x:4:bob,alice\nalice:x:1001:\nops:x:50:alicex\nwheel:x:10:alice\n";
        let g: Vec<u32> = groups_in(groups, &alice).iter().map(|g| g.get()).collect();
        assert_eq!(g, vec![1001, 4, 10]);
    }

    #[test]
    fn nsswitch_sources() {
        let conf = "passwd: files systemd\ngroup:  files [SUCCESS=merge] sss # comment\n";
        assert_eq!(nss_sources(conf, "passwd"), vec!["files", "systemd"]);
        assert_eq!(nss_sources(conf, "group"), vec!["files", "sss"]);
        assert_eq!(nss_sources("", "group"), vec!["files"]);
    }
}
