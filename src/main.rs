//! The setuid-root `jitsudo` binary: it runs a command as root (or another user) only
//! under a cached grant: a PASETO v4.public token signed by a key pinned in the host
//! config, bound to the user, this host, the commands and a time window. See `pipeline`
//! for the path a command takes, and DESIGN in the README for the reasoning.
//!
//! Everything in this crate runs as root. It has no network code: `--request`, `--sync`
//! and `--enroll` sign what they send here and verify what comes back here, and leave
//! the HTTP exchange to the unprivileged helper jitsudo-net (see `client`).

// What this binary shares with the PAM module lives in jitsudo-core; at the crate root,
// so that `crate::store`, `crate::system`, … read the same everywhere.
use jitsudo_core::{
    admission, config, grant, host, iolog, log, matcher, secure_file, store, system,
};

mod audit;
mod caller;
mod cli;
mod client;
mod context;
mod decision;
mod edit;
mod exec;
mod main_jitsudo;
mod manage;
mod output;
mod pipeline;
mod reauth;

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> std::process::ExitCode {
    main_jitsudo::jitsudo_main()
}
