//! The web app: built into the binary (see `build.rs`), or served from a folder when
//! `KUTANGA_WEB_DIR` names one (development), with the single-page-app fallback to index.html,
//! under a Content-Security-Policy: scripts only from the hub itself (and the inline bootstrap
//! Trunk writes, allowed by its hash), WebAssembly compiled, no plugins, no framing, no foreign
//! connections.
//!
//! The built-in files are served by memory-serve: each with its ETag (answered 304 when the
//! browser has it), brotli or gzip as the browser prefers (release builds), `index.html`
//! revalidated on every load and the other files, whose names carry their hash, kept for a year.

use std::path::Path;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse},
};
use memory_serve::CacheControl;
use tokio::sync::OnceCell;
use tower::ServiceExt;
use tower_http::{
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
};

/// The built-in app's `index.html`; empty when the binary was built without the app.
const INDEX: &str = include_str!(concat!(env!("OUT_DIR"), "/web-index.html"));

/// Serves the app from `dir` when given, else the one built in; without either, a page that
/// says how to make one.
pub fn service(dir: Option<&Path>) -> Router {
    match dir {
        Some(dir) => folder(dir),
        None if !INDEX.is_empty() => {
            // Made in the background from the start: in release builds every file is unpacked
            // and gzipped once (a tenth of a second), which the hub need not wait for.
            tokio::spawn(built_in());
            Router::new().fallback(|request: Request| async move {
                // Pages and files are read, never written to.
                if !matches!(*request.method(), Method::GET | Method::HEAD) {
                    return StatusCode::METHOD_NOT_ALLOWED.into_response();
                }
                built_in().await.clone().oneshot(request).await.unwrap_or_else(|e| match e {})
            })
        }
        None => not_built("the binary was built without the web app"),
    }
}

/// The built-in app's files, made once for the process.
async fn built_in() -> &'static Router {
    static ROUTER: OnceCell<Router> = OnceCell::const_new();
    ROUTER
        .get_or_init(|| async {
            let made = tokio::task::spawn_blocking(|| {
                memory_serve::load!()
                    .index_file(Some("/index.html"))
                    .fallback(Some("/index.html"))
                    .fallback_status(StatusCode::OK)
                    .html_cache_control(CacheControl::NoCache)
                    .cache_control(CacheControl::Long)
                    .into_router()
            });
            with_policy(made.await.unwrap_or_else(|_| not_built("the web app could not be unpacked")), INDEX)
        })
        .await
}

fn folder(dir: &Path) -> Router {
    let index = dir.join("index.html");
    match std::fs::read_to_string(&index) {
        Ok(html) => {
            with_policy(Router::new().fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index))), &html)
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "no web app in KUTANGA_WEB_DIR; run `cargo xtask web`");
            not_built("KUTANGA_WEB_DIR holds no built app")
        }
    }
}

fn with_policy(router: Router, index_html: &str) -> Router {
    let policy = HeaderValue::from_str(&content_security_policy(index_html))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    router.layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, policy))
}

fn not_built(why: &'static str) -> Router {
    let page = move || async move {
        let body = format!(
            "<!doctype html><title>Kutanga Hub</title><p>The web app is not here: {why}. Run \
             <code>cargo xtask web</code> and build the hub again, or use the API at <a href=\"/graphql\">/graphql</a>.</p>"
        );
        (StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response()
    };
    Router::new().fallback(page)
}

/// The policy of the app's pages: the hashes of the inline scripts of `index_html` are the only
/// inline code allowed.
pub fn content_security_policy(index_html: &str) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let mut hashes = String::new();
    let mut rest = index_html;
    while let Some(start) = rest.find("<script") {
        let Some(open_end) = rest[start..].find('>').map(|i| start + i + 1) else { break };
        let Some(close) = rest[open_end..].find("</script>").map(|i| open_end + i) else { break };
        let tag = &rest[start..open_end];
        if !tag.contains("src=") {
            let digest = Sha256::digest(&rest.as_bytes()[open_end..close]);
            hashes.push_str(&format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        rest = &rest[close + "</script>".len()..];
    }
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_their_hash_only() {
        let html = "<head><script type=\"module\">import init from '/app.js';</script>\
                    <script src=\"/x.js\"></script></head>";
        let policy = content_security_policy(html);
        // printf "import init from '/app.js';" | openssl dgst -sha256 -binary | base64
        assert!(policy.contains("'sha256-"), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 1, "a script with src needs no hash");
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"));
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains("object-src 'none'"));
        assert!(!policy.contains("unsafe-eval'") || policy.contains("wasm-unsafe-eval"));
    }
}
