//! GraphQL over HTTP: the public and signed-in operations, the error model, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestHub, code};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn hub_info_is_public(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let res = hub.gql(None, "{ hubInfo { name version registrationOpen } }", json!({})).await;
    assert_eq!(res["data"]["hubInfo"]["name"], "Kutanga Hub");
    assert_eq!(res["data"]["hubInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(res["data"]["hubInfo"]["registrationOpen"], false);
    hub.stop().await;
}

async fn the_admin_sees_the_three_roles(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    let res =
        hub.gql(Some(&token), "{ roles { name builtIn permissions } me { email roles { name } } }", json!({})).await;
    let roles = res["data"]["roles"].as_array().unwrap_or_else(|| panic!("{res}"));
    let names: Vec<&str> = roles.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Admin", "Moderator", "User"]);
    assert_eq!(roles[0]["permissions"].as_array().unwrap().len(), shared::Permission::ALL.len());
    assert_eq!(
        roles[1]["permissions"],
        json!([
            "user.read",
            "role.read",
            "server.read",
            "server.start",
            "server.stop",
            "server.console",
            "metrics.read",
            "audit.read",
            "alert.read"
        ])
    );
    assert_eq!(roles[2]["permissions"], json!([]));
    assert!(roles.iter().all(|r| r["builtIn"] == true));
    assert_eq!(res["data"]["me"]["email"], ADMIN_EMAIL);
    assert_eq!(res["data"]["me"]["roles"][0]["name"], "Admin");
    hub.stop().await;
}

async fn login_answers_the_same_for_unknown_emails(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let q = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let wrong = hub.gql(None, q, json!({ "e": ADMIN_EMAIL, "p": "not the password" })).await;
    let unknown = hub.gql(None, q, json!({ "e": "nobody@hub.test", "p": "not the password" })).await;
    assert_eq!(code(&wrong), "UNAUTHENTICATED");
    assert_eq!(wrong["errors"][0]["message"], unknown["errors"][0]["message"]);
    assert_eq!(wrong["errors"][0]["extensions"], unknown["errors"][0]["extensions"]);
    assert_eq!(wrong["data"], Value::Null);

    // Both failures and the success are in the audit log, with the client's address.
    let token = hub.admin_token().await;
    let log = hub
        .gql(Some(&token), "{ auditLog(first: 10) { action outcome ip actor { email } actorEmail } }", json!({}))
        .await;
    let entries = log["data"]["auditLog"].as_array().unwrap_or_else(|| panic!("{log}"));
    assert_eq!(entries[0]["action"], "auth.login");
    assert_eq!(entries[0]["actor"]["email"], ADMIN_EMAIL);
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    let failed: Vec<&Value> = entries.iter().filter(|e| e["action"] == "auth.login_failed").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|e| e["outcome"] == "failure"));
    hub.stop().await;
}

async fn guarded_fields_need_a_token_and_the_permission(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for q in ["{ me { id } }", "{ roles { name } }", "{ permissions { key } }", "{ auditLog { id } }"] {
        let res = hub.gql(None, q, json!({})).await;
        assert_eq!(code(&res), "UNAUTHENTICATED", "{q}: {res}");
        let res = hub.gql(Some("not.a.token"), q, json!({})).await;
        assert_eq!(code(&res), "UNAUTHENTICATED", "{q} with a bad token: {res}");
    }
    let user = hub.user_with_roles("player@hub.test", &["User"]).await;
    assert_eq!(
        hub.gql(Some(&user), "{ me { email permissions } }", json!({})).await["data"]["me"]["permissions"],
        json!([])
    );
    for q in ["{ roles { name } }", "{ permissions { key } }", "{ auditLog { id } }"] {
        let res = hub.gql(Some(&user), q, json!({})).await;
        assert_eq!(code(&res), "FORBIDDEN", "{q}: {res}");
    }
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let res = hub.gql(Some(&moderator), "{ roles { name } auditLog(first: 1) { id } }", json!({})).await;
    assert!(res["errors"].is_null(), "{res}");
    hub.stop().await;
}

