//! The HTTP surface: GraphQL over POST and GET, the WebSocket, health checks, the web app.

mod charts;
pub mod client;
mod graphql;
mod health;
mod metrics;
mod playground;
mod session;
pub mod tls;
mod web;

pub use web::content_security_policy;

use std::time::Duration;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Method, Request, header},
    routing::{get, post},
};
use tower::ServiceBuilder;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::app::App;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(app: &App) -> Router {
    let state = graphql::HttpState::new(app);
    let api = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(graphql::websocket))
        .route("/graphql/playground.js", get(playground::script))
        .with_state(state)
        // Answers carry tokens and private data: no cache, shared or not, may keep them.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    // Pages of the configured other sites may call the GraphQL API from a browser, with a bearer
    // token (never with cookies: `/auth/*` stays same-site). None by default.
    let origins = app.services.settings.allowed_origin_list().unwrap_or_default();
    let api = if origins.is_empty() { api } else { api.layer(cors(&origins)) };
    let sessions = Router::new()
        .route("/auth/login", post(session::login))
        .route("/auth/register", post(session::register))
        .route("/auth/refresh", post(session::refresh))
        .route("/auth/logout", post(session::logout))
        .with_state(app.services.clone())
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let health = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .with_state(app.services.db.clone());
    let metrics = Router::new()
        .route("/metrics", get(metrics::get))
        .with_state(metrics::MetricsAccess::new(&app.services.settings, app.services.stats.clone()));

    let charts = Router::new()
        .route("/charts/host/{file}", get(charts::host))
        .route("/charts/server/{id}/{file}", get(charts::server))
        .with_state(app.services.clone());

    let router = api.merge(sessions)
        .merge(health)
        .merge(metrics)
        .merge(charts)
        .fallback_service(web::service(app.services.settings.web_dir.as_deref()))
        .layer(axum::middleware::from_fn_with_state(
            client::TrustedProxies::new(app.services.settings.trusted_proxy_list().unwrap_or_default()),
            client::resolve,
        ))
        .layer(axum::middleware::from_fn_with_state(app.services.stats.clone(), metrics::count))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                        })
                        .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                )),
        );
    // Browsers that reached the hub over HTTPS (its own TLS, or a proxy's for an https public
    // address) keep to HTTPS (a year by default). Not for subdomains: the hub does not own them.
    let settings = &app.services.settings;
    let https = app.tls.is_some() || settings.public_url().starts_with("https://");
    match HeaderValue::from_str(&format!("max-age={}", settings.hsts_max_age)) {
        Ok(hsts) if https && settings.hsts_max_age > 0 => {
            router.layer(SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, hsts))
        }
        _ => router,
    }
}

/// CORS for the GraphQL routes: the configured origins, GET and POST, the headers a GraphQL
/// client sends, no credentials (the bearer token is a header, not a cookie).
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(Duration::from_secs(600))
}

/// How long a WebSocket may stay without connection_init before it is closed (4408).
pub const WS_INIT_TIMEOUT: Duration = Duration::from_secs(10);
