//! jitsudoctl: the admin tool — keys, offline grants, and the approval service's hosts,
//! approvers, requests, policy and audit trail. Not setuid, and never needed on a host.
//! The library half exists for xtask, which renders the clap definition (`ctl::command`)
//! into jitsudoctl(1) and the shell completions.

// What the moved modules reach as `crate::config`, `crate::grant`, … .
pub(crate) use jitsudo_core::{config, grant, matcher, secure_file, store, system};

pub mod client;
pub mod ctl;
pub mod recording;
