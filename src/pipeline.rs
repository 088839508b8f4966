//! Running a command: the one path from "alice typed `jitsudo systemctl restart nginx`"
//! to the command replacing this process. Read it top to bottom; each step either hands
//! its result to the next or refuses, and every refusal is logged before we exit.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::ffi::OsString;

use crate::admission::{self, RevocationList, SpendError, Terms};
use crate::audit::AuditError;
use crate::context::{Context, Refused};
use crate::decision::{self, Ask, Denial};
use crate::exec::{
    self, env, resolve, Bounds, ExecPlan, Pinned, Program, RunEvent, Session, Successor,
};
use crate::grant::Grant;
use crate::host;
use crate::iolog::writer::Recorder;
use crate::iolog::{SessionInfo, IO_LOG_DIR};
use crate::log::{Outcome, Record};
use crate::reauth;
use crate::store::journal::{RecordingRef, RecordingSeal};
use crate::system::{self, User};

pub fn run_command(
    ctx: &Context,
    run_as: Option<&str>,
    command: &[OsString],
) -> Result<Infallible, Refused> {
    let mut record = Record {
        user: ctx.caller.user.name.clone(),
        outcome: Outcome::Allowed,
        tty: ctx.caller.tty.clone(),
        pwd: ctx.caller.cwd.clone(),
        run_as: Some(run_as.unwrap_or("root").to_string()),
        grant: None,
        command: command.to_vec(),
    };
    let (program, args) = command.split_first().expect("clap guarantees a command");

    // 1. Who the command should run as.
    let target =
        target_user(run_as).map_err(|e| refuse(ctx, &mut record, Outcome::Error(e.clone()), e))?;
    record.run_as = Some(target.name.clone());

    // 2. Which program: an absolute path as typed, or a bare name found in secure_path.
    let paths = resolve::candidates(program, &ctx.config.secure_path)
        .map_err(|e| refuse(ctx, &mut record, Outcome::Error(e.clone()), e))?;
    record.command[0] = paths[0].clone().into();

    // 3. Host-wide preconditions: a sane clock and, if required, a fresh revocation list.
    let now = host::checked_now(&ctx.store, &ctx.config)
        .map_err(|e| deny(ctx, &mut record, e.clone(), e, None))?;
    let revoked = RevocationList::for_use(&ctx.store, &ctx.config, now)
        .map_err(|e| deny(ctx, &mut record, e.clone(), e, None))?;

    // 4. The caller's own cached grants, each signature checked again now.
    let cache = ctx.store.load_user(ctx.caller.user.uid).map_err(|e| {
        refuse(
            ctx,
            &mut record,
            Outcome::Error(e.to_string()),
            e.to_string(),
        )
    })?;
    let (grants, invalid) = host::verified_grants(&cache, &ctx.config);

    // 5. The decision. A pinned program is read and hashed here, once per path, and the
    //    descriptor holding exactly the bytes hashed is what will run.
    let mut pinned: Vec<(String, Result<Pinned, String>)> = Vec::new();
    let decided = decide(
        ctx,
        &target,
        &paths,
        args,
        &grants,
        invalid,
        &revoked,
        now,
        &mut pinned,
    );
    let allowed = match decided {
        Ok(allowed) => allowed,
        Err(denial) => {
            let message = denial_message(ctx, &denial, &target, &paths[0], args);
            return Err(deny(
                ctx,
                &mut record,
                denial.log_text(),
                message,
                denial.grant().map(str::to_string),
            ));
        }
    };
    let grant = &grants[allowed.grant].0;
    record.grant = Some(grant.id().to_string());
    record.command[0] = allowed.path.clone().into();

    // 6. With `authenticate = true`, the caller confirms who they are through PAM,
    //    unless they did on this terminal within `auth_timeout`. Nothing when off.
    reauth::confirm_caller(ctx).map_err(|failed| {
        let grant_id = Some(grant.id().to_string());
        deny(ctx, &mut record, failed.log, failed.message, grant_id)
    })?;

    // 7. A recorded run (the grant's `record`, or `[record] always`) gets its recording
    //    now, so that the line logged next names it; a recording that cannot be started
    //    stops the run here, before anything is spent.
    let recorder = if grant.claims.record || ctx.config.record.always {
        let started = start_recording(ctx, &target, &allowed.path, args, grant)
            .map_err(|e| refuse(ctx, &mut record, Outcome::Error(e.clone()), e))?;
        ctx.audit
            .set_recording(Some(RecordingRef::named(started.id().as_str())));
        Some(started)
    } else {
        None
    };

    // 8. Count a use (counted grants only), and log before anything runs: with
    //    `require`, an unlogged command does not run and its use is not spent.
    let lock = match count_use_and_log(ctx, &mut record, grant) {
        Ok(lock) => lock,
        Err(refused) => {
            if let Some(r) = recorder {
                let _ = r.discard();
            }
            return Err(refused);
        }
    };

    // 9. Become the target user with a clean environment, and run under the supervisor:
    //    in the caller's job for root and the caller's own user, else (and for every
    //    recorded run) in a new session on a new pty (see exec).
    let program = if allowed.pinned {
        // The decision saw this path's bytes match; never fall back to exec by path.
        match pinned.into_iter().find(|(path, _)| *path == allowed.path) {
            Some((path, Ok(p))) => Program::Pinned {
                path,
                file: p.file,
                script: p.script,
            },
            _ => {
                let why = format!("{} lost its pinned copy", allowed.path);
                return Err(refuse(ctx, &mut record, Outcome::Error(why.clone()), why));
            }
        }
    } else {
        Program::Path(allowed.path.clone())
    };
    let mut plan = build_plan(ctx, program, args, target, grant)
        .map_err(|e| refuse(ctx, &mut record, Outcome::Error(e.clone()), e))?;
    if recorder.is_some() {
        plan.session = Session::Separate;
    }
    let path = plan.program.path().to_string();
    // The supervisor lives as long as the command: it must not keep the caller's other
    // runs waiting for their lock. The use is already durably counted.
    drop(lock);
    let run = Run {
        path: allowed.path.clone(),
        args: args.to_vec(),
        pinned: allowed.pinned,
    };
    let bounds = bounds(ctx, grant, &record, recorder, run);
    let error = exec::exec(plan, bounds);
    let why = format!("cannot run {path}: {error}");
    Err(refuse(ctx, &mut record, Outcome::Error(why.clone()), why))
}

