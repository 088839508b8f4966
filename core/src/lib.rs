//! jitsudo-core: what every privileged part of jitsudo on a host shares, and nothing
//! else — grants (PASETO v4.public) and their keys, command matching, the host config,
//! the syslog format, the state store and its journal, the system calls, and the signed
//! wire format the host exchanges with the approval service.
//!
//! It is linked into the setuid `jitsudo` and into the PAM module inside sshd, so it
//! carries no command-line parser and no HTTP or TLS. All `unsafe` code lives in
//! `system`; every other module forbids it.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod admission;
pub mod config;
pub mod grant;
pub mod helper;
pub mod host;
pub mod iolog;
pub mod log;
pub mod matcher;
pub mod secure_file;
pub mod store;
pub mod system;
pub mod text;
pub mod wire;
