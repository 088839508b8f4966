//! pam_jitsudo.so: logins only under signed, time-bound login grants.
//!
//! - account: allow a user only while they hold a usable `login` grant for this host
//!   (or are in `exempt_group`); counted grants spend a use per login.
//! - auth: with no such grant cached, ask for a grant token through the conversation,
//!   verify it as `jitsudo --import` does, and cache it.
//! - session: log the session's start and end with the grant that admitted it; end
//!   session-bound grants when the session closes.
//!
//! `module` holds the logic, generic over the `handler::PamHandler` trait and tested with
//! a scripted fake; `ffi` is the thin layer over libpam. See pam_jitsudo(8).
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// What login.rs reaches as `crate::config`, `crate::store`, … : the same modules the
// setuid jitsudo uses, from jitsudo-core.
pub(crate) use jitsudo_core::{admission, config, grant, host, log, store, system};

#[allow(unsafe_code)]
mod ffi;
pub mod handler;
pub mod login;
pub mod module;
pub mod options;
