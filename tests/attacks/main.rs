//! One end-to-end test per attack in docs/SECURITY.md's attack catalogue, run against
//! the real setuid binary as real unprivileged users in private mount namespaces. Each
//! asserts the refusal, that nothing ran or changed, and where it applies the log line.
//!
//! The sandbox is tests/e2e's, shared rather than copied.

#[path = "../e2e/edit_world.rs"]
mod edit_world;
#[path = "../e2e/sandbox.rs"]
mod sandbox;
#[path = "../e2e/terminal_driver.rs"]
mod terminal_driver;

mod audit;
mod edit;
mod escapes;
mod files;
mod input;
mod journal;
mod network;
mod pam;
mod pins;
mod process;
mod races;
mod terminal;
mod tokens;
