//! The setuid binary's `--enroll`, `--request` and `--sync` modes: its side of the
//! conversation with the approval service `jitsudod`.
//!
//! The privileged process never talks to the network: it signs what it sends with the
//! host key and verifies what comes back; the HTTP exchange runs in the helper
//! /usr/libexec/jitsudo/jitsudo-net, executed in a child that has dropped to the
//! invoking user (or `nobody`), with the protocol of `jitsudo_core::helper`.
#![forbid(unsafe_code)]

pub use jitsudo_core::wire;

pub mod enroll;
pub mod hostkey;
pub mod journal_upload;
mod net_helper;
pub mod recording_upload;
pub mod request;
