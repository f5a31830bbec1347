//! Alerts on real samples and real crashes: a threshold held for a while fires and resolves
//! (audited, live on the `alerts` subscription, acknowledged), crash rules, and webhook delivery
//! to a local HTTP server: retries, a timeout, no redirect to another host, Discord and Slack
//! bodies, and failures shown on the alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    routing::post,
};
use common::{Backend, Store, TestHub, Ws, code, ws_as};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A webhook receiver: records every body by path and answers as the path says.
#[derive(Clone, Default)]
struct Sink {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    flaky: Arc<AtomicU32>,
    port: u16,
}

impl Sink {
    async fn start() -> (SocketAddr, Sink) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink { port: addr.port(), ..Default::default() };
        let app = Router::new().route("/{path}", post(receive)).with_state(sink.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, sink)
    }

    fn bodies(&self, path: &str) -> Vec<Value> {
        self.got.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, b)| b.clone()).collect()
    }

    /// Waits until `path` has received `n` bodies.
    async fn wait(&self, path: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.bodies(path);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{path} got {} of {n} bodies", got.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(
    State(sink): State<Sink>,
    Path(path): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, HeaderMap) {
    sink.got.lock().unwrap().push((path.clone(), body));
    let mut headers = HeaderMap::new();
    let status = match path.as_str() {
        "flaky" if sink.flaky.fetch_add(1, Ordering::SeqCst) < 2 => StatusCode::INTERNAL_SERVER_ERROR,
        "fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::NO_CONTENT
        }
        // Same place, another host name: must not be followed.
        "redirect" => {
            headers.insert(header::LOCATION, format!("http://localhost:{}/hook", sink.port).parse().unwrap());
            StatusCode::TEMPORARY_REDIRECT
        }
        _ => StatusCode::NO_CONTENT,
    };
    (status, headers)
}

const CREATE_RULE: &str = "mutation($i: AlertRuleInput!) { createAlertRule(input: $i) { id name metric serverId comparison threshold forSeconds enabled webhookHost webhookFormat } }";
const ALERTS: &str = "query($s: AlertState) { alerts(state: $s) { id state value serverId startedAt resolvedAt webhookError acknowledgedBy { email } rule { id name } } }";

async fn create_rule(hub: &TestHub, token: &str, input: Value) -> Value {
    let res = hub.gql(Some(token), CREATE_RULE, json!({ "i": input })).await;
    assert!(res["errors"].is_null(), "{res}");
    res["data"]["createAlertRule"].clone()
}

