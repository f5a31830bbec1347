//! The web app's static files, with the single-page-app fallback to index.html.

use std::{convert::Infallible, path::Path};

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse},
    routing::{MethodRouter, any},
};
use tower_http::services::{ServeDir, ServeFile};

/// Serves the built app from `dir`; without a build, a page that says how to make one.
pub fn service(dir: &Path) -> MethodRouter<(), Infallible> {
    let index = dir.join("index.html");
    if index.is_file() {
        any_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
    } else {
        tracing::warn!(dir = %dir.display(), "the web app is not built; run `cargo xtask web`");
        any(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html("<!doctype html><title>Kutanga Hub</title><p>The web app is not built. Run <code>cargo xtask web</code>, or use the API at <a href=\"/graphql\">/graphql</a>.</p>"),
            )
                .into_response()
        })
    }
}

fn any_service(svc: ServeDir<ServeFile>) -> MethodRouter<(), Infallible> {
    axum::routing::any_service(svc)
}
