//! End-to-end tests of the real setuid binary, run as root, acting as real
//! unprivileged users in private mount namespaces. See sandbox.rs.

mod sandbox;

mod accounts;
mod attacks;
mod cache;
mod journal;
mod logging;
mod reauth;
mod run;
