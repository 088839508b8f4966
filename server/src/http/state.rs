//! What every handler is given: the service (web sessions are in its database, so any
//! replica serves any browser).
#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::service::Service;

pub struct AppState {
    pub service: Service,
}

pub type Shared = Arc<AppState>;