async fn audit_log_filters_and_pages(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    for _ in 0..3 {
        hub.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }
    let q = "query($f: AuditFilter, $first: Int, $after: String) { auditLog(filter: $f, first: $first, after: $after) { id action } }";
    let page1 = hub.gql(Some(&token), q, json!({ "f": { "action": "auth.login" }, "first": 2 })).await;
    let page1 = page1["data"]["auditLog"].as_array().unwrap().clone();
    assert_eq!(page1.len(), 2);
    let after = page1[1]["id"].as_str().unwrap();
    let page2 = hub.gql(Some(&token), q, json!({ "f": { "action": "auth.login" }, "first": 10, "after": after })).await;
    let page2 = page2["data"]["auditLog"].as_array().unwrap().clone();
    assert_eq!(page2.len(), 2, "four logins in all");
    assert!(page1.iter().chain(&page2).all(|e| e["action"] == "auth.login"));
    let ids: Vec<i64> = page1.iter().chain(&page2).map(|e| e["id"].as_str().unwrap().parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no overlap: {ids:?}");

    // Time range: nothing in the future; the seed entries are in the past.
    let future = hub.gql(Some(&token), q, json!({ "f": { "from": "2999-01-01T00:00:00Z" } })).await;
    assert_eq!(future["data"]["auditLog"], json!([]));
    let seeded =
        hub.gql(Some(&token), q, json!({ "f": { "action": "seed.role", "to": "2999-01-01T00:00:00Z" } })).await;
    assert_eq!(seeded["data"]["auditLog"].as_array().unwrap().len(), 3);

    for (vars, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 501 }), "first"),
        (json!({ "after": "x" }), "after"),
        (json!({ "f": { "actorId": "x" } }), "actorId"),
        (json!({ "f": { "from": "2020-01-02T00:00:00Z", "to": "2020-01-01T00:00:00Z" } }), "from"),
    ] {
        let res = hub.gql(Some(&token), q, vars.clone()).await;
        assert_eq!(code(&res), "BAD_USER_INPUT", "{vars}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["field"], field, "{vars}: {res}");
    }
    hub.stop().await;
}

/// Twelve aliased fields of complexity 2: 24, over the limit of 20 set below.
const COMPLEX: &str = "{ a: hubInfo { name } b: hubInfo { name } c: hubInfo { name } d: hubInfo { name } \
    e: hubInfo { name } f: hubInfo { name } g: hubInfo { name } h: hubInfo { name } i: hubInfo { name } \
    j: hubInfo { name } k: hubInfo { name } l: hubInfo { name } }";

