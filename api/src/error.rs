//! The hub's one error type at the service boundary, and its mapping to GraphQL errors.
//!
//! Every error the client sees carries `extensions.code` (and `extensions.field` for bad input).
//! Internal causes are logged here, once, and never shown to the client.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};
use shared::{ErrorCode, validation::InvalidField};

/// An error a service returns. Each variant says what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// UNAUTHENTICATED: no valid access token, or wrong credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// FORBIDDEN: the caller lacks the permission named.
    #[error("this needs the permission `{0}`")]
    Forbidden(String),
    /// NOT_FOUND: the thing does not exist or the caller may not know of it.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// BAD_USER_INPUT with the field at fault.
    #[error("{message}")]
    BadInput { field: String, message: String },
    /// CONFLICT: a duplicate or an illegal change of state; `field` names a duplicate field.
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    /// RATE_LIMITED with the seconds to wait.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// INTERNAL: the client sees "internal error"; the cause goes to the log.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadInput { .. } => ErrorCode::BadUserInput,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput { field: field.into(), message: message.into() }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// Maps a database error: a unique violation becomes CONFLICT naming `field`.
    pub fn from_db(err: DbErr, unique_field: &str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::Conflict {
                field: Some(unique_field.to_owned()),
                message: format!("this {unique_field} is already taken"),
            },
            _ => Self::Internal(err.into()),
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                Self::Conflict { field: None, message: format!("already exists ({})", short(&detail)) }
            }
            _ => Self::Internal(err.into()),
        }
    }
}

impl From<InvalidField> for ApiError {
    fn from(err: InvalidField) -> Self {
        Self::bad_input(err.field, err.message)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(err.into())
    }
}

/// An I/O error told in words, without the OS's number (`os error 6`) or the engine's types.
pub fn io_words(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "not found",
        K::PermissionDenied => "permission denied",
        K::AlreadyExists => "it already exists",
        K::WouldBlock => "it is busy",
        K::InvalidInput | K::InvalidData => "invalid",
        K::StorageFull => "no space left",
        K::ReadOnlyFilesystem => "the file system is read-only",
        K::NotADirectory => "a part of the path is not a folder",
        K::IsADirectory => "it is a folder",
        _ if e.raw_os_error() == Some(6) => "nothing is reading it",
        _ => "an error of the system",
    }
}

/// What an operator can act on in an internal error, said in words (still INTERNAL, and the
/// cause still only in the log): the database out of reach, the disk full.
fn outage(cause: &anyhow::Error) -> Option<&'static str> {
    const UNAVAILABLE: &str = "the database is unavailable; try again shortly";
    const BUSY: &str = "the database is busy or unavailable; try again shortly";
    const FULL: &str = "the hub's disk is full; nothing was changed";
    const FAILING: &str = "the hub's database cannot write to its disk; nothing was changed";
    let sqlx = |e: &sqlx::Error| match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Some(UNAVAILABLE),
        // Every connection busy past the acquire timeout, or none can be opened.
        sqlx::Error::PoolTimedOut => Some(BUSY),
        sqlx::Error::Database(db) => {
            if let Some(e) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // The low byte of an extended result code is the primary one.
                return match sqlx::error::DatabaseError::code(e).and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff) {
                    Some(13) => Some(FULL),
                    Some(10) => Some(FAILING),
                    _ => None,
                };
            }
            let e = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
            match e.code() {
                "53100" => Some(FULL),
                c if c.starts_with("08") || c.starts_with("57P") => Some(UNAVAILABLE),
                _ => None,
            }
        }
        _ => None,
    };
    cause.chain().find_map(|e| {
        if let Some(db) = e.downcast_ref::<DbErr>() {
            return match db {
                DbErr::ConnectionAcquire(_) => Some(UNAVAILABLE),
                DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e))
                | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
                | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => sqlx(e),
                _ => None,
            };
        }
        if let Some(e) = e.downcast_ref::<sqlx::Error>() {
            return sqlx(e);
        }
        e.downcast_ref::<std::io::Error>().filter(|e| e.kind() == std::io::ErrorKind::StorageFull).map(|_| FULL)
    })
}

fn short(detail: &str) -> String {
    detail.chars().take(120).collect()
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        let message = match self {
            Self::Internal(cause) => outage(cause).unwrap_or("internal error").to_owned(),
            _ => self.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            match self {
                Self::BadInput { field, .. } => ext.set("field", field.as_str()),
                Self::Conflict { field: Some(field), .. } => ext.set("field", field.as_str()),
                Self::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                _ => {}
            }
        })
    }
}

impl ApiError {
    /// The error as the engine reports it before any field runs: with its code, without a
    /// location in the document (it has none).
    pub fn server_error(&self) -> async_graphql::ServerError {
        let mut error = async_graphql::ServerError::new(self.to_string(), None);
        error.extensions = self.extend().extensions;
        error
    }
}

/// The result of a resolver: errors carry their code.
pub type GqlResult<T> = async_graphql::Result<T>;

/// Converts a service result into a resolver result, attaching the error's code.
pub trait IntoGql<T> {
    fn gql(self) -> GqlResult<T>;
}

impl<T, E: Into<ApiError>> IntoGql<T> for Result<T, E> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(|e| e.into().extend())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_told_without_numbers() {
        let enxio = std::io::Error::from_raw_os_error(6);
        assert!(enxio.to_string().contains("os error 6"));
        assert_eq!(io_words(&enxio), "nothing is reading it");
        assert_eq!(io_words(&std::io::Error::from_raw_os_error(13)), "permission denied");
        assert!(!io_words(&std::io::Error::from_raw_os_error(71)).contains("os error"));
    }
}
