//! jitsudo-net: HTTP(S) to the approval service, for the two programs that talk to it
//! from a host or an admin's machine — the unprivileged helper `jitsudo-net`, which the
//! setuid `jitsudo` runs for `--request` and `--sync`, and `jitsudoctl`.
//!
//! Nothing here runs with privileges: the setuid binary signs every request before the
//! helper sees it and verifies every answer after (`jitsudo_core::helper`).

// `super::wire` in `http` is the shared host/service format.
pub(crate) use jitsudo_core::wire;

pub mod exchange;
pub mod failover;
pub mod http;
