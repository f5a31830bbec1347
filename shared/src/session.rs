//! The bodies of the web app's session routes (`POST /auth/login`, `/auth/register`,
//! `/auth/refresh`, `/auth/logout`), which keep the refresh token in an HttpOnly cookie.

use serde::{Deserialize, Serialize};

/// `POST /auth/login`. No `Debug`: it holds a password.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /auth/register`. No `Debug`: it holds a password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
    pub invitation: Option<String>,
}

/// What a started or refreshed session answers: never the refresh token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSession {
    pub access_token: String,
    /// RFC 3339.
    pub access_token_expires_at: String,
    /// Seconds from the answer until the access token expires: a client counts from its own
    /// clock, so a skewed clock does not make it refresh too late.
    pub access_token_expires_in: i64,
    pub user_id: String,
}