// ---- the steps ------------------------------------------------------------------------

/// `-u USER` or `-u #UID`; root by default. Uids are unsigned and never 4294967295.
pub fn target_user(requested: Option<&str>) -> Result<User, String> {
    let requested = requested.unwrap_or("root");
    let found = if let Some(digits) = requested.strip_prefix('#') {
        let uid = digits
            .parse::<u32>()
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(system::Uid::new)
            .ok_or_else(|| format!("'{requested}' is not a valid user id (#0 to #4294967294)"))?;
        system::user_by_uid(uid)
    } else {
        if !crate::grant::valid_user_name(requested) {
            return Err(format!("'{requested}' is not a valid user name"));
        }
        system::user_by_name(requested)
    };
    found
        .map_err(|e| format!("cannot look up user '{requested}': {e}"))?
        .ok_or_else(|| format!("unknown user '{requested}'"))
}

#[allow(clippy::too_many_arguments)]
fn decide(
    ctx: &Context,
    target: &User,
    paths: &[String],
    args: &[OsString],
    grants: &[(Grant, u32)],
    invalid: Vec<crate::grant::Rejection>,
    revoked: &RevocationList,
    now: i64,
    pinned: &mut Vec<(String, Result<Pinned, String>)>,
) -> Result<decision::Allowed, Denial> {
    let ask = Ask {
        user: &ctx.caller.user.name,
        host: &ctx.config.host,
        run_as: &target.name,
        paths,
        args,
    };
    // Each path is read once however many grants pin it, so the grant that wins is
    // checked against the very bytes that run (a file rewritten between two reads
    // could otherwise match one grant's pin and run under another's).
    let mut pin_check = |want: &[u8; 32], path: &str| -> Result<(), String> {
        let index = match pinned.iter().position(|(p, _)| p == path) {
            Some(index) => index,
            None => {
                pinned.push((path.to_string(), exec::open_and_hash(path)));
                pinned.len() - 1
            }
        };
        match &pinned[index].1 {
            Ok(p) if &p.hash == want => Ok(()),
            Ok(_) => Err(format!("{path} does not match the grant's sha256 pin")),
            Err(why) => Err(why.clone()),
        }
    };
    decision::decide(
        &ask,
        grants,
        invalid,
        revoked,
        now,
        ctx.config.clock_skew,
        &mut pin_check,
    )
}

