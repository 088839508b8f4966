//! What the service answers when it does not do what was asked. One variant per kind
//! of fault; the HTTP layer turns each into its status code in one place
//! (`http::error`), and the web page shows the message.
#![forbid(unsafe_code)]

use std::fmt;

use crate::store::DbError;

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The caller sent something malformed or out of bounds.
    Invalid(String),
    /// No (valid) credentials: unknown token, unregistered host, bad signature, replay.
    Unauthenticated(String),
    /// Authenticated, but not allowed to do this.
    Forbidden(String),
    NotFound(String),
    /// The state does not allow it (already decided, already approved, registered
    /// twice, expired).
    Conflict(String),
    /// Too many requests from this host or user; retry after that many seconds.
    RateLimited {
        message: String,
        retry_after: u64,
    },
    /// The service's own failure (database, randomness, signing).
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn message(&self) -> &str {
        match self {
            Error::Invalid(m)
            | Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::Internal(m) => m,
            Error::RateLimited { message, .. } => message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => Error::NotFound(m),
            DbError::Conflict(m) => Error::Conflict(m),
            DbError::Backend(m) => Error::Internal(format!("database error: {m}")),
        }
    }
}

pub(crate) fn invalid(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}
