//! jitsudo-policy: the approval service's own rules, shared by `jitsudod` and
//! `jitsudoctl` (`policy check`, `audit verify`) and never linked into anything that
//! runs on a host: the policy language (`policy`) and the audit trail's hash-chain
//! format (`audit`).

// What the moved modules reach as `crate::config`, `crate::grant`, `crate::matcher`.
pub(crate) use jitsudo_core::{config, grant, matcher};

pub mod audit;
pub mod policy;
