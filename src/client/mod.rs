//! Talking to the approval service `jitsudod`: the wire protocol both sides share,
//! the policy language (so `jitsudoctl policy check` needs no service), and the
//! setuid binary's `--enroll`, `--request` and `--sync` modes.
//!
//! The privileged process never talks to the network: it signs what it sends with the
//! host key and verifies what comes back; the HTTP exchange runs in a child that has
//! dropped to the invoking user (see `system::fork_child`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod enroll;
pub mod hostkey;
pub mod http;
pub mod journal_upload;
pub mod policy;
pub mod request;
pub mod wire;
