//! `jitsudod`, the approval service: hosts send signed requests, the policy decides
//! (automatically, by people, or no), grants are signed and stored once, hosts sync
//! grants and the signed revocation list. Async code lives only in this crate.
#![forbid(unsafe_code)]

//!
//! The modules form a one-way stack; each uses only those below it:
//!
//! ```text
//! cli, serve            the command line and the life of the process
//! http                  routes, handlers, extractors, the web page; errors → statuses
//! service               what the service does: rules, signing, metrics, logs, webhooks
//! oidc                  the identity provider: sign-in, ID-token validation
//! config                the config file
//! webhook               deliveries
//! store                 SQL only (SQLite, PostgreSQL), with the audit chain
//! model     limits      the shared vocabulary; counters
//! ```

pub mod cli;
pub mod config;
pub mod http;
pub mod limits;
pub mod model;
pub mod oidc;
pub mod serve;
pub mod service;
pub mod store;
pub mod webhook;
