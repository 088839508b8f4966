//! jitsudoctl's conversations with the approval service, over the HTTP client of
//! jitsudo-net, in the wire format of jitsudo-core.
#![forbid(unsafe_code)]

pub use jitsudo_core::wire;
pub use jitsudo_net::http;
pub use jitsudo_policy::policy;

pub mod admin;
pub mod audit;
pub mod connect;
pub mod login;
pub mod recordings;
