//! GET /metrics: parsed by a Prometheus text parser, checked by Debian's `promtool check
//! metrics`, with the host, a running server and the hub's own work in it, and its access rules
//! (the loopback allowlist by default, an allowlist without us, a bearer token). The Grafana
//! dashboard and the Prometheus example of packaging/ use only what that scrape holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    process::Stdio,
    time::Duration,
};

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
    the_dashboard_asks_what_the_hub_says(&s);

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

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/grafana/kutanga-hub.json");

/// The Grafana dashboard parses, its queries parse as PromQL (`promtool check rules`), and they
/// name only metrics and labels of `scrape` (a hub with a running server, requests and a
/// subscription) or labels Prometheus adds.
fn the_dashboard_asks_what_the_hub_says(scrape: &Scrape) {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).expect("the dashboard is JSON");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus", "it asks for its data source on import");
    let targets: Vec<serde_json::Value> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .collect();
    let queries: Vec<String> =
        targets.iter().map(|t| t["expr"].as_str().expect("every target has a query").to_owned()).collect();
    assert!(queries.len() >= 15, "{queries:?}");

    let mut exported: HashMap<String, HashSet<String>> = HashMap::new();
    for sample in &scrape.samples {
        let labels: HashSet<String> = sample.labels.keys().cloned().collect();
        let names = match sample.value {
            // The parser files a histogram's series under its name.
            Prom::Histogram(_) => ["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", sample.metric)).to_vec(),
            _ => vec![sample.metric.clone()],
        };
        for name in names {
            exported.entry(name).or_default().extend(labels.iter().cloned());
        }
    }
    let added_by_prometheus = ["instance", "job", "le"];
    for (query, target) in queries.iter().zip(&targets) {
        let metrics: Vec<&str> = words(query).filter(|w| w.starts_with("kutanga_")).collect();
        assert!(!metrics.is_empty(), "`{query}` reads the hub's metrics");
        let mut known: HashSet<&str> = added_by_prometheus.into();
        for metric in &metrics {
            let labels = exported.get(*metric).unwrap_or_else(|| panic!("`{query}`: the hub exports no `{metric}`"));
            known.extend(labels.iter().map(String::as_str));
        }
        // Matched or grouped on, or named in the legend (`{{core}}`).
        let legend = target["legendFormat"].as_str().unwrap_or_default();
        let in_legend =
            legend.split("{{").skip(1).filter_map(|part| part.split_once("}}")).map(|(label, _)| label.trim());
        for label in labels_in(query).into_iter().chain(in_legend) {
            assert!(known.contains(label), "`{query}`: no metric it reads has the label `{label}`");
        }
    }

    // PromQL's own parser, with Grafana's variables given values.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, query) in queries.iter().enumerate() {
        let query = query.replace("$__rate_interval", "5m").replace("$instance", ".*");
        rules.push_str(&format!("      - record: dashboard:query_{n}\n        expr: {}\n", json!(query)));
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rules).unwrap();
    promtool(&["check", "rules", &file.path().to_string_lossy()]);
}

/// The identifiers of a PromQL query.
fn words(query: &str) -> impl Iterator<Item = &str> {
    query.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).filter(|w| !w.is_empty())
}

/// The label names a query matches on (`{name="..."}`) or groups by (`by (a, b)`).
fn labels_in(query: &str) -> Vec<&str> {
    let mut labels = Vec::new();
    let mut rest = query;
    while let Some(open) = rest.find(['{', '(']) {
        let (before, after) = rest.split_at(open);
        let close = after.find(['}', ')']).unwrap_or(after.len());
        let inside = &after[1..close];
        if after.starts_with('{') {
            // name="value", name=~"value": the words before each operator
            for matcher in inside.split(',') {
                if let Some(at) = matcher.find(['=', '!']) {
                    labels.push(matcher[..at].trim());
                }
            }
        } else if before.trim_end().ends_with(" by") || before.trim_end().ends_with(" without") {
            labels.extend(inside.split(',').map(str::trim));
        }
        rest = &after[1..];
    }
    labels
}

fn promtool(args: &[&str]) {
    let out = std::process::Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs (Debian's `prometheus` package; cargo xtask test installs it)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {}:\n{said}", args.join(" "));
}

/// The scrape configuration the administrator guide shows.
#[test]
fn the_prometheus_example_is_a_valid_configuration() {
    promtool(&["check", "config", concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/prometheus/kutanga.yml")]);
}

on_both!(metrics_tell_the_host_the_servers_and_the_hub, metrics_obey_the_allowlist_and_the_token);
