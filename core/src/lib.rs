//! jitsudo: just-in-time privilege elevation.
//!
//! The setuid `jitsudo` binary runs a command as root (or another user) only under a
//! cached grant: a PASETO v4.public token signed by a key pinned in the host config,
//! bound to the user, this host, the commands and a time window. See `pipeline` for the
//! path a command takes, and DESIGN in the README for the reasoning.
//!
//! All `unsafe` code lives in `system`; every other module forbids it.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod audit;
pub mod caller;
pub mod cli;
pub mod client;
pub mod config;
pub mod ctl;
pub mod decision;
pub mod exec;
pub mod grant;
pub mod host;
pub mod log;
pub mod login;
pub mod main_jitsudo;
pub mod manage;
pub mod matcher;
pub mod output;
pub mod pipeline;
pub mod reauth;
pub mod secure_file;
pub mod store;
pub mod system;

pub use main_jitsudo::jitsudo_main;
