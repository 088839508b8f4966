//! End-to-end tests of the real setuid binary, run as root, acting as real
//! unprivileged users in private mount namespaces. See sandbox.rs. The attacks, each
//! shown refused, are a suite of their own: tests/attacks.

mod edit_world;
mod sandbox;
mod terminal_driver;

mod accounts;
mod bounded;
mod cache;
mod edit;
mod journal;
mod logging;
mod reauth;
mod recording;
mod run;
mod terminal;
