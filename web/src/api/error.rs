//! An error from the hub or the network, and how it reads to a person.

use std::fmt;

use serde_json::Value;
use shared::ErrorCode;

/// What went wrong, by the API's code (`None`: the hub could not be reached or answered
/// something that is not the API).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: Option<ErrorCode>,
    /// The hub's own words.
    pub message: String,
    /// The input the error is about (`extensions.field`), to show it on that field.
    pub field: Option<String>,
    /// Seconds to wait, with RATE_LIMITED.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn network(detail: impl fmt::Display) -> Self {
        Self { code: None, message: format!("the hub cannot be reached ({detail})"), field: None, retry_after: None }
    }

    pub fn coded(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: Some(code), message: message.into(), field: None, retry_after: None }
    }

    /// An error as GraphQL carries it: `message` and `extensions.{code, field, retryAfter}`
    /// (`ext` reads one extension).
    pub fn from_graphql<'a>(message: &str, ext: impl Fn(&str) -> Option<&'a Value>) -> Self {
        Self {
            code: ext("code").and_then(Value::as_str).and_then(ErrorCode::parse),
            message: message.to_owned(),
            field: ext("field").and_then(Value::as_str).map(str::to_owned),
            retry_after: ext("retryAfter").and_then(Value::as_u64),
        }
    }

    /// The first error of a GraphQL `errors` array (a JSON value), if it holds one.
    pub fn first_of(errors: &Value) -> Option<Self> {
        let first = errors.as_array()?.first()?;
        let message = first.get("message").and_then(Value::as_str).unwrap_or("the hub refused the request");
        let extensions = first.get("extensions").and_then(Value::as_object);
        Some(Self::from_graphql(message, |key| extensions.and_then(|e| e.get(key))))
    }

    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == Some(code)
    }

    /// The error as a sentence for the page.
    pub fn words(&self) -> String {
        let message = capitalised(&self.message);
        match self.code {
            None => format!("{message}. Check your connection; the page retries on its own."),
            Some(ErrorCode::Unauthenticated) => format!("{message}."),
            Some(ErrorCode::Forbidden) => format!("Not allowed: {}.", self.message.trim_end_matches('.')),
            Some(ErrorCode::NotFound) => format!("{message}: it does not exist or you may not see it."),
            Some(ErrorCode::BadUserInput) => format!("{message}."),
            Some(ErrorCode::Conflict) => format!("{message}."),
            Some(ErrorCode::RateLimited) => match self.retry_after {
                Some(s) => format!("Too many attempts: try again in {}.", seconds(s)),
                None => "Too many attempts: try again in a moment.".into(),
            },
            Some(ErrorCode::Internal) => {
                format!("The hub failed to do this ({}). Try again; if it lasts, tell an admin.", self.message)
            }
        }
    }
}

fn capitalised(s: &str) -> String {
    let s = s.trim_end_matches('.');
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn seconds(s: u64) -> String {
    match s {
        1 => "1 second".into(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_fields_come_from_extensions() {
        let errors = serde_json::json!([{
            "message": "the email is not valid",
            "extensions": { "code": "BAD_USER_INPUT", "field": "email" }
        }]);
        let e = ApiError::first_of(&errors).unwrap();
        assert_eq!(e.code, Some(ErrorCode::BadUserInput));
        assert_eq!(e.field.as_deref(), Some("email"));
        assert_eq!(e.words(), "The email is not valid.");
        assert_eq!(ApiError::first_of(&serde_json::json!([])), None);
        assert_eq!(ApiError::first_of(&serde_json::json!({"a": 1})), None);
    }

    #[test]
    fn every_code_reads_as_words() {
        let limited = ApiError::first_of(&serde_json::json!([{
            "message": "too many attempts; try again in 42 s",
            "extensions": { "code": "RATE_LIMITED", "retryAfter": 42 }
        }]))
        .unwrap();
        assert_eq!(limited.words(), "Too many attempts: try again in 42 seconds.");
        let long = ApiError { retry_after: Some(600), ..limited };
        assert_eq!(long.words(), "Too many attempts: try again in 10 minutes.");
        assert_eq!(
            ApiError::coded(ErrorCode::Forbidden, "this needs the permission `server.delete`").words(),
            "Not allowed: this needs the permission `server.delete`."
        );
        assert_eq!(
            ApiError::coded(ErrorCode::NotFound, "server not found").words(),
            "Server not found: it does not exist or you may not see it."
        );
        assert!(ApiError::network("offline").words().starts_with("The hub cannot be reached (offline)."));
        let unknown =
            ApiError::first_of(&serde_json::json!([{"message": "x", "extensions": {"code": "NEW_CODE"}}])).unwrap();
        assert_eq!(unknown.code, None, "an unknown code is not guessed");
        for code in ErrorCode::ALL {
            let words = ApiError::coded(code, "detail").words();
            assert!(!words.contains('{') && words.ends_with('.'), "{code:?}: {words}");
        }
    }
}
