//! Live resource samples from the real host: values within physical bounds, a CPU burner that
//! shows, and the permissions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, Store, TestHub, Ws, ws_as};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn subscribe(ws: &mut Ws, query: &str) {
    let msg = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
    ws.send(Message::Text(msg.to_string().into())).await.unwrap();
}

/// The next `next` payload within 15 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a sample within 15 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "next" {
                return v["payload"].clone();
            }
        }
    }
}

async fn host_samples_are_real(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    let mut ws = ws_as(&hub, &admin).await;
    subscribe(
        &mut ws,
        "subscription { hostMetrics(intervalSeconds: 1) { at cpuPercent cpuPerCore memoryUsedBytes memoryTotalBytes \
         diskUsedBytes diskTotalBytes netRxBytesPerSecond netTxBytesPerSecond load1 } }",
    )
    .await;
    let a = next(&mut ws).await["data"]["hostMetrics"].clone();
    let b = next(&mut ws).await["data"]["hostMetrics"].clone();
    for s in [&a, &b] {
        let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
        assert!((0.0..=100.0).contains(&f("cpuPercent")), "{s}");
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(s["cpuPerCore"].as_array().unwrap().len(), cores, "{s}");
        assert!(f("memoryUsedBytes") > 0.0 && f("memoryUsedBytes") <= f("memoryTotalBytes"), "{s}");
        let total_ram = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: f64 = total_ram.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!((f("memoryTotalBytes") - kib * 1024.0).abs() < kib * 1024.0 * 0.05, "{s}");
        assert!(f("diskTotalBytes") > 0.0 && f("diskUsedBytes") <= f("diskTotalBytes"), "{s}");
        assert!(f("netRxBytesPerSecond") >= 0.0 && f("netTxBytesPerSecond") >= 0.0 && f("load1") >= 0.0);
    }
    assert_ne!(a["at"], b["at"], "two samples, not one twice");
    hub.stop().await;
}

async fn a_cpu_burner_shows_up(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    let id = hub.create_burner(&admin).await;
    hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
    let mut ws = ws_as(&hub, &admin).await;
    subscribe(&mut ws, &format!("subscription {{ serverMetrics(serverId: \"{id}\") {{ cpuPercent memoryBytes }} }}"))
        .await;
    // The first sample of a process has no CPU history yet; look at a few.
    let mut best = 0.0f64;
    for _ in 0..4 {
        let s = next(&mut ws).await["data"]["serverMetrics"].clone();
        assert!(s["memoryBytes"].as_f64().unwrap() > 0.0, "{s}");
        best = best.max(s["cpuPercent"].as_f64().unwrap());
    }
    assert!(best > 40.0, "a busy loop uses most of a core, got {best}%");
    let mut host = ws_as(&hub, &admin).await;
    subscribe(&mut host, "subscription { hostMetrics { cpuPercent } }").await;
    let mut host_best = 0.0f64;
    for _ in 0..3 {
        host_best = host_best.max(next(&mut host).await["data"]["hostMetrics"]["cpuPercent"].as_f64().unwrap());
    }
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(host_best > 40.0 / cores, "the host's CPU shows the burner: {host_best}%");
    hub.stop().await;
}

async fn samples_need_their_permissions(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let mut ws = ws_as(&hub, &user).await;
    subscribe(&mut ws, "subscription { hostMetrics { cpuPercent } }").await;
    assert_eq!(next(&mut ws).await["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let mut ws = ws_as(&hub, &user).await;
    subscribe(&mut ws, "subscription { serverMetrics(serverId: \"1\") { cpuPercent } }").await;
    assert_eq!(next(&mut ws).await["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let moderator = hub.user_with_roles("m@hub.test", &["Moderator"]).await;
    let mut ws = ws_as(&hub, &moderator).await;
    subscribe(&mut ws, "subscription { hostMetrics { cpuPercent } }").await;
    assert!(next(&mut ws).await["data"]["hostMetrics"]["cpuPercent"].is_number());
    hub.stop().await;
}

on_both!(host_samples_are_real, a_cpu_burner_shows_up, samples_need_their_permissions);
