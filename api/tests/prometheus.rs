//! GET /metrics: parsed by a Prometheus text parser, checked by Debian's `promtool check
//! metrics`, with the host, a running server and the hub's own work in it, and its access rules
//! (the loopback allowlist by default, an allowlist without us, a bearer token).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{io::Write, process::Stdio, time::Duration};

use common::{Backend, Store, TestHub, ws_as};
use futures_util::SinkExt;
use prometheus_parse::{Scrape, Value as Prom};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn scrape(hub: &TestHub, token: Option<&str>) -> (u16, String) {
    let mut req = hub.http.get(hub.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    }
    (status, res.text().await.unwrap())
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the text format parses")
}

/// The value of the first sample of `metric` whose labels include `labels`.
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples.iter().find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))).map(|x| {
        match x.value {
            Prom::Counter(v) | Prom::Gauge(v) | Prom::Untyped(v) => v,
            _ => f64::NAN,
        }
    })
}

/// `promtool check metrics` on the text: no lint problem.
fn promtool_is_happy(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's `prometheus` package; cargo xtask test installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}");
}

async fn metrics_tell_the_host_the_servers_and_the_hub(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    let server = hub.create_burner(&admin).await;
    hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": server })).await;
    // A bad query, and an open subscription.
    hub.gql(Some(&admin), "{ noSuchField }", json!({})).await;
    let mut ws = ws_as(&hub, &admin).await;
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { hostMetrics { cpuPercent } }" } });
    ws.send(Message::Text(sub.to_string().into())).await.unwrap();

    let mut text = String::new();
    for _ in 0..40 {
        let (status, body) = scrape(&hub, None).await;
        assert_eq!(status, 200, "{body}");
        text = body;
        let s = parse(&text);
        if value(&s, "kutanga_server_cpu_usage_ratio", &[("server_id", &server)]).is_some_and(|v| v > 0.2)
            && value(&s, "kutanga_graphql_subscriptions_open", &[]) == Some(1.0)
            && value(&s, "kutanga_graphql_operations_total", &[("type", "subscription")]).is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let s = parse(&text);
    assert!(value(&s, "kutanga_server_cpu_usage_ratio", &[("server_id", &server)]).unwrap() > 0.2, "{text}");
    assert!(value(&s, "kutanga_server_memory_bytes", &[("server_id", &server)]).unwrap() > 0.0);
    let mem = value(&s, "kutanga_host_memory_used_bytes", &[]).unwrap();
    assert!(mem > 0.0 && mem <= value(&s, "kutanga_host_memory_total_bytes", &[]).unwrap());
    assert!((0.0..=1.0).contains(&value(&s, "kutanga_host_cpu_usage_ratio", &[]).unwrap()));
    assert!(value(&s, "kutanga_host_load_average", &[("minutes", "1")]).is_some());
    assert!(value(&s, "kutanga_collector_samples_total", &[]).unwrap() >= 1.0);
    assert!(value(&s, "kutanga_collector_cpu_seconds_total", &[]).unwrap() > 0.0, "the collector's cost is counted");
    assert_eq!(value(&s, "kutanga_graphql_subscriptions_open", &[]), Some(1.0));
    let ops = [("type", "mutation"), ("operation", "login"), ("outcome", "ok")];
    assert!(value(&s, "kutanga_graphql_operations_total", &ops).unwrap() >= 1.0, "{text}");
    let live = [("type", "subscription"), ("operation", "hostMetrics"), ("outcome", "ok")];
    assert_eq!(value(&s, "kutanga_graphql_operations_total", &live), Some(1.0), "{text}");
    let bad = [("operation", "invalid"), ("outcome", "bad_user_input")];
    assert_eq!(value(&s, "kutanga_graphql_operations_total", &bad), Some(1.0), "{text}");
    assert!(value(&s, "kutanga_http_requests_total", &[("route", "/graphql"), ("status", "200")]).unwrap() >= 3.0);
    assert!(!text.contains("noSuchField"), "client-chosen names never become labels");
    promtool_is_happy(&text);

    // The subscription closes: the gauge follows. A stopped server leaves no series behind.
    ws.close(None).await.unwrap();
    hub.gql(Some(&admin), "mutation($id: ID!) { killServer(id: $id) { state } }", json!({ "id": server })).await;
    let mut closed = false;
    for _ in 0..40 {
        let s = parse(&scrape(&hub, None).await.1);
        if value(&s, "kutanga_graphql_subscriptions_open", &[]) == Some(0.0)
            && value(&s, "kutanga_server_cpu_usage_ratio", &[("server_id", &server)]).is_none()
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(closed, "the gauge and the server's series follow");
    hub.stop().await;
}

async fn metrics_obey_the_allowlist_and_the_token(backend: Backend) {
    let store = Store::new(backend).await;
    let hub = TestHub::start_with(store, &["--metrics-allow", "10.0.0.0/8, 192.168.1.1"]).await;
    let (status, body) = scrape(&hub, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("KUTANGA_METRICS_ALLOW"));
    let store = hub.stop().await;

    let hub =
        TestHub::start_with(store, &["--metrics-allow", "127.0.0.0/8", "--metrics-token", "a-long-scrape-token"]).await;
    assert_eq!(scrape(&hub, None).await.0, 401);
    assert_eq!(scrape(&hub, Some("a-long-scrape-token-but-not")).await.0, 401);
    let (status, body) = scrape(&hub, Some("a-long-scrape-token")).await;
    assert_eq!(status, 200);
    assert!(!body.contains("a-long-scrape-token"), "the token is never shown");
    // A user's access token is no scrape token.
    let admin = hub.admin_token().await;
    assert_eq!(scrape(&hub, Some(&admin)).await.0, 401);
    hub.stop().await;
}

on_both!(metrics_tell_the_host_the_servers_and_the_hub, metrics_obey_the_allowlist_and_the_token);
