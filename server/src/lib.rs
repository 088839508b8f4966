//! `jitsudod`, the approval service: hosts send signed requests, the policy decides
//! (automatically, by people, or no), grants are signed and stored once, hosts sync
//! grants and the signed revocation list. Async code lives only in this crate.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod db;
pub mod limits;
pub mod serve;
pub mod web;
pub mod webhook;
