//! GET /charts/host/{metric}.{svg|png} and /charts/server/{id}/{metric}.{svg|png}: a metric's
//! history drawn by plotters. `from`/`to` (RFC 3339 or Unix milliseconds; default the last hour),
//! `width`/`height` in pixels. Authorised like the history queries with a bearer token, or by a
//! signed link (`exp`, `sig`) that the hub puts in alert webhooks.

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use shared::ErrorCode;

use super::graphql::bearer;
use crate::{
    app::Services,
    auth::caller::authenticate,
    error::ApiError,
    monitor::{
        self, Target,
        chart::{self, ChartFormat, ChartSpec},
    },
};

#[derive(Debug, Deserialize)]
pub struct ChartQuery {
    from: Option<String>,
    to: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    exp: Option<i64>,
    sig: Option<String>,
}

pub async fn host(
    State(s): State<Services>,
    Path(file): Path<String>,
    Query(q): Query<ChartQuery>,
    headers: HeaderMap,
) -> Response {
    answer(chart(&s, Target::Host, &file, q, &headers).await)
}

pub async fn server(
    State(s): State<Services>,
    Path((id, file)): Path<(String, String)>,
    Query(q): Query<ChartQuery>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = id.parse::<i64>() else { return answer(Err(ApiError::NotFound("server"))) };
    answer(chart(&s, Target::Server(id), &file, q, &headers).await)
}

async fn chart(
    s: &Services,
    target: Target,
    file: &str,
    q: ChartQuery,
    headers: &HeaderMap,
) -> Result<(ChartFormat, Vec<u8>), ApiError> {
    let (metric, format) = file
        .rsplit_once('.')
        .and_then(|(m, ext)| Some((m, ChartFormat::from_extension(ext)?)))
        .ok_or_else(|| ApiError::bad_input("format", "a chart is .svg or .png"))?;
    let to = q.to.as_deref().map(|t| instant("to", t)).transpose()?.unwrap_or_else(Utc::now);
    let from = q.from.as_deref().map(|t| instant("from", t)).transpose()?.unwrap_or(to - Duration::hours(1));
    let spec =
        ChartSpec { title: String::new(), from, to, width: q.width.unwrap_or(800), height: q.height.unwrap_or(400) };
    if !chart::WIDTHS.contains(&spec.width) {
        return Err(ApiError::bad_input(
            "width",
            format!("width is {} to {}", chart::WIDTHS.start(), chart::WIDTHS.end()),
        ));
    }
    if !chart::HEIGHTS.contains(&spec.height) {
        return Err(ApiError::bad_input(
            "height",
            format!("height is {} to {}", chart::HEIGHTS.start(), chart::HEIGHTS.end()),
        ));
    }
    let key = match (q.sig.as_deref(), q.exp) {
        (Some(sig), Some(exp)) => {
            let text = chart::link_text(&chart::path(target, metric, format), &spec, exp);
            if exp < Utc::now().timestamp() || !s.keys.verify_link(&text, sig) {
                return Err(ApiError::Unauthenticated("this chart link is expired or not valid"));
            }
            monitor::key_of(target, metric)?
        }
        _ => {
            let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
                .ok_or(ApiError::Unauthenticated("a bearer token is needed"))?;
            let caller = authenticate(s, token).await?;
            monitor::authorize(s, &caller, target, metric).await?
        }
    };
    // One point per two pixels is as fine as a line can show.
    let series = monitor::read(s, key, from, to, i64::from(spec.width / 2)).await?;
    let title = match target {
        Target::Host => format!("{} (host)", key.metric),
        Target::Server(id) => format!("{} (server {id})", key.metric),
    };
    let spec = ChartSpec { title, ..spec };
    let bytes = tokio::task::spawn_blocking(move || chart::render(&series, &spec, format))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(anyhow::anyhow!("chart rendering: {e}")))?;
    Ok((format, bytes))
}

fn instant(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .or_else(|| DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc)))
        .ok_or_else(|| ApiError::bad_input(field, format!("{field} is an RFC 3339 time or Unix milliseconds")))
}

fn answer(result: Result<(ChartFormat, Vec<u8>), ApiError>) -> Response {
    match result {
        Ok((format, bytes)) => {
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            res
        }
        Err(e) => {
            let status = match e.code() {
                ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ErrorCode::NotFound => StatusCode::NOT_FOUND,
                ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
                ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Conflict => StatusCode::CONFLICT,
                ErrorCode::Internal => {
                    tracing::error!(error = ?e, "chart failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let mut ext = serde_json::json!({ "code": e.code().as_str() });
            if let ApiError::BadInput { field, .. } = &e {
                ext["field"] = serde_json::json!(field);
            }
            let body = serde_json::json!({ "errors": [{ "message": e.to_string(), "extensions": ext }] });
            (status, axum::Json(body)).into_response()
        }
    }
}