async fn bad_requests_get_clear_coded_errors(backend: Backend) {
    let hub = TestHub::start_with(
        common::Store::new(backend).await,
        &["--graphql-max-depth", "4", "--graphql-max-complexity", "20"],
    )
    .await;
    let post = |body: String, ct: &'static str| {
        hub.http.post(hub.url("/graphql")).header("content-type", ct).body(body).send()
    };

    let res = post("{\"query\": ".into(), "application/json").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&res.json().await.unwrap()), "BAD_USER_INPUT");

    let res = post("query=x".into(), "application/x-www-form-urlencoded").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code(&res.json().await.unwrap()), "BAD_USER_INPUT");

    let huge = json!({ "query": format!("{{ hubInfo {{ name }} }} #{}", "x".repeat(2 * 1024 * 1024)) }).to_string();
    // On a connection of its own: the hub answers 413 without reading the rest and closes it, so
    // the shared client's pool must not reuse it for the next request.
    let res = reqwest::Client::new()
        .post(hub.url("/graphql"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&res.json().await.unwrap()), "BAD_USER_INPUT");

    for (query, what) in [
        ("{ hubInfo { name ", "syntax error"),
        ("{ nothingHere }", "unknown field"),
        ("query A { hubInfo { name } }", "unknown operation name"),
        ("{ me { roles { name } roles { permissions } } }", "fine"),
        ("{ me { roles { name } } a: me { roles { name } } }", "fine"),
        ("{ __schema { types { fields { type { ofType { ofType { name } } } } } } }", "too deep"),
        (COMPLEX, "too complex"),
    ] {
        let token = hub.admin_token().await;
        let body = json!({ "query": query, "operationName": if what == "unknown operation name" { "B" } else { "" } });
        let mut body = body;
        if what != "unknown operation name" {
            body.as_object_mut().unwrap().remove("operationName");
        }
        let res: Value = hub
            .http
            .post(hub.url("/graphql"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if what == "fine" {
            assert!(res["errors"].is_null(), "{query}: {res}");
        } else {
            assert_eq!(code(&res), "BAD_USER_INPUT", "{what}: {res}");
        }
    }

    // A mutation sent by GET is refused and changes nothing.
    let token = hub.admin_token().await;
    let logins = "{ auditLog(first: 500, filter: { action: \"auth.login\" }) { id } }";
    let before = hub.gql(Some(&token), logins, json!({})).await["data"]["auditLog"].as_array().unwrap().len();
    let url = hub.url("/graphql?query=mutation%20%7B%20login(email%3A%22admin%40hub.test%22%2C%20password%3A%22a%20long%20admin%20passphrase%22)%20%7B%20accessToken%20%7D%20%7D");
    let res = hub.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(code(&res.json().await.unwrap()), "BAD_USER_INPUT");
    let after = hub.gql(Some(&token), logins, json!({})).await["data"]["auditLog"].as_array().unwrap().len();
    assert_eq!(before, after, "the login sent by GET never ran");

    // A query by GET works.
    let res: Value =
        hub.http.get(hub.url("/graphql?query=%7BhubInfo%7Bversion%7D%7D")).send().await.unwrap().json().await.unwrap();
    assert_eq!(res["data"]["hubInfo"]["version"], env!("CARGO_PKG_VERSION"));
    hub.stop().await;
}

async fn health_playground_and_request_ids(backend: Backend) {
    let empty = tempfile::tempdir().unwrap();
    let hub =
        TestHub::start_with(common::Store::new(backend).await, &["--web-dir", empty.path().to_str().unwrap()]).await;
    let res = hub.http.get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = hub.http.get(hub.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("x-request-id").is_some_and(|v| v.len() >= 32));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let page = hub.http.get(hub.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.starts_with("default-src 'none'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains("graphiql@3.9.0") && html.contains("integrity=\"sha384-"), "pinned, with SRI");
    let script = hub.http.get(hub.url("/graphql/playground.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("GraphiQL.createFetcher"));
    // Development mode answers introspection (production mode does not, see below).
    let res = hub.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(res["data"]["__schema"]["queryType"]["name"], "Query");
    // A web folder with no built app in it: / explains how to build one.
    let root = hub.http.get(hub.url("/servers/1")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(root.text().await.unwrap().contains("cargo xtask web"));
    hub.stop().await;
}

async fn production_mode_hides_the_playground_and_introspection(backend: Backend) {
    let hub = TestHub::start_with(common::Store::new(backend).await, &["--mode", "production"]).await;
    let page = hub.http.get(hub.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let res = hub.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert!(res["data"]["__schema"].is_null(), "{res}");
    let res = hub.gql(None, "{ hubInf { name } }", json!({})).await;
    assert!(!res["errors"][0]["message"].as_str().unwrap().contains("Did you mean"), "{res}");
    hub.stop().await;
}

async fn the_web_app_is_served_with_a_spa_fallback(backend: Backend) {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html><p>app shell</p>").unwrap();
    std::fs::write(web.path().join("app.js"), "console.log(1)").unwrap();
    let dir = web.path().to_str().unwrap().to_owned();
    let hub = TestHub::start_with(common::Store::new(backend).await, &["--web-dir", &dir]).await;
    for path in ["/", "/servers/7/console"] {
        let res = hub.http.get(hub.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let policy = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval'") && policy.contains("frame-ancestors 'none'"));
        assert!(res.text().await.unwrap().contains("app shell"), "{path}");
    }
    let js = hub.http.get(hub.url("/app.js")).send().await.unwrap().text().await.unwrap();
    assert_eq!(js, "console.log(1)");
    // Static files never leave their folder.
    let res = hub.http.get(hub.url("/..%2f..%2fetc%2fpasswd")).send().await.unwrap();
    assert!(!res.text().await.unwrap().contains("root:"));
    hub.stop().await;
}

/// Behind a reverse proxy on the same host: with the proxy trusted, each client is told apart
/// (the metrics allowlist, rate limits and the audit log see the real address); without it,
/// forwarding headers are ignored, so no client chooses its own address.
async fn a_trusted_proxy_tells_who_the_client_is(backend: Backend) {
    let hub = TestHub::start_with(common::Store::new(backend).await, &["--trusted-proxies", "127.0.0.1/32"]).await;
    let metrics = |xff: Option<&'static str>| {
        let mut req = hub.http.get(hub.url("/metrics"));
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        req.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), StatusCode::OK, "the proxy's own host");
    assert_eq!(metrics(Some("203.0.113.5")).await.unwrap().status(), StatusCode::FORBIDDEN, "a client through it");
    assert_eq!(
        metrics(Some("127.0.0.1, 203.0.113.5")).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "a spoofed left"
    );
    // Thirty bad sign-ins by one client lock out that client, not another one.
    let login = |xff: String, password: &str| {
        let body = json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
                           "variables": { "e": ADMIN_EMAIL, "p": password } });
        hub.http.post(hub.url("/graphql")).header("x-forwarded-for", xff).json(&body).send()
    };
    for n in 0..30 {
        let res: Value = login("198.51.100.1".into(), &format!("guess {n}")).await.unwrap().json().await.unwrap();
        assert!(res["errors"].is_array());
    }
    let res: Value = login("198.51.100.1".into(), ADMIN_PASSWORD).await.unwrap().json().await.unwrap();
    assert_eq!(code(&res), "RATE_LIMITED");
    let res: Value = login("198.51.100.2".into(), ADMIN_PASSWORD).await.unwrap().json().await.unwrap();
    assert!(res["errors"].is_null(), "another client behind the same proxy signs in: {res}");
    let token = res["data"]["login"]["accessToken"].as_str().unwrap().to_owned();
    let log =
        hub.gql(Some(&token), "{ auditLog(filter: { action: \"auth.login\" }, first: 1) { ip } }", json!({})).await;
    assert_eq!(log["data"]["auditLog"][0]["ip"], "198.51.100.2", "{log}");
    let store = hub.stop().await;

    // Without the setting the header is ignored: everyone is the peer.
    let hub = TestHub::start_with(store, &[]).await;
    let res = hub.http.get(hub.url("/metrics")).header("x-forwarded-for", "203.0.113.5").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    hub.stop().await;
}

/// GraphQL over HTTP: a client that accepts `application/graphql-response+json` gets a 4xx
/// without `data` for a request that could not run, 200 for one that ran; `application/json`
/// clients get what they always got.
async fn the_graphql_response_media_type_follows_the_specification(backend: Backend) {
    let hub = TestHub::start(backend).await;
    const MEDIA: &str = "application/graphql-response+json";
    let post = |query: &'static str, accept: &str| {
        hub.http
            .post(hub.url("/graphql"))
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(json!({ "query": query }).to_string())
            .send()
    };
    for bad in ["{ hubInfo { name }", "{ noSuchField }", "query ($a: Int) { hubInfo { name } }"] {
        let res = post(bad, MEDIA).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(res.headers()["content-type"], MEDIA);
        let body: Value = res.json().await.unwrap();
        assert!(body.get("data").is_none() && body["errors"][0]["message"].is_string(), "{bad}: {body}");
        let old = post(bad, "application/json").await.unwrap();
        assert_eq!(old.status(), StatusCode::OK, "unchanged for application/json: {bad}");
    }
    let res = post("{ hubInfo { name } }", &format!("{MEDIA}, application/json;q=0.9")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], MEDIA);
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["hubInfo"]["name"], "Kutanga Hub");
    // It ran: a field's error is still a 200 with its data.
    let res = post("{ hubInfo { name } me { id } }", MEDIA).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("data").is_some() && body["errors"][0]["path"][0] == "me", "{body}");
    // GET: a missing query is a 400 for GraphQL clients (a browser still gets the playground),
    // a malformed one too for clients of the new media type.
    let get = |path: &str, accept: &'static str| hub.http.get(hub.url(path)).header("accept", accept).send();
    assert_eq!(get("/graphql", "application/json").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(get("/graphql", MEDIA).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(get("/graphql", "text/html,*/*;q=0.8").await.unwrap().status(), StatusCode::OK);
    let res = get("/graphql?query=%7B%20hubInfo", MEDIA).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    hub.stop().await;
}

/// CORS on the GraphQL API only for the configured sites (none by default), never with
/// credentials, never on the cookie routes.
async fn other_sites_use_the_api_only_when_allowed(backend: Backend) {
    const SITE: &str = "https://console.example.org";
    let preflight = |hub: &TestHub, path: &str, origin: &'static str| {
        hub.http
            .request(reqwest::Method::OPTIONS, hub.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let hub = TestHub::start(backend).await;
    let res = preflight(&hub, "/graphql", SITE).await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none(), "no CORS by default");
    hub.stop().await;

    let store = common::Store::new(backend).await;
    let hub = TestHub::start_with(store, &["--allowed-origins", SITE]).await;
    let res = preflight(&hub, "/graphql", SITE).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], SITE);
    let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    assert!(res.headers().get("access-control-allow-credentials").is_none());
    let res = hub
        .http
        .post(hub.url("/graphql"))
        .header("origin", SITE)
        .header("content-type", "application/json")
        .body(json!({ "query": "{ hubInfo { name } }" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], SITE);
    let res = preflight(&hub, "/graphql", "https://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none(), "another site");
    let res = preflight(&hub, "/auth/refresh", SITE).await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none(), "the cookie routes stay same-site");
    hub.stop().await;
}

on_both!(
    other_sites_use_the_api_only_when_allowed,
    the_graphql_response_media_type_follows_the_specification,
    a_trusted_proxy_tells_who_the_client_is,
    hub_info_is_public,
    the_admin_sees_the_three_roles,
    login_answers_the_same_for_unknown_emails,
    guarded_fields_need_a_token_and_the_permission,
    audit_log_filters_and_pages,
    bad_requests_get_clear_coded_errors,
    health_playground_and_request_ids,
    production_mode_hides_the_playground_and_introspection,
    the_web_app_is_served_with_a_spa_fallback,
);
