//! The error codes that every GraphQL error carries in `extensions.code`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, as the client sees it. The web app matches on the same enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No valid access token was presented.
    Unauthenticated,
    /// The caller is known but lacks the permission.
    Forbidden,
    /// The thing asked for does not exist (or the caller may not know it exists).
    NotFound,
    /// The input is invalid; `extensions.field` names the field at fault.
    BadUserInput,
    /// The request clashes with the current state (a duplicate, an illegal transition).
    Conflict,
    /// Too many attempts; retry later.
    RateLimited,
    /// The hub failed; the cause is in its log, never in the answer.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 7] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::BadUserInput,
        Self::Conflict,
        Self::RateLimited,
        Self::Internal,
    ];

    /// The code as it appears in `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }

    /// Parses the code found in `extensions.code`.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_text() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("bad_user_input"), None);
    }
}
