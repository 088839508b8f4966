//! What every handler is given: the service and the web page's sessions.
#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::http::web::session::Sessions;
use crate::service::Service;

pub struct AppState {
    pub service: Service,
    /// Signed-in sessions of the approver web page.
    pub web: Sessions,
}

pub type Shared = Arc<AppState>;
