//! Liveness and readiness for supervisors and load balancers.

use axum::{extract::State, http::StatusCode};

use crate::db::Db;

/// 200 while the process serves.
pub async fn live() -> &'static str {
    "ok"
}

/// 200 once the database answers, 503 otherwise.
pub async fn ready(State(db): State<Db>) -> (StatusCode, &'static str) {
    if db.ping().await { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "database unavailable") }
}
