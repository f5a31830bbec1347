//! GET /metrics for Prometheus, behind an address allowlist (loopback by default) and an
//! optional bearer token; and the middleware that counts every HTTP request for it.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{Extension, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::client::ClientAddr;
use crate::{config::Settings, stats::Stats};

/// Who may read /metrics.
#[derive(Clone)]
pub struct MetricsAccess {
    stats: Stats,
    allow: Arc<Vec<IpNet>>,
    /// SHA-256 of the token: compared digest to digest.
    token: Option<[u8; 32]>,
}

impl MetricsAccess {
    pub fn new(settings: &Settings, stats: Stats) -> Self {
        Self {
            stats,
            allow: Arc::new(settings.metrics_allow_list().unwrap_or_default()),
            token: settings.metrics_token.as_deref().map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }
}

/// The text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn get(
    State(access): State<MetricsAccess>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
) -> Response {
    if !access.allow.iter().any(|net| net.contains(&ip)) {
        return (StatusCode::FORBIDDEN, "metrics are not served to this address (KUTANGA_METRICS_ALLOW)\n")
            .into_response();
    }
    if let Some(expected) = access.token {
        let given = super::graphql::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
        let ok = given.is_some_and(|t| <[u8; 32]>::from(Sha256::digest(t.as_bytes())) == expected);
        if !ok {
            let mut res =
                (StatusCode::UNAUTHORIZED, "a bearer token is needed (KUTANGA_METRICS_TOKEN)\n").into_response();
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], access.stats.render()).into_response()
}

/// Counts each request by method, route and status.
pub async fn count(State(stats): State<Stats>, req: Request, next: Next) -> Response {
    let (method, route) = (req.method().as_str().to_owned(), route_of(req.uri().path()));
    let started = Instant::now();
    let res = next.run(req).await;
    stats.http_request(&method, route, res.status().as_u16(), started.elapsed().as_secs_f64());
    res
}

/// The route a path belongs to: a bounded set of labels.
fn route_of(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        p if p.starts_with("/charts/") => "/charts",
        _ => "static",
    }
}