/// Spend the use (`admission::spend_use`): for counted grants, lock, re-read the
/// counter (another invocation may have spent the last use meanwhile), log, then durably
/// count the use. The lock is held until exec.
fn count_use_and_log(
    ctx: &Context,
    record: &mut Record,
    grant: &Grant,
) -> Result<Option<crate::store::UserLock>, Refused> {
    let spent = admission::spend_use(&ctx.store, ctx.caller.user.uid, grant, || {
        log_allowed(ctx, record)
    });
    match spent {
        Ok(spent) => Ok(spent.lock),
        Err(SpendError::NotLogged(refused)) => Err(refused),
        Err(SpendError::UsedUp(why)) => {
            let why = why.reason();
            Err(deny(
                ctx,
                record,
                why.clone(),
                format!("{why} (grant {})", grant.id()),
                Some(grant.id().to_string()),
            ))
        }
        Err(SpendError::Store(e)) => Err(refuse(
            ctx,
            record,
            Outcome::Error(e.to_string()),
            e.to_string(),
        )),
        Err(SpendError::NotRecorded(e)) => Err(refuse(
            ctx,
            record,
            Outcome::Error(e.to_string()),
            format!("cannot record the use: {e}"),
        )),
    }
}

pub(crate) fn log_allowed(ctx: &Context, record: &mut Record) -> Result<(), Refused> {
    record.outcome = Outcome::Allowed;
    match ctx.audit.send(record) {
        Ok(()) => Ok(()),
        Err(AuditError::Journal(e)) => Err(Refused {
            message: format!("cannot write the local journal ({e}); refusing to run the command unrecorded"),
        }),
        Err(AuditError::Syslog(e)) if ctx.audit.required() => Err(Refused {
            message: format!(
                "cannot write to syslog ({e}); refusing to run the command unlogged ([log] require = true)"
            ),
        }),
        Err(AuditError::Syslog(e)) => {
            crate::complain!("jitsudo: warning: could not log to syslog ({e}); running anyway ([log] require = false)");
            Ok(())
        }
    }
}

fn build_plan(
    ctx: &Context,
    program: Program,
    args: &[OsString],
    target: User,
    grant: &Grant,
) -> Result<ExecPlan, String> {
    let groups = system::group_list(&target)
        .map_err(|e| format!("cannot read groups of {}: {e}", target.name))?;
    let secure_path = ctx.config.secure_path_string();
    let env = env::build(
        std::env::vars_os(),
        &env::EnvInputs {
            keep: &ctx.config.env_keep,
            caller: &ctx.caller.user,
            target: &target,
            grant_id: grant.id(),
            secure_path: &secure_path,
        },
    );
    let mut argv = vec![OsString::from(program.path())];
    argv.extend(args.iter().cloned());
    let session = Session::for_target(target.uid, ctx.caller.user.uid);
    Ok(ExecPlan {
        program,
        argv,
        env,
        target,
        groups,
        umask: ctx.umask,
        limits: ctx.limits,
        session,
    })
}