/// The alerts of a rule, once `done` holds for them.
async fn wait_alerts(hub: &TestHub, token: &str, rule: &Value, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = hub.gql(Some(token), ALERTS, json!({})).await;
        let mine: Vec<Value> = res["data"]["alerts"]
            .as_array()
            .unwrap_or_else(|| panic!("{res}"))
            .iter()
            .filter(|a| a["rule"]["id"] == rule["id"])
            .cloned()
            .collect();
        if done(&mine) {
            return mine;
        }
        assert!(Instant::now() < deadline, "alerts of rule {} never got there: {mine:?}", rule["name"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next alert event on the subscription.
async fn next_alert(ws: &mut Ws) -> Value {
    loop {
        let msg =
            tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("an alert event").unwrap().unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "next" {
                return v["payload"]["data"]["alerts"].clone();
            }
            assert_ne!(v["type"], "error", "{v}");
        }
    }
}

async fn a_held_threshold_fires_resolves_and_is_acknowledged(backend: Backend) {
    let (sink_addr, sink) = Sink::start().await;
    let hub =
        TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1", "--webhook-allow", "127.0.0.1"])
            .await;
    let admin = hub.admin_token().await;
    let server = hub.create_burner(&admin).await;
    let rule = create_rule(
        &hub,
        &admin,
        json!({ "name": "hot", "metric": "cpu.percent", "serverId": server, "threshold": 20.0, "forSeconds": 2,
                "webhookUrl": format!("http://{sink_addr}/hook?token=secret") }),
    )
    .await;
    assert_eq!(rule["comparison"], "ABOVE");
    assert_eq!(rule["webhookHost"], "127.0.0.1", "the URL itself (with its token) is never shown");
    assert_eq!(rule["webhookFormat"], "GENERIC");

    let mut ws = ws_as(&hub, &admin).await;
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { alerts { id state serverId acknowledgedBy { email } } }" } });
    ws.send(Message::Text(sub.to_string().into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": server })).await;
    let fired = next_alert(&mut ws).await;
    assert_eq!((fired["state"].as_str(), fired["serverId"].as_str()), (Some("FIRING"), Some(server.as_str())));
    assert!(started.elapsed() >= Duration::from_secs(2), "the condition must hold for forSeconds first");
    let body = &sink.wait("hook", 1).await[0];
    assert_eq!(body["event"], "alert.firing");
    assert_eq!(body["rule"]["name"], "hot");
    assert!(body["alert"]["value"].as_f64().unwrap() > 20.0, "{body}");
    assert!(body["text"].as_str().unwrap().contains("[FIRING] hot on burn"), "{body}");

    // Moderators see alerts but may not acknowledge them; the admin does, once.
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let firing = wait_alerts(&hub, &moderator, &rule, |a| a.len() == 1).await;
    let ack = "mutation($id: ID!) { acknowledgeAlert(id: $id) { id acknowledgedBy { email } } }";
    let res = hub.gql(Some(&moderator), ack, json!({ "id": firing[0]["id"] })).await;
    assert_eq!(code(&res), "FORBIDDEN");
    let res = hub.gql(Some(&admin), ack, json!({ "id": firing[0]["id"] })).await;
    assert_eq!(res["data"]["acknowledgeAlert"]["acknowledgedBy"]["email"], common::ADMIN_EMAIL, "{res}");
    assert_eq!(next_alert(&mut ws).await["acknowledgedBy"]["email"], common::ADMIN_EMAIL);
    let res = hub.gql(Some(&admin), ack, json!({ "id": firing[0]["id"] })).await;
    assert_eq!(code(&res), "CONFLICT");

    // Stopped, the server has no CPU any more: the alert resolves, once.
    hub.gql(Some(&admin), "mutation($id: ID!) { killServer(id: $id) { state } }", json!({ "id": server })).await;
    let resolved = next_alert(&mut ws).await;
    assert_eq!(resolved["state"], "RESOLVED");
    assert_eq!(sink.wait("hook", 2).await[1]["event"], "alert.resolved");
    let all = wait_alerts(&hub, &admin, &rule, |a| a.len() == 1 && a[0]["state"] == "RESOLVED").await;
    assert!(all[0]["resolvedAt"].is_string() && all[0]["webhookError"].is_null(), "{all:?}");

    // Both changes are in the audit log, made by the hub itself.
    let log =
        hub.gql(Some(&admin), "{ auditLog(first: 100) { action actor { email } targetId detail } }", json!({})).await;
    let entries = log["data"]["auditLog"].as_array().unwrap();
    for action in ["alert.fire", "alert.resolve", "alert.acknowledge", "alert_rule.create"] {
        assert!(entries.iter().any(|e| e["action"] == action), "{action} missing: {log}");
    }
    assert!(entries.iter().filter(|e| e["action"] == "alert.fire").all(|e| e["actor"].is_null()));
    assert!(!log.to_string().contains("secret"), "the webhook token never reaches the audit log");

    // Deleting the rule deletes its alerts.
    let res =
        hub.gql(Some(&admin), "mutation($id: ID!) { deleteAlertRule(id: $id) }", json!({ "id": rule["id"] })).await;
    assert_eq!(res["data"]["deleteAlertRule"], true, "{res}");
    let res = hub.gql(Some(&admin), ALERTS, json!({})).await;
    assert_eq!(res["data"]["alerts"], json!([]));
    hub.stop().await;
}

async fn webhooks_retry_time_out_refuse_foreign_redirects_and_speak_discord_and_slack(backend: Backend) {
    let (addr, sink) = Sink::start().await;
    let hub = TestHub::start_with(
        Store::new(backend).await,
        &[
            "--metrics-interval",
            "1",
            "--webhook-timeout",
            "1",
            "--webhook-retries",
            "2",
            "--webhook-backoff-ms",
            "50",
            "--public-url",
            "https://hub.example",
            "--webhook-allow",
            "127.0.0.1/32",
        ],
    )
    .await;
    let admin = hub.admin_token().await;
    // Every rule fires on the first sample: the host always uses some memory.
    let rule = |name: &str, path: &str, format: Option<&str>| {
        json!({ "name": name, "metric": "memory.used_bytes", "threshold": 0.0, "forSeconds": 0,
                "webhookUrl": format!("http://{addr}/{path}"), "webhookFormat": format })
    };
    let flaky = create_rule(&hub, &admin, rule("flaky", "flaky", None)).await;
    let failing = create_rule(&hub, &admin, rule("failing", "fail", None)).await;
    let slow = create_rule(&hub, &admin, rule("slow", "slow", None)).await;
    let redirected = create_rule(&hub, &admin, rule("redirected", "redirect", None)).await;
    let discord = create_rule(&hub, &admin, rule("discord", "discord", Some("DISCORD"))).await;
    let slack = create_rule(&hub, &admin, rule("slack", "slack", Some("SLACK"))).await;

    // Two failures, then delivered: no error stays on the alert.
    assert_eq!(sink.wait("flaky", 3).await.len(), 3);
    let a = wait_alerts(&hub, &admin, &flaky, |a| a.len() == 1).await;
    assert!(a[0]["webhookError"].is_null(), "{a:?}");
    let a = wait_alerts(&hub, &admin, &failing, |a| a.len() == 1 && a[0]["webhookError"].is_string()).await;
    assert_eq!(a[0]["webhookError"], "HTTP 500 (after 3 attempts)");
    assert_eq!(sink.bodies("fail").len(), 3);
    let a = wait_alerts(&hub, &admin, &slow, |a| a.len() == 1 && a[0]["webhookError"].is_string()).await;
    assert_eq!(a[0]["webhookError"], format!("{NO_ANSWER} (after 3 attempts)"), "a timeout says no more than that");
    let a = wait_alerts(&hub, &admin, &redirected, |a| a.len() == 1 && a[0]["webhookError"].is_string()).await;
    assert!(a[0]["webhookError"].as_str().unwrap().contains("redirect to another host is not followed"), "{a:?}");
    assert!(sink.bodies("hook").is_empty(), "the redirect was not followed");

    let d = &sink.wait("discord", 1).await[0];
    assert!(d["embeds"][0]["title"].as_str().unwrap().starts_with("[FIRING] discord"), "{d}");
    assert!(d["embeds"][0]["description"].as_str().unwrap().contains("memory.used_bytes"), "{d}");
    assert_eq!(d["embeds"][0]["color"], 0xD9_3025);
    let s = &sink.wait("slack", 1).await[0];
    assert!(s["text"].as_str().unwrap().starts_with("[FIRING] slack"), "{s}");
    assert_eq!(s["blocks"][0]["type"], "section");
    let _ = (discord, slack);

    // The image is a signed link to the chart of the metric: it works without a token, for
    // exactly what it signs.
    let image = d["embeds"][0]["image"]["url"].as_str().expect("a chart in the embed").to_owned();
    let path = image.strip_prefix("https://hub.example").expect("the public address");
    assert!(path.starts_with("/charts/host/memory.used_bytes.png?"), "{path}");
    let res = hub.http.get(hub.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let tampered = path.replace("width=800", "width=801");
    assert_eq!(hub.http.get(hub.url(&tampered)).send().await.unwrap().status(), 401);
    let slack_image = s["blocks"][1]["image_url"].as_str().expect("Slack shows a chart too");
    assert!(slack_image.starts_with("https://hub.example/charts/host/memory.used_bytes.png?"), "{slack_image}");
    assert!(sink.bodies("flaky")[0]["chartUrl"].as_str().unwrap().starts_with("https://hub.example/charts/"));

    // The collector went on all along: live samples still come.
    let res = hub
        .gql(
            Some(&admin),
            "query($f: DateTime!, $t: DateTime!) { hostMetrics(metric: \"cpu.percent\", range: {from: $f, to: $t}) { points { at } } }",
            json!({ "f": (chrono::Utc::now() - chrono::Duration::seconds(10)).to_rfc3339(), "t": chrono::Utc::now().to_rfc3339() }),
        )
        .await;
    assert!(res["data"]["hostMetrics"]["points"].as_array().unwrap().len() >= 5, "{res}");
    hub.stop().await;
}

async fn a_crash_rule_fires_for_any_server(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let rule = create_rule(
        &hub,
        &admin,
        json!({ "name": "crashes", "metric": "server.crashed", "threshold": 0.0, "forSeconds": 0 }),
    )
    .await;
    let def = "name = \"Quitter\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"sleep 1; exit 3\"]\n[crash]\nauto_restart = false\n";
    let server = hub.create_server_from(&admin, "quitter", def).await;
    hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": server })).await;
    let a = wait_alerts(&hub, &admin, &rule, |a| a.len() == 1).await;
    assert_eq!((a[0]["state"].as_str(), a[0]["serverId"].as_str()), (Some("FIRING"), Some(server.as_str())));
    // Started again, it runs: the alert resolves.
    hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": server })).await;
    wait_alerts(&hub, &admin, &rule, |a| a.len() == 1 && a[0]["state"] == "RESOLVED").await;
    hub.stop().await;
}

async fn rules_are_checked_and_guarded(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let bad = |field: &str, input: Value| (field.to_owned(), input);
    let base = json!({ "name": "r", "metric": "cpu.percent", "threshold": 90.0, "forSeconds": 60 });
    let with = |k: &str, v: Value| {
        let mut i = base.clone();
        i[k] = v;
        i
    };
    for (field, input) in [
        bad("metric", with("metric", json!("cpu"))),
        bad("name", with("name", json!("  "))),
        bad("forSeconds", with("forSeconds", json!(-1))),
        bad("webhookUrl", with("webhookUrl", json!("ftp://example.com/hook"))),
        bad("webhookUrl", with("webhookUrl", json!("file:///etc/passwd"))),
        bad("serverId", with("serverId", json!("999"))),
    ] {
        let res = hub.gql(Some(&admin), CREATE_RULE, json!({ "i": input })).await;
        assert_eq!(code(&res), "BAD_USER_INPUT", "{input}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["field"], field.as_str(), "{res}");
    }
    let res = hub.gql(Some(&admin), "{ alertRules { id } }", json!({})).await;
    assert_eq!(res["data"]["alertRules"], json!([]), "nothing half-made is left");
    // A Moderator reads rules but cannot make them; a User sees nothing.
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    assert!(hub.gql(Some(&moderator), "{ alertRules { id } }", json!({})).await["errors"].is_null());
    assert_eq!(code(&hub.gql(Some(&moderator), CREATE_RULE, json!({ "i": base })).await), "FORBIDDEN");
    let user = hub.user_with_roles("user@hub.test", &["User"]).await;
    assert_eq!(code(&hub.gql(Some(&user), "{ alerts { id } }", json!({})).await), "FORBIDDEN");
    let mut ws = ws_as(&hub, &user).await;
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { alerts { id } }" } });
    ws.send(Message::Text(sub.to_string().into())).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    hub.stop().await;
}

async fn a_paused_rule_resolves_and_stays_quiet(backend: Backend) {
    let hub =
        TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1", "--webhook-allow", "127.0.0.1"])
            .await;
    let admin = hub.admin_token().await;
    let rule = create_rule(
        &hub,
        &admin,
        json!({ "name": "always", "metric": "memory.used_bytes", "threshold": 0.0, "forSeconds": 0 }),
    )
    .await;
    wait_alerts(&hub, &admin, &rule, |a| a.len() == 1 && a[0]["state"] == "FIRING").await;
    let pause = "mutation($id: ID!, $on: Boolean!) { setAlertRuleEnabled(id: $id, enabled: $on) { enabled } }";
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let res = hub.gql(Some(&moderator), pause, json!({ "id": rule["id"], "on": false })).await;
    assert_eq!(code(&res), "FORBIDDEN");
    let res = hub.gql(Some(&admin), pause, json!({ "id": rule["id"], "on": false })).await;
    assert_eq!(res["data"]["setAlertRuleEnabled"]["enabled"], false, "{res}");
    let a = wait_alerts(&hub, &admin, &rule, |a| a.len() == 1 && a[0]["state"] == "RESOLVED").await;
    assert!(a[0]["resolvedAt"].is_string());
    // Paused, it raises nothing although its condition still holds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(wait_alerts(&hub, &admin, &rule, |_| true).await.len(), 1);
    // Resumed, it fires again: a new alert.
    hub.gql(Some(&admin), pause, json!({ "id": rule["id"], "on": true })).await;
    let a = wait_alerts(&hub, &admin, &rule, |a| a.len() == 2).await;
    assert_eq!((a[0]["state"].as_str(), a[1]["state"].as_str()), (Some("FIRING"), Some("RESOLVED")));
    let log = hub.gql(Some(&admin), "{ auditLog(first: 50) { action } }", json!({})).await.to_string();
    assert!(log.contains("alert_rule.disable") && log.contains("alert_rule.enable"), "{log}");
    let res = hub.gql(Some(&admin), pause, json!({ "id": "999", "on": true })).await;
    assert_eq!(code(&res), "NOT_FOUND");
    hub.stop().await;
}

const NO_ANSWER: &str = "no HTTP answer (the host is unreachable, refused, not allowed or too slow)";

/// Webhooks reach public addresses only: rules naming loopback, private, link-local or internal
/// targets in any spelling are refused, and a delivery to such an address (a rule stored before,
/// or a name that resolves there later) is not sent and fails like any unreachable host.
async fn webhooks_never_reach_internal_addresses(backend: Backend) {
    let (addr, sink) = Sink::start().await;
    let hub = TestHub::start_with(
        Store::new(backend).await,
        &["--metrics-interval", "1", "--webhook-retries", "0", "--webhook-allow", "192.0.2.0/24"],
    )
    .await;
    let admin = hub.admin_token().await;
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/graphql"),
        format!("http://[::1]:{port}/x"),
        "http://2130706433/".to_owned(),
        "http://0x7f000001/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        "http://10.0.0.1:6379/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://0.0.0.0:8080/".to_owned(),
        "http://[fe80::1]/".to_owned(),
    ] {
        let input =
            json!({ "name": "r", "metric": "memory.used_bytes", "threshold": 0.0, "forSeconds": 0, "webhookUrl": url });
        let res = hub.gql(Some(&admin), CREATE_RULE, json!({ "i": input })).await;
        assert_eq!(code(&res), "BAD_USER_INPUT", "{url}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["field"], "webhookUrl", "{url}: {res}");
    }
    // An allowed range passes validation.
    let input = json!({ "name": "lan", "metric": "memory.used_bytes", "threshold": 1e18, "forSeconds": 0,
                        "webhookUrl": "http://192.0.2.10/x" });
    assert!(hub.gql(Some(&admin), CREATE_RULE, json!({ "i": input })).await["errors"].is_null());
    // A rule that points at the hub's own loopback anyway (stored before this check): the
    // delivery is never sent.
    {
        use sea_orm::{ActiveModelTrait, Set};
        entity::alert_rule::ActiveModel {
            name: Set("sneaky".into()),
            metric: Set("memory.used_bytes".into()),
            server_id: Set(None),
            comparison: Set("above".into()),
            threshold: Set(0.0),
            for_seconds: Set(0),
            webhook_url: Set(Some(format!("http://127.0.0.1:{port}/sneaky"))),
            webhook_format: Set(None),
            enabled: Set(true),
            created_by: Set(None),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        }
        .insert(hub.app.services.db.conn())
        .await
        .unwrap();
        hub.app.services.alerts.rules_changed();
    }
    let rules = hub.gql(Some(&admin), "{ alertRules { id name } }", json!({})).await;
    let sneaky =
        rules["data"]["alertRules"].as_array().unwrap().iter().find(|r| r["name"] == "sneaky").unwrap().clone();
    let a = wait_alerts(&hub, &admin, &sneaky, |a| a.len() == 1 && a[0]["webhookError"].is_string()).await;
    assert_eq!(a[0]["webhookError"], format!("{NO_ANSWER} (after 1 attempt)"), "{a:?}");
    assert!(sink.bodies("sneaky").is_empty(), "nothing reached the loopback listener");
    hub.stop().await;
}

/// A GraphQL request as if from `ip` (the hub trusts the test's loopback proxy).
async fn gql_from(hub: &TestHub, ip: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req = hub
        .http
        .post(hub.url("/graphql"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().json().await.unwrap()
}

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }";

/// Bursts from one address (failed sign-ins, FORBIDDEN answers, a reused refresh token) fire the
/// built-in security rules with that address; other addresses below the threshold do not; the
/// audit log names the address; a quiet address resolves.
async fn suspicious_activity_raises_alerts_with_the_address(backend: Backend) {
    let hub = TestHub::start_with(
        Store::new(backend).await,
        &["--trusted-proxies", "127.0.0.1/32", "--refresh-reuse-grace", "0"],
    )
    .await;
    let admin = hub.admin_token().await;
    let logins = create_rule(
        &hub,
        &admin,
        json!({ "name": "guessing", "metric": "security.login_failures", "threshold": 5, "forSeconds": 60 }),
    )
    .await;
    let probing = create_rule(
        &hub,
        &admin,
        json!({ "name": "probing", "metric": "security.forbidden", "threshold": 3, "forSeconds": 2 }),
    )
    .await;
    let theft = create_rule(
        &hub,
        &admin,
        json!({ "name": "theft", "metric": "security.refresh_reuse", "threshold": 1, "forSeconds": 600 }),
    )
    .await;
    let user = hub.user_with_roles("plain@hub.test", &["User"]).await;

    // Two failures from one address, four from another: nothing yet; the fifth fires.
    let wrong = json!({ "e": common::ADMIN_EMAIL, "p": "not the password" });
    for _ in 0..2 {
        gql_from(&hub, "198.51.100.7", None, LOGIN, wrong.clone()).await;
    }
    for _ in 0..4 {
        let res = gql_from(&hub, "203.0.113.9", None, LOGIN, wrong.clone()).await;
        assert_eq!(code(&res), "UNAUTHENTICATED", "{res}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let none = hub.gql(Some(&admin), "{ alerts { id } }", json!({})).await;
    assert_eq!(none["data"]["alerts"], json!([]), "below the threshold: {none}");
    gql_from(&hub, "203.0.113.9", None, LOGIN, wrong.clone()).await;
    let fired = wait_alerts(&hub, &admin, &logins, |a| a.len() == 1).await;
    assert_eq!((&fired[0]["state"], &fired[0]["value"]), (&json!("FIRING"), &json!(5.0)), "{fired:?}");
    let subject = hub.gql(Some(&admin), "{ alerts { subject rule { name } } }", json!({})).await;
    assert_eq!(subject["data"]["alerts"][0]["subject"], "203.0.113.9", "{subject}");
    // More failures from the same address fire nothing more.
    gql_from(&hub, "203.0.113.9", None, LOGIN, wrong).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = hub
        .gql(Some(&admin), "{ auditLog(first: 10, filter: { action: \"alert.fire\" }) { ip detail } }", json!({}))
        .await;
    let entries = log["data"]["auditLog"].as_array().unwrap_or_else(|| panic!("{log}"));
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["ip"], "203.0.113.9", "{log}");
    assert!(entries[0]["detail"].as_str().unwrap().contains("5 or more failed sign-ins"), "{log}");

    // A user probing what their token may do: three FORBIDDEN answers.
    for _ in 0..3 {
        let res = gql_from(&hub, "192.0.2.44", Some(&user), "{ auditLog(first: 1) { id } }", json!({})).await;
        assert_eq!(code(&res), "FORBIDDEN", "{res}");
    }
    let probe = wait_alerts(&hub, &admin, &probing, |a| a.len() == 1).await;
    assert_eq!(probe[0]["state"], "FIRING");
    // Quiet for its 2-second window, it resolves at the next sweep.
    let quiet = wait_alerts(&hub, &admin, &probing, |a| a.len() == 1 && a[0]["state"] == "RESOLVED").await;
    assert!(quiet[0]["resolvedAt"].is_string(), "{quiet:?}");

    // A rotated refresh token presented again.
    let first =
        gql_from(&hub, "192.0.2.99", None, LOGIN, json!({ "e": "plain@hub.test", "p": "another long passphrase" }))
            .await;
    let old = first["data"]["login"]["refreshToken"].as_str().unwrap_or_else(|| panic!("{first}")).to_owned();
    let refresh = "mutation($t: String!) { refreshSession(refreshToken: $t) { refreshToken } }";
    let rotated = gql_from(&hub, "192.0.2.99", None, refresh, json!({ "t": old })).await;
    assert!(rotated["errors"].is_null(), "{rotated}");
    let replay = gql_from(&hub, "192.0.2.98", None, refresh, json!({ "t": old })).await;
    assert_eq!(code(&replay), "UNAUTHENTICATED", "{replay}");
    wait_alerts(&hub, &admin, &theft, |a| a.len() == 1).await;
    let who = hub.gql(Some(&admin), "{ alerts(state: FIRING) { subject rule { name } } }", json!({})).await;
    let theft_alert =
        who["data"]["alerts"].as_array().unwrap().iter().find(|a| a["rule"]["name"] == "theft").unwrap().clone();
    assert_eq!(theft_alert["subject"], "192.0.2.98", "the replaying address: {who}");

    // Security rules are checked like the others.
    for (input, field) in [
        (json!({ "name": "x", "metric": "security.forbidden", "threshold": 1.5, "forSeconds": 60 }), "threshold"),
        (json!({ "name": "x", "metric": "security.forbidden", "threshold": 0, "forSeconds": 60 }), "threshold"),
        (json!({ "name": "x", "metric": "security.forbidden", "threshold": 3, "forSeconds": 0 }), "forSeconds"),
        (json!({ "name": "x", "metric": "security.forbidden", "threshold": 3, "forSeconds": 90000 }), "forSeconds"),
        (
            json!({ "name": "x", "metric": "security.forbidden", "threshold": 3, "forSeconds": 60, "serverId": "1" }),
            "serverId",
        ),
    ] {
        let res = hub.gql(Some(&admin), CREATE_RULE, json!({ "i": input })).await;
        assert_eq!(code(&res), "BAD_USER_INPUT", "{input}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["field"], field, "{input}: {res}");
    }
    hub.stop().await;
}

on_both!(
    suspicious_activity_raises_alerts_with_the_address,
    webhooks_never_reach_internal_addresses,
    a_paused_rule_resolves_and_stays_quiet,
    a_held_threshold_fires_resolves_and_is_acknowledged,
    webhooks_retry_time_out_refuse_foreign_redirects_and_speak_discord_and_slack,
    a_crash_rule_fires_for_any_server,
    rules_are_checked_and_guarded,
);
