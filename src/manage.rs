//! The cache-managing modes of the setuid binary: --import, --list, --drop, -k.
//! Each acts only on the caller's own cache file.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;

use crate::admission::{self, RevocationList, Terms, Window};
use crate::context::{Context, Refused};
use crate::grant::{self, human_duration, Grant, Kind};
use crate::host;
use crate::log::Outcome;
use crate::secure_file::read_limited;
use crate::system;

/// Grant tokens are small; anything larger is refused before it is parsed.
const MAX_IMPORT_BYTES: u64 = 64 * 1024;

/// Read the token as the caller, not as root: `--import /etc/shadow` must fail the way
/// it would for the caller, and must never echo what root could read.
fn read_token(ctx: &Context, source: &OsStr) -> Result<String, String> {
    let bytes = if source == "-" {
        read_limited(io::stdin().lock(), MAX_IMPORT_BYTES)
    } else {
        let user = &ctx.caller.user;
        system::as_user_temporarily(user.uid, user.gid, || {
            std::fs::File::open(source).and_then(|f| read_limited(f, MAX_IMPORT_BYTES))
        })
    };
    let bytes = bytes.map_err(|e| match e.kind() {
        io::ErrorKind::FileTooLarge => format!(
            "token input is larger than {MAX_IMPORT_BYTES} bytes; a grant token is a single line"
        ),
        _ => format!("cannot read {}: {e}", source.to_string_lossy()),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| "token is not text (UTF-8)".to_string())?;
    Ok(text.trim().to_string())
}

/// Admit the token (`admission::admit`: signature, this host, this user, not expired,
/// not revoked) and cache it. A revocation list that cannot be read refuses the import:
/// it cannot say the grant is not revoked.
pub fn import(ctx: &Context, source: &OsStr) -> Result<(), Refused> {
    let token = read_token(ctx, source).map_err(|e| ctx.refuse("import", e))?;
    let now = host::checked_now(&ctx.store, &ctx.config).map_err(|e| ctx.refuse("import", e))?;
    let revoked = RevocationList::load(&ctx.store).map_err(|e| ctx.refuse("import refused", e))?;
    let user = &ctx.caller.user;
    let terms = Terms::new(&ctx.config, &user.name, None, &revoked, now);
    let grant = admission::admit(&ctx.config, &token, &terms)
        .map_err(|e| ctx.refuse("import refused", e.to_string()))?;

    let cached = host::cache_grant(&ctx.store, &ctx.config, user.uid, &grant, now)
        .map_err(|e| ctx.refuse("import", e.to_string()))?;
    let event = if cached.added {
        "imported grant"
    } else {
        "grant already cached"
    };
    ctx.audit.send_best_effort(&ctx.record(
        Outcome::Event(event.into()),
        Some(grant.id().into()),
        vec![],
    ));
    crate::say!("{event} {}", describe(&grant, cached.used, now));
    Ok(())
}

/// `3f6c0a1b2c3d: /usr/bin/id as root, valid for 59m (until 2026-11-23T17:39:22Z), 1 use left`
fn describe(g: &Grant, used: u32, now: i64) -> String {
    let what = match g.claims.kind {
        Kind::Login => "login".to_string(),
        Kind::Edit => format!("edit {}", g.claims.commands.join(", ")),
        Kind::Exec => g
            .commands
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut text = format!("{}: {what} as {}", g.id(), g.claims.run_as);
    if g.nbf > now {
        text.push_str(&format!(
            ", starts in {}",
            human_duration((g.nbf - now) as u64)
        ));
    }
    text.push_str(&format!(
        ", valid for {} (until {})",
        human_duration((g.exp - now).max(0) as u64),
        grant::format_time(g.exp)
    ));
    if let Some(n) = g.claims.uses {
        text.push_str(&format!(", {} of {n} uses left", n.saturating_sub(used)));
    }
    if g.claims.exec {
        text.push_str(", may run other programs");
    }
    text
}

pub fn list(ctx: &Context) -> Result<(), Refused> {
    let now = host::checked_now(&ctx.store, &ctx.config).map_err(|e| ctx.refuse("list", e))?;
    let revoked =
        RevocationList::for_use(&ctx.store, &ctx.config, now).map_err(|e| ctx.refuse("list", e))?;
    let cache = ctx
        .store
        .load_user(ctx.caller.user.uid)
        .map_err(|e| ctx.refuse("list", e.to_string()))?;
    let (grants, invalid) = host::verified_grants(&cache, &ctx.config);
    let mut rows = Vec::new();
    let mut unusable = invalid.len();
    // Every kind, and grants that start later: the list shows what is cached for use.
    let terms = Terms::new(&ctx.config, &ctx.caller.user.name, None, &revoked, now);
    for (g, used) in &grants {
        if admission::check_use(g, *used, &terms, Window::NotExpired).is_ok() {
            rows.push((g, *used));
        } else {
            unusable += 1;
        }
    }
    rows.sort_by_key(|(g, _)| g.exp);
    ctx.audit
        .send_best_effort(&ctx.record(Outcome::Event("list".into()), None, vec![]));

    if rows.is_empty() {
        crate::say!(
            "{} has no usable grants on {}.",
            ctx.caller.user.name,
            ctx.config.host
        );
    } else {
        crate::say!(
            "{:<12}  {:<8}  {:<11}  {:<9}  {:<4}  COMMANDS",
            "GRANT",
            "RUN AS",
            "EXPIRES IN",
            "USES LEFT",
            "EXEC"
        );
        for (g, used) in rows {
            let expires = if g.nbf > now {
                format!("starts {}", human_duration((g.nbf - now) as u64))
            } else {
                human_duration((g.exp - now).max(0) as u64)
            };
            let uses = g.claims.uses.map_or("unlimited".to_string(), |n| {
                n.saturating_sub(used).to_string()
            });
            let commands: Vec<String> = match g.claims.kind {
                Kind::Login => vec!["(login)".to_string()],
                Kind::Edit => g
                    .claims
                    .commands
                    .iter()
                    .map(|file| format!("(edit) {file}"))
                    .collect(),
                Kind::Exec => g.commands.iter().map(|c| c.to_string()).collect(),
            };
            // Whether the command may execute other programs (the `exec` claim).
            let exec = if g.claims.exec { "yes" } else { "no" };
            let id: String = g.id().chars().take(12).collect();
            for (i, command) in commands.iter().enumerate() {
                if i == 0 {
                    crate::say!(
                        "{id:<12}  {:<8}  {expires:<11}  {uses:<9}  {exec:<4}  {command}",
                        g.claims.run_as
                    );
                } else {
                    crate::say!(
                        "{:<12}  {:<8}  {:<11}  {:<9}  {:<4}  {command}",
                        "",
                        "",
                        "",
                        "",
                        ""
                    );
                }
            }
            // Both are checked at verification: printable ASCII, no spaces.
            let mut notes = Vec::new();
            if let Some(t) = &g.claims.ticket {
                notes.push(format!("ticket {t}"));
            }
            if let Some(old) = &g.claims.extends {
                notes.push(format!(
                    "extends grant {old} (extended {})",
                    crate::grant::format_time(g.iat)
                ));
            }
            if !notes.is_empty() {
                crate::say!("{:<12}  {}", "", notes.join("; "));
            }
        }
    }
    if unusable > 0 {
        crate::say!("({unusable} cached grant(s) expired, used up, revoked or invalid; jitsudo --drop clears them)");
    }
    Ok(())
}

pub fn drop_grants(ctx: &Context, prefix: Option<&str>) -> Result<(), Refused> {
    if let Some(p) = prefix {
        if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ctx.refuse("drop", format!("'{p}' is not a grant id")));
        }
    }
    let uid = ctx.caller.user.uid;
    let store_err = |e: crate::store::StoreError| ctx.refuse("drop", e.to_string());
    let lock = ctx.store.lock_user(uid).map_err(store_err)?;
    let mut cache = ctx.store.load_user(uid).map_err(store_err)?;
    if let Some(p) = prefix {
        let matching: Vec<&str> = cache
            .tokens()
            .map(|(e, _)| e.jti.as_str())
            .filter(|id| id.starts_with(p))
            .collect();
        match matching.len() {
            0 => {
                return Err(ctx.refuse(
                    "drop",
                    format!("no cached grant has an id starting with '{p}'; see jitsudo -l"),
                ))
            }
            1 => {}
            n => {
                return Err(ctx.refuse(
                    "drop",
                    format!("'{p}' matches {n} grants; give more of the id"),
                ))
            }
        }
    }
    let dropped = cache.drop_tokens(prefix);
    cache.prune(grant::now() - ctx.config.clock_skew.as_secs() as i64);
    ctx.store.save_user(uid, &cache, &lock).map_err(store_err)?;
    for id in &dropped {
        ctx.audit.send_best_effort(&ctx.record(
            Outcome::Event("dropped grant".into()),
            Some(id.clone()),
            vec![],
        ));
    }
    crate::say!("dropped {} grant(s)", dropped.len());
    Ok(())
}
