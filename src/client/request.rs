//! `jitsudo --request` and `jitsudo --sync`: the setuid binary's two conversations with
//! the approval service.
//!
//! The privileged process decides what to say (user and uid from the kernel, the
//! resolved program, the SSH source from utmp for the controlling terminal), signs it
//! with the host key, and drops the key before forking. The child drops to the invoking
//! user (for `--sync`, to `nobody`) and executes the network helper jitsudo-net, which
//! does all the network I/O and hands back what the service said over a pipe
//! (`jitsudo_core::helper`). The parent verifies the revocation list against the pinned
//! keys, and admits every grant through the same `admission::admit` as `--import`
//! (signature, host, user, kind, window, revocation) before anything is cached, so a
//! hostile service or network can cause no more than a refusal.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use super::net_helper::{in_child, ChildMsg, Task};

use super::hostkey;
use super::wire::{self, NewRequest, SyncRequest, SyncResponse};
use crate::admission::{self, Refusal, RevocationList, Terms};
use crate::cli::Cli;
use crate::context::{Context, Refused};
use crate::exec::resolve;
use crate::grant::{self, human_duration, Grant, Kind};
use crate::host;
use crate::log::Outcome;
use crate::pipeline;
use crate::store::Revocations;
use crate::system::{self, ChildEnd};

/// The service's URLs, in the order the helper tries them.
fn service_urls(ctx: &Context) -> Result<Vec<String>, String> {
    if ctx.config.services.is_empty() {
        return Err("no approval service is configured: set service = \"https://…\" in /etc/jitsudo/jitsudo.toml".to_string());
    }
    Ok(ctx.config.services.clone())
}