/// The grant's terms for the supervisor: its window, whether it may exec, and how the
/// run's events are logged (the run's own record, with the event as its prefix).
fn bounds<'a>(
    ctx: &'a Context,
    grant: &'a Grant,
    record: &Record,
    recorder: Option<Recorder>,
    run: Run,
) -> Bounds<'a> {
    let record = record.clone();
    let mut stamp = ctx.store.revocations_stamp();
    let revoked = move |id: &str| {
        let now = ctx.store.revocations_stamp();
        if now == stamp {
            return false;
        }
        stamp = now;
        match ctx.store.revocations() {
            Ok(Some(list)) => list.ids.iter().any(|r| r == id),
            Ok(None) => false,
            // A list that cannot be read can no longer vouch for the grant: end the run.
            Err(_) => true,
        }
    };
    let (run_as, allow_exec, recording) = (
        grant.claims.run_as.clone(),
        grant.claims.exec,
        recorder.is_some(),
    );
    let successor =
        move |current: &str| successor(ctx, current, &run_as, &run, allow_exec, recording);
    let mut record = record;
    let log = move |event: RunEvent<'_>| {
        // After an extension took over, the run's lines name the grant it runs under.
        if let RunEvent::Extended { to, .. } = event {
            record.grant = Some(to.to_string());
        }
        let mut line = record.clone();
        match event {
            RunEvent::BlockedExec { path, program } => {
                line.outcome = Outcome::Event(format!("blocked exec of {path} by {program}"));
                line.command = Vec::new();
            }
            RunEvent::Ended(reason) => {
                line.outcome = Outcome::Event(format!("command ended: {}", reason.text()));
            }
            RunEvent::Extended { from, to, exp } => {
                line.outcome = Outcome::Event(format!(
                    "command continues under grant {to} until {} (extends grant {from})",
                    crate::grant::format_time(exp)
                ));
            }
            RunEvent::RecordingSealed(seal) => {
                line.outcome = Outcome::Event(format!(
                    "recording {} sealed: {} chunk(s), {} byte(s), sha256 {}",
                    seal.id, seal.chunks, seal.bytes, seal.hash
                ));
                ctx.audit.set_recording(Some(RecordingRef {
                    seal: Some(RecordingSeal {
                        chunks: seal.chunks,
                        sha256: seal.hash.clone(),
                    }),
                    ..RecordingRef::named(seal.id.as_str())
                }));
            }
            RunEvent::RecordingFailed { id, why } => {
                line.outcome = Outcome::Error(format!("recording {id} failed: {why}"));
            }
        }
        ctx.audit.send_best_effort(&line);
    };
    Bounds {
        exp: grant.exp,
        end_grace: ctx.config.end_grace,
        end_warning: ctx.config.end_warning,
        allow_exec: grant.claims.exec,
        grant: grant.id().to_string(),
        revoked: Box::new(revoked),
        successor: Box::new(successor),
        log: Box::new(log),
        recorder,
    }
}

/// The command as it was started, for finding a grant it may continue under.
struct Run {
    path: String,
    args: Vec<OsString>,
    pinned: bool,
}

/// The grant that replaces `current` for this run (`admission::successor`), read from
/// the caller's own cache only, checked against the revocation list now; a counted one
/// spends a use for the rest of the run. Any trouble reading what is needed is no
/// successor: the run ends as it would have.
fn successor(
    ctx: &Context,
    current: &str,
    run_as: &str,
    run: &Run,
    allow_exec: bool,
    recording: bool,
) -> Option<Successor> {
    let now = host::checked_now(&ctx.store, &ctx.config).ok()?;
    let revoked = RevocationList::for_use(&ctx.store, &ctx.config, now).ok()?;
    let cache = ctx.store.load_user(ctx.caller.user.uid).ok()?;
    let (grants, _) = host::verified_grants(&cache, &ctx.config);
    let terms = Terms::new(&ctx.config, &ctx.caller.user.name, None, &revoked, now);
    let running = admission::Running {
        grant: current,
        run_as,
        path: &run.path,
        args: &run.args,
        pinned: run.pinned,
        allow_exec,
        recording,
    };
    let g = &grants[admission::successor(&grants, &terms, &running)?].0;
    if g.claims.uses.is_some() {
        admission::spend_use(&ctx.store, ctx.caller.user.uid, g, || Ok::<(), ()>(())).ok()?;
    }
    Some(Successor {
        grant: g.id().to_string(),
        exp: g.exp,
    })
}

