//! `jitsudo-auth USER TTY`: run the PAM service `jitsudo` (auth, then account) for USER on
//! the caller's terminal, print one line saying how it went, and exit 0 (confirmed),
//! 1 (refused) or 2 (could not authenticate). The setuid jitsudo runs it as root with only
//! PATH in its environment; see reauth in jitsudo and jitsudo(8).
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod auth;
#[allow(unsafe_code)]
mod sys;

use std::io::Write;
use std::process::ExitCode;

use auth::Verdict;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let verdict = match auth::parse_args(&args) {
        Err(e) => Verdict::Failed(e),
        Ok(_) if !sys::running_as_root() => {
            Verdict::Failed("must be run as root (jitsudo runs it)".to_string())
        }
        Ok((user, tty)) => auth::confirm(&user, tty.as_deref(), sys::Terminal::open()),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", auth::one_line(verdict.reason()));
    let _ = out.flush();
    ExitCode::from(verdict.exit_code())
}
