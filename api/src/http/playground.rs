//! The GraphiQL playground (when enabled): a page of the hub's own, whose third-party scripts
//! and styles are pinned to exact versions and checked against their hashes (SRI), and whose
//! Content-Security-Policy names each of them; its start-up script is served by the hub.

use axum::{
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
};

const PAGE: &str = include_str!("playground/index.html");
const SCRIPT: &str = include_str!("playground/playground.js");

/// Every source the page may load, and nothing else.
const POLICY: &str = "default-src 'none'; \
    script-src 'self' https://unpkg.com/react@18.3.1/umd/react.production.min.js \
    https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js \
    https://unpkg.com/graphiql@3.9.0/graphiql.min.js; \
    style-src 'unsafe-inline' https://unpkg.com/graphiql@3.9.0/graphiql.min.css; \
    img-src 'self' data:; font-src data:; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// GET /graphql without a query.
pub fn page() -> Response {
    let mut res = Html(PAGE).into_response();
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    res
}

/// GET /graphql/playground.js
pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_third_party_asset_is_pinned_and_allowed_by_name() {
        for (i, part) in PAGE.split("https://unpkg.com/").skip(1).enumerate() {
            let url = part.split('"').next().unwrap_or_default();
            let (package, _) = url.split_once('/').unwrap_or_default();
            assert!(
                package.contains("@") && package.split('@').next_back().is_some_and(|v| v.split('.').count() == 3),
                "asset {i} is pinned to an exact version: {url}"
            );
            assert!(POLICY.contains(&format!("https://unpkg.com/{url}")), "the policy names {url}");
        }
        assert_eq!(PAGE.matches("integrity=\"sha384-").count(), 4, "every asset has its hash");
        assert!(!PAGE.contains("<script>"), "no inline script");
    }
}