/// Create the run's recording under /var/log/jitsudo-io (root-only, 0700), with what
/// sudo's `log.json` says of a session.
fn start_recording(
    ctx: &Context,
    target: &User,
    path: &str,
    args: &[OsString],
    grant: &Grant,
) -> Result<Recorder, String> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (lines, columns) = system::terminal::open_controlling_terminal()
        .ok()
        .flatten()
        .and_then(|tty| system::terminal::window_size(std::os::fd::AsFd::as_fd(&tty)).ok())
        .map(|size| size.rows_cols())
        // A terminal that never had its size set says 0x0; sudoreplay refuses that.
        .filter(|&(rows, cols)| rows > 0 && cols > 0)
        .unwrap_or((24, 80));
    let mut argv = vec![path.rsplit('/').next().unwrap_or(path).to_string()];
    argv.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
    let info = SessionInfo {
        started: (started.as_secs() as i64, started.subsec_nanos()),
        user: ctx.caller.user.name.clone(),
        host: ctx.config.host.clone(),
        cwd: ctx.caller.cwd.to_string_lossy().into_owned(),
        run_user: target.name.clone(),
        run_uid: target.uid.get(),
        run_group: String::new(),
        run_gid: target.gid.get(),
        tty: match ctx.caller.tty.as_str() {
            "unknown" => "unknown".to_string(),
            tty => format!("/dev/{tty}"),
        },
        lines,
        columns,
        command: path.to_string(),
        argv,
        grant: grant.id().to_string(),
    };
    Recorder::create(
        std::path::Path::new(IO_LOG_DIR),
        &info,
        ctx.config.record.record_input,
    )
    .map(|recorder| recorder.durable(ctx.config.journal.durable))
    .map_err(|e| format!("cannot start the session recording this grant requires: {e}"))
}

// ---- refusing -------------------------------------------------------------------------

pub(crate) fn deny(
    ctx: &Context,
    record: &mut Record,
    log_text: String,
    message: String,
    grant: Option<String>,
) -> Refused {
    record.grant = grant;
    refuse(ctx, record, Outcome::Denied(log_text), message)
}

pub(crate) fn refuse(
    ctx: &Context,
    record: &mut Record,
    outcome: Outcome,
    message: String,
) -> Refused {
    record.outcome = outcome;
    ctx.audit.send_best_effort(record);
    Refused { message }
}

/// The stderr line for a denial: what failed, and what to do next.
fn denial_message(
    ctx: &Context,
    denial: &Denial,
    target: &User,
    path: &str,
    args: &[OsString],
) -> String {
    let shown: Vec<String> = std::iter::once(path.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    let command_text = shown.join(" ");
    let quoted: Vec<String> = shown.iter().map(|w| decision::shell_quote(w)).collect();
    let user_flag = if target.name == "root" {
        String::new()
    } else {
        format!("-u {} ", target.name)
    };
    let ask_hint = format!(
        "ask with: jitsudo --request {user_flag}--reason \"…\" -- {}",
        quoted.join(" ")
    );
    match denial {
        Denial::NoGrant { invalid } => {
            let mut msg = format!(
                "no grant allows '{command_text}' as {} on {}; {ask_hint}",
                target.name, ctx.config.host
            );
            if let Some(first) = invalid.first() {
                msg.push_str(&format!(
                    " ({} cached grant(s) ignored: {first})",
                    invalid.len()
                ));
            }
            msg
        }
        Denial::OtherRunAs { grant, run_as } => format!(
            "grant {grant} allows '{command_text}' only as {run_as}; run: jitsudo -u {run_as} -- {}",
            quoted.join(" ")
        ),
        Denial::Unusable { grant, why } => format!("{why} (grant {grant}); {ask_hint}"),
    }
}
