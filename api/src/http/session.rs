//! Sessions for the web app, whose refresh token lives in a cookie that no script can read.
//!
//! `POST /auth/login`, `/auth/register`, `/auth/refresh` and `/auth/logout` take and give JSON;
//! the first three answer the access token (kept in the app's memory only) and set the refresh
//! token as the `kutanga_refresh` cookie: HttpOnly, SameSite=Strict, limited to `/auth`, Secure
//! when the hub's public URL is https. GraphQL's `login`/`refreshSession` stay as they are for
//! API clients that keep the refresh token themselves.
//!
//! Cross-site request forgery: the cookie is SameSite=Strict, so a browser never sends it with a
//! request that another site starts; every route also insists on `Content-Type:
//! application/json`, which an HTML form on another site cannot send and a script on another
//! site can send only after a CORS preflight that the hub never approves (it sends no CORS
//! headers), and that no other site could read the answer of. The cookie's path keeps it off
//! every other request of the hub.

use axum::{
    Extension,
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use shared::session::{LoginRequest, RegisterRequest, WebSession};

use super::client::{ClientAddr, client_info as client, sends_json};
use crate::{app::Services, auth::sessions, error::ApiError, users};

const COOKIE: &str = "kutanga_refresh";
const PATH: &str = "/auth";

/// An error in the API's shape, with the HTTP status of its code.
fn failure(e: &ApiError) -> Response {
    let status = match e {
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::BadInput { .. } => StatusCode::BAD_REQUEST,
        ApiError::Conflict { .. } => StatusCode::CONFLICT,
        ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut res = (status, axum::Json(serde_json::json!({ "errors": [e.server_error()] }))).into_response();
    if let ApiError::RateLimited { retry_after_secs } = e {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    res
}

/// A JSON body, refused (415) unless the request says it is JSON (see the module's note on
/// forgery).
pub struct JsonOnly<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOnly<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        if !sends_json(req.headers()) {
            let mut res = failure(&ApiError::bad_input("contentType", "send the request as application/json"));
            *res.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return Err(res);
        }
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&body)
            .map(JsonOnly)
            .map_err(|e| failure(&ApiError::bad_input("body", format!("not the expected JSON: {e}"))))
    }
}

/// The refresh token the browser sent.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_owned))
        .filter(|token| !token.is_empty())
}

/// The Set-Cookie value that keeps (or, with `None`, forgets) a refresh token.
fn set_cookie(s: &Services, token: Option<&str>) -> HeaderValue {
    let secure = if s.settings.public_url().starts_with("https://") { "; Secure" } else { "" };
    let value = match token {
        Some(token) => format!(
            "{COOKIE}={token}; Path={PATH}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            s.settings.session_ttl
        ),
        None => format!("{COOKIE}=; Path={PATH}; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("kutanga_refresh=; Path=/auth; Max-Age=0"))
}

/// The access token as the answer, the refresh token as the cookie.
fn started(s: &Services, tokens: sessions::Tokens) -> Response {
    let body = WebSession {
        access_token: tokens.access_token,
        access_token_expires_at: tokens.access_token_expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        access_token_expires_in: (tokens.access_token_expires_at - Utc::now()).num_seconds().max(0),
        user_id: tokens.user.id.to_string(),
    };
    let mut res = axum::Json(body).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(s, Some(&tokens.refresh_token)));
    res
}

/// A started or refreshed session, or the error.
fn answer(s: &Services, result: Result<sessions::Tokens, ApiError>) -> Response {
    match result {
        Ok(tokens) => started(s, tokens),
        Err(e) => failure(&e),
    }
}

/// POST /auth/login `{email, password}`.
pub async fn login(
    State(s): State<Services>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    JsonOnly(input): JsonOnly<LoginRequest>,
) -> Response {
    answer(&s, sessions::login(&s, &input.email, input.password, &client(ip, &headers)).await)
}

/// POST /auth/register `{email, password, displayName?, invitation?}`.
pub async fn register(
    State(s): State<Services>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    JsonOnly(input): JsonOnly<RegisterRequest>,
) -> Response {
    let client = client(ip, &headers);
    answer(&s, users::register(&s, &input.email, input.password, input.display_name, input.invitation, &client).await)
}

/// POST /auth/refresh `{}`: a new access token, and the cookie rotated. A refused token also
/// forgets the cookie.
pub async fn refresh(
    State(s): State<Services>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    JsonOnly(_): JsonOnly<serde_json::Value>,
) -> Response {
    let Some(token) = cookie(&headers) else {
        return failure(&ApiError::Unauthenticated("no session: sign in"));
    };
    let result = sessions::refresh(&s, &token, &client(ip, &headers)).await;
    let refused = matches!(result, Err(ApiError::Unauthenticated(_)));
    let mut res = answer(&s, result);
    if refused {
        res.headers_mut().insert(header::SET_COOKIE, set_cookie(&s, None));
    }
    res
}

/// POST /auth/logout `{}`: ends the cookie's session and forgets the cookie.
pub async fn logout(
    State(s): State<Services>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    JsonOnly(_): JsonOnly<serde_json::Value>,
) -> Response {
    if let Some(token) = cookie(&headers)
        && let Err(e) = sessions::end(&s, &token, &client(ip, &headers)).await
    {
        return failure(&e);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(&s, None));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("theme=dark; kutanga_refresh=abc123; other=1"));
        assert_eq!(cookie(&h).as_deref(), Some("abc123"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("kutanga_refresh_old=x; kutanga_refresh="));
        assert_eq!(cookie(&h), None);
    }
}
