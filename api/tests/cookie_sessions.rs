//! The web app's sessions: the refresh token in an HttpOnly cookie (never in a body), rotated on
//! refresh with theft detection, ended by logout; JSON only, so that no other site can post.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, Store, TestHub};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// The `kutanga_refresh` cookie a response sets: (value, whole Set-Cookie line).
fn set_cookie(res: &Response) -> (String, String) {
    let line = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|l| l.starts_with("kutanga_refresh="))
        .expect("a kutanga_refresh cookie");
    let value = line.split(';').next().unwrap().trim_start_matches("kutanga_refresh=").to_owned();
    (value, line)
}

async fn post(hub: &TestHub, path: &str, cookie: Option<&str>, body: Value) -> Response {
    let mut req = hub.http.post(hub.url(path)).json(&body);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("kutanga_refresh={c}"));
    }
    req.send().await.unwrap()
}

async fn a_browser_session_lives_in_an_http_only_cookie(backend: Backend) {
    // No grace for a replaced token: the replay below comes at once.
    let hub = TestHub::start_with(Store::new(backend).await, &["--refresh-reuse-grace", "0"]).await;
    let res = post(&hub, "/auth/login", None, json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (first, line) = set_cookie(&res);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/auth", "Max-Age="] {
        assert!(line.contains(attribute), "{attribute}: {line}");
    }
    assert!(!line.contains("Secure"), "plain http here: {line}");
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refreshToken").is_none() && !body.to_string().contains(&first), "never in the body: {body}");
    let access = body["accessToken"].as_str().unwrap().to_owned();
    // The body is shared::session::WebSession: the expiry as a time and as seconds from now
    // (a client with a skewed clock counts from its own).
    let session: shared::session::WebSession = serde_json::from_value(body.clone()).unwrap();
    assert!((890..=900).contains(&session.access_token_expires_in), "{body}");
    assert!(session.access_token_expires_at.ends_with('Z'), "{body}");
    let me = hub.gql(Some(&access), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], ADMIN_EMAIL);

    // Refresh: a new access token and the cookie rotated.
    let res = post(&hub, "/auth/refresh", Some(&first), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (second, _) = set_cookie(&res);
    assert_ne!(first, second);
    let fresh = res.json::<Value>().await.unwrap()["accessToken"].as_str().unwrap().to_owned();
    assert!(hub.gql(Some(&fresh), "{ me { id } }", json!({})).await["errors"].is_null());

    // The rotated cookie presented again: theft, the session ends, the cookie is forgotten.
    let res = post(&hub, "/auth/refresh", Some(&first), json!({})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (cleared, line) = set_cookie(&res);
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    assert_eq!(res.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(post(&hub, "/auth/refresh", Some(&second), json!({})).await.status(), StatusCode::UNAUTHORIZED);

    // Logout ends the session of the cookie.
    let res = post(&hub, "/auth/login", None, json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })).await;
    let (third, _) = set_cookie(&res);
    let access = res.json::<Value>().await.unwrap()["accessToken"].as_str().unwrap().to_owned();
    let res = post(&hub, "/auth/logout", Some(&third), json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(&res).1.contains("Max-Age=0"));
    assert_eq!(common::code(&hub.gql(Some(&access), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    assert_eq!(post(&hub, "/auth/refresh", Some(&third), json!({})).await.status(), StatusCode::UNAUTHORIZED);
    let log = hub
        .gql(Some(&hub.admin_token().await), "{ auditLog(filter: { action: \"auth.logout\" }) { id } }", json!({}))
        .await;
    assert_eq!(log["data"]["auditLog"].as_array().unwrap().len(), 1, "{log}");
    hub.stop().await;
}

async fn only_json_from_this_site_reaches_the_session_routes(backend: Backend) {
    let hub = TestHub::start(backend).await;
    // What a form on another site can send: refused before anything happens.
    for path in ["/auth/login", "/auth/refresh", "/auth/logout", "/auth/register"] {
        let res = hub
            .http
            .post(hub.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email={ADMIN_EMAIL}&password=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
        let res = hub.http.post(hub.url(path)).header("content-type", "text/plain").body("{}").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
    }
    // Errors come in the API's shape, with their HTTP status.
    let res = post(&hub, "/auth/login", None, json!({ "email": ADMIN_EMAIL, "password": "wrong guess" })).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let res = post(&hub, "/auth/refresh", None, json!({})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res =
        post(&hub, "/auth/register", None, json!({ "email": "new@hub.test", "password": "a long enough passphrase" }))
            .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "registration is closed by default");
    for n in 0..12 {
        let res =
            post(&hub, "/auth/login", None, json!({ "email": ADMIN_EMAIL, "password": format!("guess {n}") })).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
            hub.stop().await;
            return;
        }
    }
    panic!("the sign-in limit applies to cookie sign-ins too");
}

async fn registration_through_the_cookie_route(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--registration", "open"]).await;
    let res = post(
        &hub,
        "/auth/register",
        None,
        json!({ "email": "fresh@hub.test", "password": "a long enough passphrase 7" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(&res);
    assert!(!cookie.is_empty());
    let access = res.json::<Value>().await.unwrap()["accessToken"].as_str().unwrap().to_owned();
    let me = hub.gql(Some(&access), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "fresh@hub.test");
    let res = post(
        &hub,
        "/auth/register",
        None,
        json!({ "email": "fresh@hub.test", "password": "a long enough passphrase 7" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    hub.stop().await;
}

on_both!(
    a_browser_session_lives_in_an_http_only_cookie,
    only_json_from_this_site_reaches_the_session_routes,
    registration_through_the_cookie_route,
);
