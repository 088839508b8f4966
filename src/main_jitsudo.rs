//! Entry of the setuid binary: process hygiene, self-checks, then one mode.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use crate::audit::Audit;
use crate::caller::Caller;
use crate::cli::{Cli, Mode};
use crate::config::{self, LogConfig};
use crate::context::Context;
use crate::log::{Outcome, Record};
use crate::manage;
use crate::pipeline;
use crate::store::Store;
use crate::system;

fn fail(message: &str) -> ExitCode {
    crate::complain!("jitsudo: {message}");
    ExitCode::from(1)
}

pub fn jitsudo_main() -> ExitCode {
    // Rust's runtime has already reopened fds 0-2 on /dev/null if the caller closed them,
    // so nothing we open can land on stdout/stderr. Close everything else they left open.
    system::close_fds_from(3);
    let umask = system::set_umask(0o077);
    let limits = match system::harden_limits() {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot set resource limits: {e}")),
    };

    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match Cli::plain_command(&argv) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&argv),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            if code == 1 {
                log_early_error("bad command line");
            }
            return ExitCode::from(code);
        }
    };

    if system::effective_uid() != 0 {
        return fail("must be installed setuid root (chown root:root /usr/bin/jitsudo && chmod 4755 /usr/bin/jitsudo)");
    }
    if system::no_new_privs() {
        return fail("the no_new_privs flag is set on this process, so it cannot gain privileges; run jitsudo outside that sandbox");
    }
    if let Err(e) = system::become_root_group() {
        return fail(&format!("cannot switch to the root group: {e}"));
    }

    let caller = match Caller::identify() {
        Ok(c) => c,
        Err(e) => {
            log_early_error(&e);
            return fail(&e);
        }
    };
    let config = match config::load() {
        Ok(c) => c,
        Err(e) => {
            let audit = Audit::connect(&LogConfig::default());
            audit.send_best_effort(&early_record(&caller, &format!("bad config: {e}")));
            return fail(&e.to_string());
        }
    };
    let mode = match cli.mode() {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let store = Store::system();
    let ctx = Context {
        audit: Audit::connect(&config.log).with_journal(&config, caller.user.uid, store.clone()),
        config,
        caller,
        store,
        limits,
        umask,
    };

    let result = match mode {
        Mode::Run => pipeline::run_command(&ctx, cli.user.as_deref(), &cli.command)
            .map(|never| match never {}),
        Mode::Edit => crate::edit::edit(&ctx, &cli.edit),
        Mode::List => manage::list(&ctx),
        Mode::Import(source) => manage::import(&ctx, &source),
        Mode::Drop(prefix) => manage::drop_grants(&ctx, prefix.as_deref()),
        Mode::ResetTimestamp => crate::reauth::reset(&ctx),
        Mode::Request => crate::client::request::request(&ctx, &cli),
        Mode::Extend(grant) => crate::client::request::extend(&ctx, &cli, &grant),
        Mode::Sync => crate::client::request::sync(&ctx),
        Mode::Enroll => crate::client::enroll::enroll(&ctx),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(refused) => fail(&refused.message),
    }
}

fn early_record(caller: &Caller, what: &str) -> Record {
    Record {
        user: caller.user.name.clone(),
        outcome: Outcome::Error(what.to_string()),
        tty: caller.tty.clone(),
        pwd: caller.cwd.clone(),
        run_as: None,
        grant: None,
        command: std::env::args_os().skip(1).collect(),
    }
}

/// Log an error that happened before the config (and its log settings) were read.
fn log_early_error(what: &str) {
    let audit = Audit::connect(&LogConfig::default());
    let user = system::user_by_uid(system::real_uid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {}", system::real_uid()));
    audit.send_best_effort(&Record {
        user,
        outcome: Outcome::Error(what.to_string()),
        tty: crate::caller::controlling_tty(),
        pwd: std::env::current_dir()
            .map(|p| p.into_os_string())
            .unwrap_or_default(),
        run_as: None,
        grant: None,
        command: std::env::args_os().skip(1).collect(),
    });
}
