//! `jitsudoctl`: key generation and offline grant minting (the break-glass path), and
//! checking a token against a config. Runs unprivileged; nothing here is setuid.
#![forbid(unsafe_code)]

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use crate::client::{admin, connect};
use crate::config;
use crate::grant::{self, keys::SecretKey, Claims, Kind};
use crate::matcher::CommandSpec;
use crate::secure_file::read_limited;

#[derive(Parser, Debug)]
#[command(
    name = "jitsudoctl",
    version,
    about = "Administer jitsudo: signing keys and offline grants",
    long_about = "Administer jitsudo. `keygen` creates a signing key pair and prints the \
                  [[trusted_key]] block for /etc/jitsudo/jitsudo.toml; `mint` signs a grant \
                  offline (break-glass, or where no approval service runs); `verify` checks a \
                  token against a host config.",
    disable_help_subcommand = true
)]
pub struct CtlCli {
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Create a signing key: DIR/ID.key (secret, 0600) and DIR/ID.pub; print the [[trusted_key]] block
    Keygen {
        /// Key id, as hosts will name it in [[trusted_key]] (letters, digits, '-', '_', '.')
        #[arg(long, value_name = "ID")]
        id: String,
        /// Directory for the key files (created 0700 if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Sign a grant offline and print the token on stdout
    Mint(MintArgs),
    /// Verify a token against a host config's trusted keys and print its claims
    Verify {
        /// Host config whose [[trusted_key]] entries to trust
        #[arg(long, value_name = "FILE", default_value = config::CONFIG_PATH)]
        config: PathBuf,
        /// The token, or - to read it from stdin
        #[arg(value_name = "TOKEN|-")]
        token: String,
    },
    /// The host's local hash-chained journal (/var/lib/jitsudo/journal)
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Approval-service policy files
    #[command(subcommand)]
    Policy(admin::PolicyCommand),
    /// Register hosts with the approval service (admin token)
    #[command(subcommand)]
    Host(admin::HostCommand),
    /// Create approvers on the approval service (admin token)
    #[command(subcommand)]
    Approver(admin::ApproverCommand),
    /// List requests on the approval service
    Requests {
        /// Only requests still waiting for approval
        #[arg(long)]
        pending: bool,
        #[command(flatten)]
        service: connect::ServiceArgs,
    },
    /// Approve a pending request
    Approve {
        #[arg(value_name = "ID")]
        id: String,
        /// Note recorded with the approval
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
        #[command(flatten)]
        service: connect::ServiceArgs,
    },
    /// Deny a pending request
    Deny {
        #[arg(value_name = "ID")]
        id: String,
        /// Why (recorded and shown to the requester)
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        service: connect::ServiceArgs,
    },
    /// Revoke an issued grant; hosts deny it after their next `jitsudo --sync`
    Revoke {
        #[arg(value_name = "GRANT")]
        grant: String,
        /// Why (recorded)
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        service: connect::ServiceArgs,
    },
    /// Sign in through the approval service's identity provider (device authorization: open
    /// the URL it prints, anywhere) and keep the short-lived token in ~/.config/jitsudo/token (0600)
    Login {
        #[command(flatten)]
        service: connect::ServiceArgs,
    },
    /// Remove the token jitsudoctl login kept
    Logout,
    /// Search the approval service's audit trail, or verify its hash chain (`audit verify`)
    Audit(crate::client::audit::AuditArgs),
    /// List the session recordings stored on the approval service (approver token)
    Recordings(crate::client::recordings::RecordingsArgs),
    /// Play a session recording back in the terminal (after checking its hash chain): one
    /// on this host, or with --host one fetched from the approval service
    Replay(crate::recording::ReplayArgs),
}

#[derive(Subcommand, Debug)]
pub enum JournalCommand {
    /// Check the whole chain, then every session recording it names; names the first record
    /// altered, removed or reordered, and each recording altered, cut short or missing
    Verify {
        /// State directory holding `journal` and `journal.anchor`
        #[arg(long, value_name = "DIR", default_value = config::STATE_DIR)]
        dir: PathBuf,
        /// Directory holding the session recordings
        #[arg(long, value_name = "DIR", default_value = jitsudo_core::iolog::IO_LOG_DIR)]
        recordings: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct MintArgs {
    /// Secret key file written by `jitsudoctl keygen` (must not be readable by group or others)
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// User the grant is for
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Host id the grant is valid on (the host's `host =` in jitsudo.toml)
    #[arg(long, value_name = "HOST")]
    pub host: String,
    /// Command spec the grant allows; repeat for several (e.g. "/usr/bin/journalctl *"). With --kind edit: an absolute file path jitsudo -e may edit (e.g. /etc/nginx/nginx.conf)
    #[arg(long = "command", value_name = "SPEC")]
    pub commands: Vec<String>,
    /// User the commands run as
    #[arg(long, value_name = "USER", default_value = "root")]
    pub run_as: String,
    /// How long the grant lasts from its start, e.g. 15m, 2h
    #[arg(long = "for", value_name = "DURATION", default_value = "1h")]
    pub duration: String,
    /// When the grant starts: an RFC 3339 time, or an offset like +10m or -1h (default: now)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub start: Option<String>,
    /// Number of times the grant may be used (1 = one-time); unlimited within its window if not given
    #[arg(long, value_name = "N")]
    pub uses: Option<u32>,
    /// exec (run commands through jitsudo), login (SSH login through pam_jitsudo) or edit (edit the --command files with jitsudo -e)
    #[arg(long, value_name = "KIND", default_value = "exec", value_parser = ["exec", "login", "edit"])]
    pub kind: String,
    /// Why the grant exists (shown to the user and recorded in logs)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// End the grant when the login session that used it closes (pam_jitsudo drops it then)
    #[arg(long)]
    pub session_bound: bool,
    /// Let the command execute other programs (shell escapes, pagers, `find -exec`); by
    /// default every exec after the granted program fails
    #[arg(long)]
    pub allow_exec: bool,
    /// Record every run under the grant (/var/log/jitsudo-io, replayable by sudoreplay and jitsudoctl replay)
    #[arg(long)]
    pub record: bool,
    /// Ticket id recorded in the grant (`ticket` claim; shown by jitsudo -l)
    #[arg(long, value_name = "ID")]
    pub ticket: Option<String>,
    /// The grant this one replaces (`extends` claim): a command running under GRANT on the host continues under this grant instead of ending
    #[arg(long, value_name = "GRANT")]
    pub extends: Option<String>,
}

pub fn ctl_main() -> ExitCode {
    let cli = match CtlCli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        CtlCommand::Keygen { id, out } => keygen(&id, &out),
        CtlCommand::Mint(args) => mint(&args),
        CtlCommand::Verify { config, token } => verify(&config, &token),
        CtlCommand::Journal(JournalCommand::Verify { dir, recordings }) => {
            journal_verify(&dir, &recordings)
        }
        CtlCommand::Policy(admin::PolicyCommand::Check { file }) => admin::policy_check(&file),
        CtlCommand::Host(admin::HostCommand::Add {
            name,
            public_key,
            service,
        }) => admin::host_add(&name, &public_key, &service),
        CtlCommand::Approver(admin::ApproverCommand::Add {
            name,
            groups,
            admin: is_admin,
            scope,
            expires,
            slack_id,
            service,
        }) => admin::approver_add(
            &name,
            &groups,
            is_admin,
            slack_id.as_deref(),
            &admin::TokenTerms {
                scope: scope.as_deref(),
                expires: &expires,
            },
            &service,
        ),
        CtlCommand::Approver(admin::ApproverCommand::Slack {
            name,
            slack_id,
            service,
        }) => admin::approver_slack(&name, &slack_id, &service),
        CtlCommand::Login { service } => crate::client::login::login(&service),
        CtlCommand::Logout => crate::client::login::logout(),
        CtlCommand::Requests { pending, service } => admin::requests(pending, &service),
        CtlCommand::Approve {
            id,
            comment,
            service,
        } => admin::approve(&id, comment.as_deref(), &service),
        CtlCommand::Deny {
            id,
            reason,
            service,
        } => admin::deny(&id, &reason, &service),
        CtlCommand::Revoke {
            grant,
            reason,
            service,
        } => admin::revoke(&grant, &reason, &service),
        CtlCommand::Audit(args) => crate::client::audit::audit_command(&args),
        CtlCommand::Recordings(args) => crate::client::recordings::list(&args),
        CtlCommand::Replay(args) => crate::recording::replay(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jitsudoctl: {e}");
            ExitCode::from(1)
        }
    }
}

fn keygen(id: &str, out: &Path) -> Result<(), String> {
    if !grant::valid_key_id(id) {
        return Err(format!(
            "key id {id:?} is not valid: use 1-64 letters, digits, '-', '_' or '.'"
        ));
    }
    match fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(out)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create {}: {e}", out.display())),
    }
    let key_path = out.join(format!("{id}.key"));
    let pub_path = out.join(format!("{id}.pub"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(format!(
                "{} already exists; refusing to overwrite a key",
                p.display()
            ));
        }
    }
    let key = SecretKey::generate(id)?;
    write_new_file(&key_path, key.to_file_text().as_bytes(), 0o600)?;
    write_new_file(&pub_path, key.trusted_key_block().as_bytes(), 0o644)?;
    eprintln!(
        "wrote {} (secret, keep it offline or on the approval service only) and {}",
        key_path.display(),
        pub_path.display()
    );
    eprintln!("add this to /etc/jitsudo/jitsudo.toml on every host that should accept its grants:");
    print!("{}", key.trusted_key_block());
    Ok(())
}

fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn read_secret_key(path: &Path) -> Result<SecretKey, String> {
    let file =
        fs::File::open(path).map_err(|e| format!("cannot open key {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is accessible by group or others (mode {:o}); fix with: chmod 600 {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    SecretKey::from_file_text(path, &text)
}

/// `--start`: absolute RFC 3339, or `+DUR` / `-DUR` relative to now.
fn parse_start(text: &str, now: i64) -> Result<i64, String> {
    if let Some(rest) = text.strip_prefix('+') {
        return Ok(now + config::parse_duration(rest)?.as_secs() as i64);
    }
    if let Some(rest) = text.strip_prefix('-') {
        return Ok(now - config::parse_duration(rest)?.as_secs() as i64);
    }
    grant::parse_time(text)
        .map_err(|e| format!("--start: {e}; use RFC 3339 (2026-11-23T16:00:00Z) or +10m / -1h"))
}

fn operator_name() -> String {
    crate::system::user_by_uid(crate::system::real_uid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid-{}", crate::system::real_uid()))
}

fn mint(args: &MintArgs) -> Result<(), String> {
    let kind = match args.kind.as_str() {
        "login" => Kind::Login,
        "edit" => Kind::Edit,
        _ => Kind::Exec,
    };
    if kind == Kind::Exec && args.commands.is_empty() {
        return Err(
            "an exec grant needs at least one --command SPEC (e.g. --command /usr/bin/id)".into(),
        );
    }
    if let Some(t) = &args.ticket {
        jitsudo_core::grant::valid_ticket(t).map_err(|e| format!("--ticket: {e}"))?;
    }
    if let Some(g) = &args.extends {
        if !jitsudo_core::grant::valid_grant_id(g) {
            return Err(format!(
                "--extends {g:?}: not a grant id (letters, digits and '-')"
            ));
        }
    }
    if kind == Kind::Edit {
        if args.commands.is_empty() {
            return Err("an edit grant needs at least one --command FILE (e.g. --command /etc/nginx/nginx.conf)".into());
        }
        if args.run_as != "root" {
            return Err(format!(
                "--run-as {:?}: an edit grant has no run-as user (the editor runs as the caller, root writes the file back)",
                args.run_as
            ));
        }
        for file in &args.commands {
            crate::matcher::check_edit_path(file)
                .map_err(|e| format!("--command {file:?}: {e}"))?;
        }
    } else {
        for spec in &args.commands {
            CommandSpec::parse(spec).map_err(|e| format!("--command {spec:?}: {e}"))?;
        }
    }
    if !grant::valid_user_name(&args.user) {
        return Err(format!("--user {:?} is not a valid user name", args.user));
    }
    if !grant::valid_user_name(&args.run_as) {
        return Err(format!(
            "--run-as {:?} is not a valid user name",
            args.run_as
        ));
    }
    if args.host.is_empty()
        || args
            .host
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    {
        return Err(format!("--host {:?} is not a valid host id", args.host));
    }
    if args.uses == Some(0) {
        return Err("--uses must be at least 1".into());
    }
    let duration = config::parse_duration(&args.duration).map_err(|e| format!("--for: {e}"))?;
    if duration.as_secs() == 0 {
        return Err("--for must be longer than 0s".into());
    }
    let key = read_secret_key(&args.key)?;

    let now = grant::now();
    let start = match &args.start {
        Some(s) => parse_start(s, now)?,
        None => now,
    };
    let exp = start + duration.as_secs() as i64;
    let operator = operator_name();
    let claims = Claims {
        jti: grant::new_grant_id()?,
        iss: format!("jitsudoctl:{}", key.id),
        sub: args.user.clone(),
        host: args.host.clone(),
        run_as: args.run_as.clone(),
        commands: args.commands.clone(),
        nbf: grant::format_time(start),
        exp: grant::format_time(exp),
        iat: grant::format_time(now),
        uses: args.uses,
        kind,
        reason: args
            .reason
            .clone()
            .unwrap_or_else(|| format!("minted offline by {operator}")),
        approved_by: vec![operator],
        request: None,
        session_bound: args.session_bound,
        exec: args.allow_exec,
        record: args.record,
        ticket: args.ticket.clone(),
        extends: args.extends.clone(),
    };
    let token = grant::sign(&claims, &key)?;
    if exp <= now {
        eprintln!("jitsudoctl: warning: this grant has already expired");
    }
    if duration.as_secs() > 12 * 3600 {
        eprintln!("jitsudoctl: warning: lifetime {} exceeds the default max_grant_lifetime (12h); hosts may refuse it", args.duration);
    }
    eprintln!(
        "grant {} for {} on {}: valid {} .. {}",
        claims.jti, claims.sub, claims.host, claims.nbf, claims.exp
    );
    println!("{token}");
    Ok(())
}

fn journal_verify(dir: &Path, recordings: &Path) -> Result<(), String> {
    let store = crate::store::Store::new(dir);
    let (text, anchor) = store.read_journal().map_err(|e| e.to_string())?;
    let journal = dir.join(crate::store::journal::JOURNAL);
    let n = crate::store::journal::verify(&text, &anchor)
        .map_err(|at| format!("journal broken at {}: {at}", journal.display()))?;
    println!(
        "journal intact: {n} record(s) after record {} in {}",
        anchor.seq,
        journal.display()
    );
    let mut problems = 0;
    for named in recordings_named(&text) {
        let id = &named.id;
        let rid = jitsudo_core::iolog::RecordingId::parse(id);
        let status = match (&rid, &named.cut) {
            (None, _) => jitsudo_core::iolog::status::Status::Altered(format!(
                "the journal names {id:?}, which is not a recording id"
            )),
            // Deleted here after the service acknowledged it: nothing left to check.
            (Some(rid), _) if named.deleted && !recordings.join(rid.relative_path()).exists() => {
                println!("recording {id}: deleted after upload (the service holds it)");
                continue;
            }
            (Some(rid), Some(last)) => {
                jitsudo_core::iolog::status::check_cut(recordings, rid, last)
            }
            (Some(rid), None) => {
                jitsudo_core::iolog::status::check(recordings, rid, named.seal.as_ref())
            }
        };
        println!("recording {id}: {status}");
        problems += usize::from(status.is_problem());
    }
    match problems {
        0 => Ok(()),
        n => Err(format!(
            "{n} recording(s) in {} do not match the journal",
            recordings.display()
        )),
    }
}

/// A recording as the journal's records name it, all of them taken together.
struct Named {
    id: String,
    /// The seal of the record written at the run's end, if it ended.
    seal: Option<crate::store::journal::RecordingSeal>,
    /// The chunk `jitsudo --sync` recorded it cut at, if it found it cut.
    cut: Option<crate::store::journal::RecordingSeal>,
    /// `jitsudo --sync` deleted the local copy after upload.
    deleted: bool,
}

/// Each recording the journal names, in order, with what its records say of it.
fn recordings_named(text: &[u8]) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        // The chain was verified above, so every line parses.
        let Ok(record) = serde_json::from_slice::<crate::store::journal::Record>(line) else {
            continue;
        };
        let Some(rec) = record.entry.recording else {
            continue;
        };
        let slot = match out.iter().position(|n| n.id == rec.id) {
            Some(i) => &mut out[i],
            None => {
                out.push(Named {
                    id: rec.id.clone(),
                    seal: None,
                    cut: None,
                    deleted: false,
                });
                out.last_mut().expect("just pushed")
            }
        };
        if rec.deleted {
            slot.deleted = true;
        } else if rec.cut {
            slot.cut = rec.seal.or(slot.cut.take());
        } else if rec.seal.is_some() {
            slot.seal = rec.seal;
        }
    }
    out
}

fn verify(config_path: &Path, token: &str) -> Result<(), String> {
    let token = if token == "-" {
        let bytes = read_limited(io::stdin().lock(), 64 * 1024)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        String::from_utf8(bytes).map_err(|_| "token is not UTF-8".to_string())?
    } else {
        token.to_string()
    };
    let text = fs::read_to_string(config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
    let cfg = config::parse(config_path, &text).map_err(|e| e.to_string())?;
    let g = grant::verify(token.trim(), &cfg.trusted_keys, cfg.max_grant_lifetime)
        .map_err(|e| e.to_string())?;
    let now = grant::now();
    let mut verdict = vec![format!("signature valid (key \"{}\")", g.key_id)];
    if let Err(e) = g.check_window(now, cfg.clock_skew) {
        verdict.push(e.to_string());
    }
    if g.claims.host != cfg.host {
        verdict.push(format!(
            "for host \"{}\", this config is \"{}\"",
            g.claims.host, cfg.host
        ));
    }
    eprintln!("{}", verdict.join("; "));
    println!(
        "{}",
        serde_json::to_string_pretty(&g.claims).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The `jitsudoctl` command line, for the man page and completion generators.
pub fn command() -> clap::Command {
    <CtlCli as clap::CommandFactory>::command()
}
