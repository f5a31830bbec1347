//! The web app's static files, with the single-page-app fallback to index.html, under a
//! Content-Security-Policy: scripts only from the hub itself (and the inline bootstrap Trunk
//! writes, allowed by its hash), WebAssembly compiled, no plugins, no framing, no foreign
//! connections.

use std::{convert::Infallible, path::Path};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse},
    routing::{MethodRouter, any},
};
use tower_http::{
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
};

/// Serves the built app from `dir`; without a build, a page that says how to make one.
pub fn service(dir: &Path) -> MethodRouter<(), Infallible> {
    let index = dir.join("index.html");
    if index.is_file() {
        let html = std::fs::read_to_string(&index).unwrap_or_default();
        let policy = HeaderValue::from_str(&content_security_policy(&html))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        any_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
            .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, policy))
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
