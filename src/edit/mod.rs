//! `jitsudo -e FILE...`: edit files as root without running an editor as root
//! (sudoedit semantics).
//!
//! Each file must be named by an edit grant valid now (admitted like a command's grant;
//! a counted grant spends one use per `jitsudo -e`). Root opens each file by a walk that
//! follows no symlink and refuses what another user could swap (see `file`), and copies
//! it into a private directory of the caller's (see `copies`). The editor then runs as
//! the caller, fully: real, effective and saved ids and groups are the caller's before
//! it is even looked up in their PATH, and nothing of root's survives the exec. After it
//! exits, root writes back only what changed, atomically, keeping owner and mode, and
//! only if the grant still holds and nobody changed the file meanwhile; otherwise the
//! caller's copy is kept and the message says where. Every file's outcome is logged
//! with its old and new SHA-256.
#![forbid(unsafe_code)]

mod copies;
pub mod editor;
mod file;
mod select;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::context::{Context, Refused};
use crate::grant::{Grant, Kind};
use crate::host;
use crate::log::{Outcome, Record};
use crate::pipeline::{deny, log_allowed, refuse};
use crate::reauth;
use crate::system::{self, ChildEnd};
use copies::Copies;
use file::{hex, Original, WriteBackError};
use jitsudo_core::admission::{self, RevocationList, SpendError, Terms};
use select::NoGrant;

/// What the log line names as the command, as sudo logs its sudoedit.
const COMMAND_WORD: &str = "sudoedit";