/// Group names of the caller, from the kernel's group list and /etc/group.
fn group_names(user: &system::User) -> Vec<String> {
    let gids: Vec<u32> = system::group_list(user)
        .unwrap_or_default()
        .iter()
        .map(|g| g.get())
        .collect();
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (name, _, gid) = (f.next()?, f.next()?, f.next()?.parse::<u32>().ok()?);
            (gids.contains(&gid) && grant::valid_user_name(name)).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The SSH client address of the session on our controlling terminal, from the utmp
/// record sshd wrote (root-owned), never from the caller's environment.
pub fn ssh_source(tty: &str) -> Option<IpAddr> {
    const RECORD: usize = 384;
    const USER_PROCESS: i16 = 7;
    if tty == "unknown" || tty.is_empty() {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open("/var/run/utmp")
        .ok()?
        .take(4 << 20)
        .read_to_end(&mut bytes)
        .ok()?;
    for rec in bytes.chunks_exact(RECORD) {
        let kind = i16::from_ne_bytes([rec[0], rec[1]]);
        let line = &rec[8..40];
        let line = &line[..line.iter().position(|b| *b == 0).unwrap_or(line.len())];
        if kind != USER_PROCESS || line != tty.as_bytes() {
            continue;
        }
        let addr = &rec[348..364];
        let words: Vec<[u8; 4]> = addr
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        if words[1..] == [[0; 4]; 3] {
            if words[0] == [0; 4] {
                return None;
            }
            return Some(IpAddr::from(words[0]));
        }
        let mut v6 = [0u8; 16];
        v6.copy_from_slice(addr);
        return Some(IpAddr::from(v6));
    }
    None
}

pub fn request(ctx: &Context, cli: &Cli) -> Result<(), Refused> {
    service_urls(ctx).map_err(|e| ctx.refuse("request", e))?;
    let target =
        pipeline::target_user(cli.user.as_deref()).map_err(|e| ctx.refuse("request", e))?;
    let (kind, argv) = if !cli.edit.is_empty() {
        // The files of an edit grant, absolute and checked as `jitsudo -e` takes them.
        let files = cli
            .edit
            .iter()
            .map(|f| crate::edit::absolute(&ctx.caller.cwd, f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ctx.refuse("request", e))?;
        (Kind::Edit, files)
    } else {
        (Kind::Exec, command_argv(ctx, &cli.command)?)
    };
    let body = new_request(ctx, cli, kind, &target.name, &argv, None)?;
    ask(ctx, cli, body, None)
}

/// `jitsudo --extend GRANT`: ask again for exactly the command of one of the caller's
/// usable grants, linked to it. Approved, the new grant names the old one (`extends`),
/// the service revokes the old one, and a command running under it continues under the
/// new grant (the supervisor finds it in the caller's cache).
pub fn extend(ctx: &Context, cli: &Cli, prefix: &str) -> Result<(), Refused> {
    let refuse = |why: String| ctx.refuse("extend", why);
    if prefix.is_empty()
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(refuse(format!("'{prefix}' is not a grant id")));
    }
    let now = host::checked_now(&ctx.store, &ctx.config).map_err(refuse)?;
    let revoked = RevocationList::load(&ctx.store).map_err(refuse)?;
    let cache = ctx
        .store
        .load_user(ctx.caller.user.uid)
        .map_err(|e| refuse(e.to_string()))?;
    let (grants, _) = host::verified_grants(&cache, &ctx.config);
    let terms = Terms::new(&ctx.config, &ctx.caller.user.name, None, &revoked, now);
    let matching: Vec<&Grant> = grants
        .iter()
        .map(|(g, _)| g)
        .filter(|g| g.id().starts_with(prefix))
        .collect();
    let g = match matching[..] {
        [g] => g,
        [] => {
            return Err(refuse(format!(
                "you have no cached grant {prefix} on {}; see jitsudo -l",
                ctx.config.host
            )))
        }
        _ => {
            return Err(refuse(format!(
                "'{prefix}' names {} of your grants; give more of the id",
                matching.len()
            )))
        }
    };
    admission::check(g, &terms, admission::Window::NotExpired)
        .map_err(|e| refuse(format!("grant {} cannot be extended: {e}", g.id())))?;
    if g.claims.request.is_none() {
        return Err(refuse(format!(
            "grant {} was not issued by the approval service (a minted grant), so the service cannot extend it; ask with jitsudo --request",
            g.id()
        )));
    }
    let argv = match g.claims.kind {
        Kind::Edit => g.claims.commands.clone(),
        Kind::Exec => match &g.commands[..] {
            [spec] if spec.pin.is_none() => match &spec.args {
                crate::matcher::ArgRule::None => vec![spec.path.clone()],
                crate::matcher::ArgRule::Exact(args) => std::iter::once(spec.path.clone())
                    .chain(args.iter().cloned())
                    .collect(),
                _ => {
                    return Err(refuse(format!(
                        "grant {} allows more than one exact command; ask with jitsudo --request",
                        g.id()
                    )))
                }
            },
            _ => {
                return Err(refuse(format!(
                    "grant {} is not one exact command; ask with jitsudo --request",
                    g.id()
                )))
            }
        },
        Kind::Login => {
            return Err(refuse(format!(
                "grant {} is a login grant; those are not extended",
                g.id()
            )))
        }
    };
    let body = new_request(
        ctx,
        cli,
        g.claims.kind,
        &g.claims.run_as,
        &argv,
        Some(g.id()),
    )?;
    ask(ctx, cli, body, Some(g.id().to_string()))
}

fn new_request(
    ctx: &Context,
    cli: &Cli,
    kind: Kind,
    run_as: &str,
    argv: &[String],
    extends: Option<&str>,
) -> Result<NewRequest, Refused> {
    let duration = match &cli.duration {
        None => None,
        Some(d) => Some(
            crate::config::parse_duration(d)
                .map_err(|e| ctx.refuse("request", format!("--for: {e}")))?
                .as_secs(),
        ),
    };
    if let Some(t) = &cli.ticket {
        grant::valid_ticket(t).map_err(|e| ctx.refuse("request", format!("--ticket: {e}")))?;
    }
    let user = &ctx.caller.user;
    Ok(NewRequest {
        kind,
        user: user.name.clone(),
        uid: user.uid.get(),
        groups: group_names(user),
        run_as: run_as.to_string(),
        argv: argv.to_vec(),
        reason: cli.reason.clone().unwrap_or_default(),
        duration,
        once: cli.once,
        source: ssh_source(&ctx.caller.tty).map(|ip| ip.to_string()),
        ticket: cli.ticket.clone(),
        extends: extends.map(str::to_string),
    })
}

/// Sign the request, let the network helper send it and wait, and take the answer: a
/// grant is admitted and cached (for an extension: only one that names the grant it
/// replaces).
fn ask(ctx: &Context, cli: &Cli, body: NewRequest, extends: Option<String>) -> Result<(), Refused> {
    let urls = service_urls(ctx).map_err(|e| ctx.refuse("request", e))?;
    let (kind, argv) = (body.kind, body.argv.clone());
    let user = &ctx.caller.user;
    let envelope = {
        let key = hostkey::load(Path::new(hostkey::HOST_KEY_PATH))
            .map_err(|e| ctx.refuse("request", e))?;
        wire::sign_envelope(
            &key,
            &ctx.config.host,
            wire::PATH_REQUESTS,
            grant::now(),
            &body,
        )
        .map_err(|e| ctx.refuse("request", e))?
        // The key is wiped here, before the fork.
    };
    ctx.audit.send_best_effort(
        &ctx.record(
            Outcome::Event("requested grant".into()),
            None,
            (kind == Kind::Edit)
                .then(|| OsString::from("sudoedit"))
                .into_iter()
                .chain(argv.iter().map(OsString::from))
                .collect(),
        ),
    );

    let no_wait = cli.no_wait;
    let _interrupts = system::ignore_interrupts();
    let task = Task::Request {
        services: urls,
        envelope,
        no_wait,
    };
    let (msgs, end) = in_child(user.uid, user.gid, &task).map_err(|e| ctx.refuse("request", e))?;
    drop(_interrupts);

    let id = msgs.iter().find_map(|m| match m {
        ChildMsg::Created { id } => Some(id.clone()),
        _ => None,
    });
    for m in msgs {
        match m {
            ChildMsg::Grant { id, token } => {
                let g = accept_grant(ctx, &token, kind, &argv, &id, extends.as_deref())?;
                if let Some(old) = &extends {
                    println!(
                        "grant {} cached{}; it replaces grant {old}, and a command running under that grant continues under this one",
                        g.id(),
                        describe_uses(&g)
                    );
                    return Ok(());
                }
                if cli.run && kind == Kind::Edit {
                    return crate::edit::edit(ctx, &cli.edit);
                }
                if cli.run {
                    return pipeline::run_command(ctx, cli.user.as_deref(), &cli.command)
                        .map(|never| match never {});
                }
                let shown = match kind {
                    Kind::Edit => format!("-e {}", argv.join(" ")),
                    _ => cli
                        .command
                        .iter()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                let user_flag = cli
                    .user
                    .as_deref()
                    .map(|u| format!("-u {u} "))
                    .unwrap_or_default();
                println!(
                    "grant {} cached{}; run it with: jitsudo {user_flag}{shown}",
                    g.id(),
                    describe_uses(&g)
                );
                return Ok(());
            }
            ChildMsg::Denied { id, message } => {
                return Err(ctx.refuse("request denied", format!("request {id} denied: {message}")))
            }
            ChildMsg::Pending { id } => {
                println!("request {id} is pending; once approved, jitsudo --sync (root timer) caches the grant, or ask again");
                return Ok(());
            }
            ChildMsg::Failed { message } => return Err(ctx.refuse("request", message)),
            ChildMsg::Created { .. }
            | ChildMsg::Sync(_)
            | ChildMsg::JournalStored { .. }
            | ChildMsg::Recording { .. } => {}
        }
    }
    match (end, id) {
        (ChildEnd::Signaled(sig), Some(id)) if sig == libc::SIGINT || sig == libc::SIGQUIT => {
            eprintln!();
            println!("request {id} left pending; once approved, jitsudo --sync (root timer) caches the grant");
            Ok(())
        }
        (_, id) => Err(ctx.refuse(
            "request",
            format!(
                "the network helper ended without an answer{}",
                id.map(|i| format!(" (request {i})")).unwrap_or_default()
            ),
        )),
    }
}

/// The argv of a command request: the program resolved in secure_path, then the
/// arguments, all UTF-8.
fn command_argv(ctx: &Context, command: &[OsString]) -> Result<Vec<String>, Refused> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| ctx.refuse("request", "no command given".into()))?;
    let paths = resolve::candidates(program, &ctx.config.secure_path)
        .map_err(|e| ctx.refuse("request", e))?;
    let mut argv = vec![paths[0].clone()];
    for a in args {
        argv.push(
            a.to_str()
                .ok_or_else(|| {
                    ctx.refuse(
                        "request",
                        "arguments must be valid UTF-8 to be requested".into(),
                    )
                })?
                .to_string(),
        );
    }
    Ok(argv)
}

fn describe_uses(g: &Grant) -> String {
    let valid = human_duration((g.exp - grant::now()).max(0) as u64);
    match g.claims.uses {
        Some(1) => format!(" (one use, valid for {valid})"),
        Some(n) => format!(" ({n} uses, valid for {valid})"),
        None => format!(" (valid for {valid})"),
    }
}

/// Admit a grant from the service as `--import` does (`admission::admit`, with the kind
/// asked for and the host's revocation list), check it is the one asked for, and cache
/// it for the caller.
fn accept_grant(
    ctx: &Context,
    token: &str,
    kind: Kind,
    argv: &[String],
    request: &str,
    extends: Option<&str>,
) -> Result<Grant, Refused> {
    let now = host::checked_now(&ctx.store, &ctx.config).map_err(|e| ctx.refuse("request", e))?;
    let revoked = RevocationList::load(&ctx.store).map_err(|e| {
        ctx.refuse(
            "request",
            format!("the service's grant cannot be checked: {e}"),
        )
    })?;
    let terms = Terms::new(
        &ctx.config,
        &ctx.caller.user.name,
        Some(kind),
        &revoked,
        now,
    );
    let g = admission::admit(&ctx.config, token, &terms)
        .map_err(|e| ctx.refuse("request", format!("the service's grant was refused: {e}")))?;
    // admit has checked the kind; what is left is whether this grant covers what was asked.
    let covered = match kind {
        Kind::Edit => argv
            .iter()
            .all(|file| g.commands.iter().any(|c| c.path == *file)),
        _ => g.commands.iter().any(|c| c.allows(&argv[0], &argv[1..])),
    };
    if !covered {
        return Err(ctx.refuse(
            "request",
            format!(
                "the service's grant {} does not cover the requested command",
                g.id()
            ),
        ));
    }
    if g.claims.request.as_deref() != Some(request) {
        return Err(ctx.refuse(
            "request",
            format!("the service's grant {} belongs to another request", g.id()),
        ));
    }
    if g.claims.extends.as_deref() != extends {
        return Err(ctx.refuse(
            "request",
            format!(
                "the service's grant {} does not replace the grant asked to be extended",
                g.id()
            ),
        ));
    }
    host::cache_grant(&ctx.store, &ctx.config, ctx.caller.user.uid, &g, now)
        .map_err(|e| ctx.refuse("request", e.to_string()))?;
    ctx.audit.send_best_effort(&ctx.record(
        Outcome::Event(format!("cached grant from request {request}")),
        Some(g.id().into()),
        vec![],
    ));
    Ok(g)
}

// ---- sync -------------------------------------------------------------------------------

pub fn sync(ctx: &Context) -> Result<(), Refused> {
    if ctx.caller.user.uid.get() != 0 {
        return Err(ctx.refuse(
            "sync",
            "--sync writes every user's grant cache and must be run by root (a timer does it)"
                .into(),
        ));
    }
    let urls = service_urls(ctx).map_err(|e| ctx.refuse("sync", e))?;
    let envelope = {
        let key =
            hostkey::load(Path::new(hostkey::HOST_KEY_PATH)).map_err(|e| ctx.refuse("sync", e))?;
        wire::sign_envelope(
            &key,
            &ctx.config.host,
            wire::PATH_SYNC,
            grant::now(),
            // This host's own revocation list: its size does not grow with the fleet.
            &SyncRequest {
                host_revocations: true,
            },
        )
        .map_err(|e| ctx.refuse("sync", e))?
    };
    let nobody = system::user_by_name("nobody")
        .ok()
        .flatten()
        .ok_or_else(|| {
            ctx.refuse(
                "sync",
                "no user 'nobody' to run the network helper as".into(),
            )
        })?;
    let task = Task::Sync {
        services: urls.clone(),
        envelope,
    };
    let (msgs, _end) =
        in_child(nobody.uid, nobody.gid, &task).map_err(|e| ctx.refuse("sync", e))?;
    let response = msgs
        .into_iter()
        .find_map(|m| match m {
            ChildMsg::Sync(r) => Some(Ok(*r)),
            ChildMsg::Failed { message } => Some(Err(message)),
            _ => None,
        })
        .unwrap_or_else(|| Err("the network helper ended without an answer".into()))
        .map_err(|e| ctx.refuse("sync", e))?;
    apply_sync(ctx, response)?;
    // Before the journal upload, so that the records naming cut recordings go with it.
    let cut_failures = super::recording_upload::mark_cut(ctx).map_err(|e| ctx.refuse("sync", e))?;
    match super::journal_upload::upload(ctx, &urls) {
        Ok((0, _)) => {}
        Ok((n, through)) => println!(
            "uploaded {n} journal record(s); the service has them through record {through}"
        ),
        Err(e) => return Err(ctx.refuse("sync", e)),
    }
    super::recording_upload::report(
        ctx,
        super::recording_upload::upload(ctx, &urls).map(|s| s.after(cut_failures)),
    )?;
    Ok(())
}

fn apply_sync(ctx: &Context, response: SyncResponse) -> Result<(), Refused> {
    let now = host::checked_now(&ctx.store, &ctx.config).map_err(|e| ctx.refuse("sync", e))?;
    let list = wire::verify_host_revocations(
        &response.revocations,
        &ctx.config.trusted_keys,
        &ctx.config.host,
    )
    .map_err(|e| ctx.refuse("sync", e))?;
    if list.issued_at > now + ctx.config.clock_skew.as_secs() as i64 {
        return Err(ctx.refuse(
            "sync",
            format!(
                "the revocation list is dated in the future ({}); check the clocks",
                grant::format_time(list.issued_at)
            ),
        ));
    }
    // A list on disk that cannot be read is what --sync repairs: the verified list
    // replaces it, and nothing else here reads it. Said, so that it is not silent.
    let previous = match ctx.store.revocations() {
        Ok(previous) => previous,
        Err(e) => {
            eprintln!("jitsudo: replacing the revocation list on disk: {e}");
            None
        }
    };
    if let Some(prev) = &previous {
        if prev.issued_at > list.issued_at {
            return Err(ctx.refuse("sync",
                format!("the service sent a revocation list older than the one on disk ({} < {}); refusing to go back", list.issued_at, prev.issued_at),
            ));
        }
    }
    // The service's list is complete for every grant it issued to this host that has not
    // expired, and a grant for another host is never admitted here.
    let stored = Revocations {
        issued_at: list.issued_at,
        ids: list.ids.clone(),
    };
    ctx.store
        .save_revocations(&stored)
        .map_err(|e| ctx.refuse("sync", e.to_string()))?;
    let revoked = RevocationList::from_verified(&stored);

    let mut cached = 0;
    let mut skipped = Vec::new();
    for sg in &response.grants {
        // Every kind: the service sends this host's exec and login grants alike.
        let terms = Terms::new(&ctx.config, &sg.user, None, &revoked, now);
        let g = match admission::admit(&ctx.config, &sg.token, &terms) {
            Ok(g) => g,
            Err(Refusal::Revoked { grant }) => {
                skipped.push(format!("{grant}: revoked"));
                continue;
            }
            Err(e) => {
                skipped.push(e.to_string());
                continue;
            }
        };
        let Some(user) = system::user_by_name(&g.claims.sub).ok().flatten() else {
            skipped.push(format!("{}: no user {} on this host", g.id(), g.claims.sub));
            continue;
        };
        match host::cache_grant(&ctx.store, &ctx.config, user.uid, &g, now) {
            Ok(c) if c.added => {
                cached += 1;
                ctx.audit.send_best_effort(&ctx.record(
                    Outcome::Event(format!("synced grant for {}", g.claims.sub)),
                    Some(g.id().into()),
                    vec![],
                ));
            }
            Ok(_) => {}
            Err(e) => skipped.push(format!("{}: {e}", g.id())),
        }
    }
    ctx.audit.send_best_effort(&ctx.record(
        Outcome::Event(format!(
            "sync: {cached} new grant(s), {} revoked id(s)",
            stored.ids.len()
        )),
        None,
        vec![],
    ));
    println!(
        "synced: {cached} new grant(s) of {} for this host; revocation list of {} id(s) issued {}",
        response.grants.len(),
        stored.ids.len(),
        grant::format_time(list.issued_at)
    );
    for s in skipped {
        eprintln!("jitsudo: skipped a grant: {s}");
    }
    Ok(())
}
