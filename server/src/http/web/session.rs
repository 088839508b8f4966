//! The web page's signed-in sessions, in memory, by SHA-256 of the session id (see the
//! page's module comment for their security properties).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub struct Session {
    /// The approver's token hash: the approver is looked up again on every page, so a
    /// removed approver loses the page at once.
    pub token_hash: String,
    pub csrf: String,
    pub expires: i64,
    /// A message for the next page shown (ok, text).
    pub flash: Option<(bool, String)>,
}

/// Signed-in browsers, by SHA-256 of the session id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}
