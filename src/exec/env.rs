//! The command's environment: reset, then a short allow-list from the caller, then the
//! variables we set. Nothing that changes how a program loads code ever passes.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::config::{never_keep, BUILTIN_ENV_KEEP};
use crate::system::User;

/// Values longer than this are dropped rather than passed on.
const MAX_VALUE_BYTES: usize = 4096;

fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Locale and terminal variables must be plain names: a `/` would let the caller point
/// the command at locale or terminfo files of their choosing, `%` at format tricks.
fn needs_plain_value(name: &str) -> bool {
    BUILTIN_ENV_KEEP.iter().any(|p| pattern_matches(p, name))
}

fn keep_value(name: &str, value: &OsStr) -> bool {
    let v = value.as_bytes();
    if v.len() > MAX_VALUE_BYTES || v.starts_with(b"()") {
        return false;
    }
    if needs_plain_value(name) && (v.contains(&b'/') || v.contains(&b'%')) {
        return false;
    }
    true
}

/// Everything the command's environment is built from.
pub struct EnvInputs<'a> {
    pub keep: &'a [String],
    pub caller: &'a User,
    pub target: &'a User,
    pub grant_id: &'a str,
    pub secure_path: &'a str,
}

/// Build the command's environment from the caller's, sorted by name.
pub fn build(
    caller_env: impl IntoIterator<Item = (OsString, OsString)>,
    inputs: &EnvInputs<'_>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = caller_env
        .into_iter()
        .filter(|(name, value)| {
            let Some(name) = name.to_str() else {
                return false;
            };
            !never_keep(name)
                && inputs.keep.iter().any(|p| pattern_matches(p, name))
                && keep_value(name, value)
        })
        .collect();
    let target = inputs.target;
    let set = [
        ("PATH", OsString::from(inputs.secure_path)),
        ("HOME", target.home.clone().into_os_string()),
        ("USER", OsString::from(&target.name)),
        ("LOGNAME", OsString::from(&target.name)),
        ("SHELL", target.shell.clone().into_os_string()),
        ("JITSUDO_USER", OsString::from(&inputs.caller.name)),
        ("JITSUDO_UID", OsString::from(inputs.caller.uid.to_string())),
        ("JITSUDO_GRANT", OsString::from(inputs.grant_id)),
    ];
    for (name, value) in set {
        env.retain(|(n, _)| n != name);
        env.push((OsString::from(name), value));
    }
    env.sort();
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Gid, Uid};
    use std::path::PathBuf;

    fn user(name: &str, uid: u32) -> User {
        User {
            name: name.into(),
            uid: Uid::new(uid).unwrap(),
            gid: Gid::new(uid).unwrap(),
            home: PathBuf::from(format!("/home/{name}")),
            shell: PathBuf::from("/bin/bash"),
        }
    }

    fn run(caller_env: &[(&str, &str)], keep: &[&str]) -> Vec<(String, String)> {
        let keep: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        let alice = user("alice", 1001);
        let root = user("root", 0);
        let inputs = EnvInputs {
            keep: &keep,
            caller: &alice,
            target: &root,
            grant_id: "g1",
            secure_path: "/usr/bin:/bin",
        };
        build(
            caller_env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            &inputs,
        )
        .into_iter()
        .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
        .collect()
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn dangerous_variables_never_pass() {
        let env = run(
            &[
                ("LD_PRELOAD", "/tmp/evil.so"),
                ("LD_LIBRARY_PATH", "/tmp"),
                ("PATH", "/tmp/evil"),
                ("IFS", "x"),
                ("BASH_ENV", "/tmp/x"),
                ("ENV", "/tmp/x"),
                ("PYTHONPATH", "/tmp"),
                ("PERL5OPT", "-d"),
                ("TERM", "xterm"),
            ],
            // Even an over-broad keep list cannot let them through.
            &[
                "LD_PRELOAD",
                "PATH",
                "IFS",
                "BASH_ENV",
                "ENV",
                "PYTHONPATH",
                "PERL5OPT",
                "TERM",
            ],
        );
        assert_eq!(get(&env, "LD_PRELOAD"), None);
        assert_eq!(get(&env, "LD_LIBRARY_PATH"), None);
        assert_eq!(get(&env, "PATH"), Some("/usr/bin:/bin"));
        assert_eq!(get(&env, "IFS"), None);
        assert_eq!(get(&env, "PYTHONPATH"), None);
        assert_eq!(get(&env, "PERL5OPT"), None);
        assert_eq!(get(&env, "TERM"), Some("xterm"));
    }

    #[test]
    fn target_and_jitsudo_variables_set() {
        let env = run(&[("HOME", "/home/alice"), ("USER", "alice")], &["TERM"]);
        assert_eq!(get(&env, "HOME"), Some("/home/root"));
        assert_eq!(get(&env, "USER"), Some("root"));
        assert_eq!(get(&env, "LOGNAME"), Some("root"));
        assert_eq!(get(&env, "JITSUDO_USER"), Some("alice"));
        assert_eq!(get(&env, "JITSUDO_UID"), Some("1001"));
        assert_eq!(get(&env, "JITSUDO_GRANT"), Some("g1"));
        assert_eq!(env.iter().filter(|(k, _)| k == "HOME").count(), 1);
    }

    #[test]
    fn locale_values_must_be_plain() {
        let env = run(
            &[
                ("LANG", "C.UTF-8"),
                ("LC_ALL", "../../tmp/x"),
                ("TERM", "%n"),
                ("LC_TIME", "de_DE.UTF-8"),
            ],
            &["LANG", "LC_*", "TERM"],
        );
        assert_eq!(get(&env, "LANG"), Some("C.UTF-8"));
        assert_eq!(get(&env, "LC_ALL"), None);
        assert_eq!(get(&env, "TERM"), None);
        assert_eq!(get(&env, "LC_TIME"), Some("de_DE.UTF-8"));
    }

    #[test]
    fn function_exports_and_huge_values_dropped() {
        let big = "x".repeat(5000);
        let env = run(
            &[("EDITOR", "() { evil; }"), ("VISUAL", &big)],
            &["EDITOR", "VISUAL"],
        );
        assert_eq!(get(&env, "EDITOR"), None);
        assert_eq!(get(&env, "VISUAL"), None);
    }

    #[test]
    fn unlisted_variables_dropped() {
        let env = run(&[("SECRET", "x"), ("EDITOR", "vim")], &["EDITOR"]);
        assert_eq!(get(&env, "SECRET"), None);
        assert_eq!(get(&env, "EDITOR"), Some("vim"));
    }
}
