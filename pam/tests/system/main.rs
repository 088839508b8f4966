//! System tests of the real pam_jitsudo.so: loaded by libpam in pamtester and in a real
//! sshd, each test in its own private mount namespace (see sandbox.rs). They run as root
//! and fail, rather than skip, when they cannot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod pamtester;
mod sandbox;
mod sshd;