pub fn edit(ctx: &Context, files: &[OsString]) -> Result<(), Refused> {
    let mut record = record_for(ctx, &[]);

    // 1. The files, as absolute paths in normal form (a relative name is taken from
    //    the caller's working directory), each once.
    let mut paths: Vec<String> = Vec::new();
    for name in files {
        record.command = command_of(&[name.to_string_lossy().into_owned()]);
        let path = absolute(&ctx.caller.cwd, name)
            .map_err(|e| refuse(ctx, &mut record, Outcome::Error(e.clone()), e))?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    record.command = command_of(&paths);

    // 2. The editor, from the caller's environment; refused before anything is spent.
    let editor = editor::choose(|name| std::env::var_os(name)).map_err(|e| {
        deny(
            ctx,
            &mut record,
            "editor variable names files ('--')".into(),
            e,
            None,
        )
    })?;

    // 3. The grants: the same host-wide preconditions and verification as a command.
    let now = host::checked_now(&ctx.store, &ctx.config)
        .map_err(|e| deny(ctx, &mut record, e.clone(), e, None))?;
    let revoked = RevocationList::for_use(&ctx.store, &ctx.config, now)
        .map_err(|e| deny(ctx, &mut record, e.clone(), e, None))?;
    let cache = ctx.store.load_user(ctx.caller.user.uid).map_err(|e| {
        refuse(
            ctx,
            &mut record,
            Outcome::Error(e.to_string()),
            e.to_string(),
        )
    })?;
    let (grants, _invalid) = host::verified_grants(&cache, &ctx.config);
    let terms = Terms::new(
        &ctx.config,
        &ctx.caller.user.name,
        Some(Kind::Edit),
        &revoked,
        now,
    );
    let mut chosen: Vec<usize> = Vec::new();
    for path in &paths {
        match select::choose(&grants, &terms, path) {
            Ok(index) => chosen.push(index),
            Err(no) => {
                let mut one = record_for(ctx, std::slice::from_ref(path));
                let message = no_grant_message(ctx, path, &no);
                return Err(deny(
                    ctx,
                    &mut one,
                    no.log_text(),
                    message,
                    no.grant().map(str::to_string),
                ));
            }
        }
    }

    // 4. Re-authentication, as for a command.
    reauth::confirm_caller(ctx).map_err(|failed| {
        let grant = Some(grants[chosen[0]].0.id().to_string());
        deny(ctx, &mut record, failed.log, failed.message, grant)
    })?;

    // 5. Open and read each file as root; a file that cannot be edited safely spends
    //    nothing.
    let mut originals = Vec::new();
    for (path, &g) in paths.iter().zip(&chosen) {
        match Original::open(path) {
            Ok(o) => originals.push(o),
            Err(refusal) => {
                let mut one = record_for(ctx, std::slice::from_ref(path));
                return Err(deny(
                    ctx,
                    &mut one,
                    refusal.log_text().to_string(),
                    format!("cannot edit {path}: {refusal}"),
                    Some(grants[g].0.id().to_string()),
                ));
            }
        }
    }

    // 6. Spend one use of each counted grant and log each file before the editor runs.
    spend_and_log(ctx, &grants, &chosen, &paths)?;

    // 7. The caller's copies, and the editor, run as the caller.
    let fail =
        |record: &mut Record, why: String| refuse(ctx, record, Outcome::Error(why.clone()), why);
    let mut copies = Copies::create(&ctx.caller.user).map_err(|e| fail(&mut record, e))?;
    for o in &originals {
        if let Err(e) = copies.add(o.name(), &o.content) {
            let _ = copies.remove();
            return Err(fail(&mut record, e));
        }
    }
    let ended = run_editor(ctx, &editor, &copies.paths());

    // 8. Write back what changed.
    let mut kept = false;
    let mut problems: Vec<String> = Vec::new();
    if let Err(why) = &ended {
        // Changes made before the editor failed are not trusted to be finished: none
        // is written back, and the copies stay where the caller can pick them up.
        let changed = (0..originals.len())
            .any(|i| copies.read(i).map_or(true, |c| c != originals[i].content));
        if changed {
            kept = true;
            problems.push(format!(
                "{why}; nothing was written back, your copies are in {}",
                copies.dir.display()
            ));
        } else {
            problems.push(format!("{why}; no file was changed"));
        }
        let mut r = record.clone();
        r.grant = Some(grants[chosen[0]].0.id().to_string());
        let _ = fail(&mut r, format!("edit not written back: {why}"));
    } else {
        for (i, original) in originals.iter().enumerate() {
            let grant = &grants[chosen[i]].0;
            match finish_file(ctx, original, grant, &copies, i) {
                Ok(()) => {}
                Err((message, keep)) => {
                    kept |= keep;
                    problems.push(message);
                }
            }
        }
    }
    if !kept {
        if let Err(e) = copies.remove() {
            crate::complain!("jitsudo: warning: cannot remove the temporary copies: {e}");
        }
    }
    match problems.len() {
        0 => Ok(()),
        _ => Err(Refused {
            message: problems.join("\njitsudo: "),
        }),
    }
}

/// Compare the caller's copy with the original, and write it back when it changed.
/// `Err` is the message and whether the copy must be kept.
fn finish_file(
    ctx: &Context,
    original: &Original,
    grant: &Grant,
    copies: &Copies,
    index: usize,
) -> Result<(), (String, bool)> {
    let path = &original.path;
    let mut record = record_for(ctx, std::slice::from_ref(path));
    record.grant = Some(grant.id().to_string());
    let copy_path = copies.path_of(index);
    let edited = match copies.read(index) {
        Ok(edited) => edited,
        Err(e) => {
            record.outcome = Outcome::Error(format!("edit not written back: {e}"));
            ctx.audit.send_best_effort(&record);
            return Err((format!("{e}; {path} was not changed"), true));
        }
    };
    let old = hex(&original.sha256);
    if edited == original.content {
        record.outcome = Outcome::Event(format!("file unchanged, not rewritten: sha256 {old}"));
        ctx.audit.send_best_effort(&record);
        crate::complain!("jitsudo: {path} unchanged");
        return Ok(());
    }
    let new = hex(&file::sha256(&edited));
    let keep = |record: &mut Record, outcome: Outcome, message: String| {
        record.outcome = outcome;
        ctx.audit.send_best_effort(record);
        (
            format!(
                "{message}; your edited copy is kept at {}",
                copy_path.display()
            ),
            true,
        )
    };

    // The grant must still hold now, at the moment of writing (a use already spent
    // is not spent again).
    if let Some(why) = grant_now_unusable(ctx, grant) {
        return Err(keep(
            &mut record,
            Outcome::Denied(format!("edit not written back: {why}")),
            format!("{path} was not written back: {why} (grant {})", grant.id()),
        ));
    }
    // The caller cannot stop or kill this process while it writes the file back, so a
    // write-back is never left half done (a temporary file beside the original).
    match system::unsignalable(|| file::write_back(original, &edited)) {
        Ok(()) => {
            record.outcome = Outcome::Event(format!("file edited: sha256 {old} -> {new}"));
            ctx.audit.send_best_effort(&record);
            Ok(())
        }
        Err(WriteBackError::Conflict(why)) => Err(keep(
            &mut record,
            Outcome::Error(format!(
                "edit conflict, not written back: sha256 {old} -> {new}, file changed meanwhile"
            )),
            format!("{why}; it was not written back"),
        )),
        Err(WriteBackError::Failed(why)) => Err(keep(
            &mut record,
            Outcome::Error(format!("edit not written back: {why}")),
            format!("{why}; {path} was not changed"),
        )),
    }
}

/// The grant as the host sees it now: re-read from the cache and verified again, not
/// revoked, inside its window.
fn grant_now_unusable(ctx: &Context, grant: &Grant) -> Option<String> {
    let now = match host::checked_now(&ctx.store, &ctx.config) {
        Ok(now) => now,
        Err(e) => return Some(e),
    };
    let revoked = match RevocationList::for_use(&ctx.store, &ctx.config, now) {
        Ok(r) => r,
        Err(e) => return Some(e),
    };
    let cache = match ctx.store.load_user(ctx.caller.user.uid) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let (grants, _) = host::verified_grants(&cache, &ctx.config);
    let Some((current, _)) = grants.iter().find(|(g, _)| g.id() == grant.id()) else {
        return Some("the grant is no longer cached".to_string());
    };
    let terms = Terms::new(
        &ctx.config,
        &ctx.caller.user.name,
        Some(Kind::Edit),
        &revoked,
        now,
    );
    select::unusable(current, &terms)
}

/// Count one use of each counted grant (once per grant, however many of its files are
/// edited), under the user's lock and against the counter re-read there; log each
/// Spend one use of each counted grant (once per grant, however many of its files are
/// edited) and log each file, through `admission::spend_uses`: under the user's lock,
/// against the counter re-read there, all or none. With `[log] require`, an edit that
/// cannot be logged does not start. The lock is released before the editor starts.
fn spend_and_log(
    ctx: &Context,
    grants: &[(Grant, u32)],
    chosen: &[usize],
    paths: &[String],
) -> Result<(), Refused> {
    let mut record = record_for(ctx, paths);
    let used: Vec<&Grant> = chosen.iter().map(|&i| &grants[i].0).collect();
    let spent = admission::spend_uses(&ctx.store, ctx.caller.user.uid, &used, || {
        for (path, grant) in paths.iter().zip(&used) {
            let mut one = record_for(ctx, std::slice::from_ref(path));
            one.grant = Some(grant.id().to_string());
            log_allowed(ctx, &mut one)?;
        }
        Ok::<(), Refused>(())
    });
    match spent {
        // The lock goes here: the editor may stay open for hours, and the caller's
        // other runs must not wait for it. The uses are already durably counted.
        Ok(spent) => {
            drop(spent.lock);
            Ok(())
        }
        Err(SpendError::UsedUp(refusal)) => {
            let why = refusal.reason();
            let limit = match refusal {
                admission::Refusal::UsedUp { limit } => Some(limit),
                _ => None,
            };
            let grant = used
                .iter()
                .find(|g| g.claims.uses.is_some() && g.claims.uses == limit)
                .map(|g| g.id().to_string());
            let message = match &grant {
                Some(id) => format!("{why} (grant {id})"),
                None => why.clone(),
            };
            Err(deny(ctx, &mut record, why, message, grant))
        }
        Err(SpendError::NotLogged(refused)) => Err(refused),
        Err(SpendError::Store(e)) => Err(refuse(
            ctx,
            &mut record,
            Outcome::Error(e.to_string()),
            e.to_string(),
        )),
        Err(SpendError::NotRecorded(e)) => Err(refuse(
            ctx,
            &mut record,
            Outcome::Error(e.to_string()),
            format!("cannot record the use: {e}"),
        )),
    }
}

/// Run the editor on the copies as the caller and wait for it. `Err` says how it ended
/// when it did not exit 0.
fn run_editor(ctx: &Context, editor: &editor::Editor, files: &[OsString]) -> Result<(), String> {
    let caller = &ctx.caller.user;
    let groups = system::group_list(caller)
        .map_err(|e| format!("cannot read the groups of {}: {e}", caller.name))?;
    let argv = editor.argv(files);
    let env = editor_env(std::env::vars_os());
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let limits = ctx.limits;
    let umask = ctx.umask;
    let (uid, gid) = (caller.uid, caller.gid);
    let described = editor.describe();
    // Ctrl-C in the editor must not end this process before it has written back.
    let interrupts = system::ignore_interrupts();
    let pid = system::fork_child(|| {
        // Everything of root's goes before the editor is even looked for: from here on
        // this process is the caller's in every id, and cannot go back.
        if let Err(e) = system::restore_limits(&limits)
            .and_then(|_| system::irrevocably_become(uid, gid, &groups))
        {
            crate::complain!("jitsudo: cannot become yourself to run the editor: {e}");
            return 1;
        }
        system::set_umask(umask);
        let error = exec_in_path(&argv, &env, &search);
        crate::complain!("jitsudo: cannot run the editor {described}: {error}");
        127
    });
    let ended = pid.and_then(system::wait_child);
    drop(interrupts);
    match ended {
        Ok(ChildEnd::Exited(0)) => Ok(()),
        Ok(ChildEnd::Exited(code)) => Err(format!(
            "the editor {} exited with status {code}",
            editor.describe()
        )),
        Ok(ChildEnd::Signaled(signal)) => Err(format!(
            "the editor {} was killed by signal {signal}",
            editor.describe()
        )),
        Err(e) => Err(format!("cannot run the editor {}: {e}", editor.describe())),
    }
}

/// The caller's own variables that a command run as root never gets, and that their
/// editor, run as them, needs: where to look for programs and their own files.
const CALLERS_OWN: [&str; 7] = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "MAIL", "TMPDIR"];

/// The editor's environment: the caller's own, less what changes how programs load
/// code or how shells read their input (the list no command ever gets, but for the
/// caller's own PATH, HOME and the like: the editor is looked up in that PATH).
fn editor_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    vars.filter(|(name, value)| {
        let Some(name) = name.to_str() else {
            return false;
        };
        (CALLERS_OWN.contains(&name) || !crate::config::never_keep(name))
            && !name.starts_with("JITSUDO_")
            && !value.as_bytes().starts_with(b"()")
    })
    .collect()
}

/// Exec `argv[0]` as execvp would, but never from the working directory through an
/// empty PATH entry. Returns only on failure, with the last reason.
fn exec_in_path(argv: &[OsString], env: &[(OsString, OsString)], search: &OsStr) -> String {
    let to_c = |bytes: &[u8]| std::ffi::CString::new(bytes).ok();
    let Some(c_argv) = argv
        .iter()
        .map(|a| to_c(a.as_bytes()))
        .collect::<Option<Vec<_>>>()
    else {
        return "NUL byte in an argument".into();
    };
    let Some(c_env) = env
        .iter()
        .map(|(k, v)| to_c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Option<Vec<_>>>()
    else {
        return "NUL byte in the environment".into();
    };
    let program = argv[0].as_bytes();
    let candidates: Vec<Vec<u8>> = search
        .as_bytes()
        .split(|b| *b == b':')
        .filter(|dir| dir.starts_with(b"/"))
        .map(|dir| [dir, b"/", program].concat())
        .collect();
    if program.contains(&b'/') {
        let Some(path) = to_c(program) else {
            return "NUL byte in the editor's path".into();
        };
        return system::execve(&path, &c_argv, &c_env).to_string();
    }
    // As execvp: a directory where it is not (or that cannot be searched) is skipped,
    // and any other failure is the one reported.
    let mut last = None;
    for candidate in candidates {
        let Some(path) = to_c(&candidate) else {
            continue;
        };
        let error = system::execve(&path, &c_argv, &c_env);
        if !matches!(
            error.raw_os_error(),
            Some(libc::ENOENT) | Some(libc::ENOTDIR)
        ) {
            last = Some(error.to_string());
        }
    }
    last.unwrap_or_else(|| "not found in your PATH".to_string())
}

/// An absolute path for a file named on the command line, checked like a grant's.
pub(crate) fn absolute(cwd: &OsStr, name: &OsStr) -> Result<String, String> {
    let joined = if name.as_bytes().starts_with(b"/") {
        name.to_os_string()
    } else {
        let mut p = cwd.to_os_string();
        p.push("/");
        p.push(name);
        p
    };
    let text = joined
        .to_str()
        .ok_or_else(|| format!("{:?} is not valid UTF-8", name.to_string_lossy()))?;
    crate::matcher::check_edit_path(text)
        .map_err(|e| format!("cannot edit {}: {e}", name.to_string_lossy()))?;
    Ok(text.to_string())
}

fn command_of(paths: &[String]) -> Vec<OsString> {
    std::iter::once(OsString::from(COMMAND_WORD))
        .chain(paths.iter().map(OsString::from))
        .collect()
}

fn record_for(ctx: &Context, paths: &[String]) -> Record {
    Record {
        user: ctx.caller.user.name.clone(),
        outcome: Outcome::Allowed,
        tty: ctx.caller.tty.clone(),
        pwd: ctx.caller.cwd.clone(),
        run_as: Some("root".to_string()),
        grant: None,
        command: command_of(paths),
    }
}

fn no_grant_message(ctx: &Context, path: &str, no: &NoGrant) -> String {
    let hint = format!(
        "ask with: jitsudo --request -e {} --reason \"…\"",
        crate::decision::shell_quote(path)
    );
    match no {
        NoGrant::NotNamed { exec_grant: None } => format!(
            "no edit grant allows editing {path} on {}; {hint}",
            ctx.config.host
        ),
        NoGrant::NotNamed {
            exec_grant: Some(id),
        } => format!(
            "no edit grant allows editing {path} on {} (grant {id} is an exec grant; jitsudo -e needs an edit grant); {hint}",
            ctx.config.host
        ),
        NoGrant::Unusable { grant, why } => format!("{why} (grant {grant}); {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_are_taken_from_the_working_directory() {
        let cwd = OsStr::new("/etc/nginx");
        assert_eq!(
            absolute(cwd, OsStr::new("nginx.conf")).unwrap(),
            "/etc/nginx/nginx.conf"
        );
        assert_eq!(
            absolute(cwd, OsStr::new("/etc/hosts")).unwrap(),
            "/etc/hosts"
        );
        for bad in ["../shadow", "./nginx.conf", "sites/", "/etc/*.conf", "a b"] {
            assert!(absolute(cwd, OsStr::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_editor_gets_the_callers_environment_less_loader_and_shell_variables() {
        let vars = [
            ("PATH", "/home/alice/bin:/usr/bin"),
            ("HOME", "/home/alice"),
            ("TERM", "xterm"),
            ("LD_PRELOAD", "/tmp/x.so"),
            ("BASH_ENV", "/tmp/x"),
            ("IFS", " "),
            ("GLIBC_TUNABLES", "x"),
            ("f", "() { :; }"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = editor_env(vars.into_iter());
        let names: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["PATH", "HOME", "TERM"]);
    }

    #[test]
    fn logged_command_names_sudoedit_and_the_files() {
        assert_eq!(
            command_of(&["/etc/hosts".into()]),
            [OsString::from("sudoedit"), OsString::from("/etc/hosts")]
        );
    }
}
