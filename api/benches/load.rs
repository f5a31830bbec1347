//! The load benchmark (`cargo xtask bench`): the release hub in a process of its own, loaded
//! from outside as clients would load it, each figure beside a baseline measured in the same run
//! on the same machine. It prints figures and asserts only that the answers are right.
//!
//! 1. GraphQL reads over keep-alive HTTP from Debian's `wrk` (64 connections): the server list
//!    with 100 servers, `me` and `hubInfo`, each as a share of the same process's `/healthz`
//!    (the ceiling: the same HTTP stack with no GraphQL and no database), on SQLite and on
//!    PostgreSQL, with the hub's CPU time per request.
//! 2. Subscriptions: N graphql-transport-ws clients on `hostMetrics` with the collector at 1 s:
//!    how late each sample arrives (against its own time stamp), samples missed, the hub's CPU per
//!    subscriber per sample, and its memory per subscription and after they leave.
//! 3. Writes: 64 clients creating, renaming and deleting servers and roles on both databases:
//!    throughput, latency, every outcome by code, and a reader's p99 beside them.
//! 4. Console fan-out: one server printing ~90 lines a second, N subscribers on its console.
//! 5. Footprint: the binary's size, the time from start to ready, memory at rest.
//! 6. Sign-in: logins per second with the hub's argon2 parameters, `hubInfo`'s p99 during a
//!    login flood against its p99 alone, and the hub's memory after the flood.
//! 7. Supervisor: `startServer` to RUNNING on the `serverState` subscription (a game ready at
//!    once, so that its own start counts for nothing), a crash to RUNNING again, and a console
//!    line from the game's write (its own time stamp) to a subscriber.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Backend, Hub};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("KUTANGA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    println!(
        "# Kutanga Hub load benchmark ({} cores; the load client runs on the same machine)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let subscribers: Vec<usize> = std::env::var("KUTANGA_BENCH_SUBSCRIBERS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 1000, 5000, 10_000]);
    // KUTANGA_BENCH_PARTS=reads,subscriptions (the default: all) runs only some parts.
    let parts = std::env::var("KUTANGA_BENCH_PARTS").unwrap_or_default();
    let part = |name: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == name);
    if part("reads") {
        reads(seconds).await;
    }
    if part("subscriptions") {
        subscriptions(&subscribers, seconds).await;
    }
    if part("console") {
        // As many subscribers as given, at most 1,000 (100 and 1,000 by default).
        let counts: Vec<usize> = match std::env::var("KUTANGA_BENCH_SUBSCRIBERS") {
            Ok(_) => subscribers.iter().map(|n| (*n).min(1000)).collect(),
            Err(_) => vec![100, 1000],
        };
        console(&counts, seconds).await;
    }
    if part("footprint") {
        footprint().await;
    }
    if part("writes") {
        writes(seconds).await;
    }
    if part("sign-in") {
        sign_in(seconds).await;
    }
    if part("supervisor") {
        supervisor(if seconds < 5 { 5 } else { 20 }).await;
    }
}

/// What one wrk run measured.
struct Load {
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// The hub's CPU time (user + system) per request.
    cpu: Duration,
    /// Answers that were not 2xx, and socket errors.
    failures: u64,
}

/// Runs wrk against `path` (a GET, or the POST that `script` describes) for `seconds`.
fn wrk(hub: &Hub, path: &str, script: Option<&Path>, seconds: u64) -> Load {
    let before = hub.cpu();
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency"]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd.arg(hub.url(path)).output().expect("wrk runs (apt-get install wrk)");
    let cpu = hub.cpu() - before;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let field = |prefix: &str| -> Option<&str> {
        text.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(str::trim)
    };
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap()))
        .expect("wrk prints its request count");
    let rps: f64 = field("Requests/sec:").and_then(|v| v.parse().ok()).expect("wrk prints Requests/sec");
    let non_2xx: u64 = field("Non-2xx or 3xx responses:").map_or(0, |v| v.parse().unwrap());
    let socket_errors: u64 = field("Socket errors:")
        .map_or(0, |v| v.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum());
    let latency = |p: &str| field(p).map(duration).expect("wrk prints its latency distribution");
    Load {
        rps,
        p50: latency("50%"),
        p99: latency("99%"),
        cpu: cpu / requests.max(1) as u32,
        failures: non_2xx + socket_errors,
    }
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`.
fn duration(text: &str) -> Duration {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().unwrap_or(0.0);
    Duration::from_secs_f64(match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => n,
    })
}

/// A wrk script that POSTs one GraphQL query with a bearer token.
fn post_script(dir: &Path, name: &str, query: &str, token: &str) -> std::path::PathBuf {
    let body = json!({ "query": query }).to_string();
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, script).unwrap();
    path
}

/// A wrk script that POSTs the list with a new alias each time: a new document, never an
/// answer kept from before.
fn fresh_list_script(dir: &Path, token: &str) -> std::path::PathBuf {
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
         local threads = 0\nsetup = function(thread) thread:set(\"tid\", threads); threads = threads + 1 end\n\
         n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, nil, nil, \
         '{{\"query\":\"{{ servers {{ id name state }} t' .. tid .. '_' .. n .. ': __typename }}\"}}')\nend\n"
    );
    let path = dir.join("fresh.lua");
    std::fs::write(&path, script).unwrap();
    path
}

const LIST: &str = "{ servers { id name state } }";

async fn reads(seconds: u64) {
    println!("## GraphQL reads (keep-alive HTTP, 64 connections, {seconds} s each, from wrk)\n");
    println!("| backend | query | req/s | share of /healthz | p50 | p99 | hub CPU per request | failures |");
    println!("|---|---|---|---|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let hub = Hub::start(backend, &[]).await;
        let token = hub.admin_token().await;
        hub.create_servers(&token, 100).await;
        let listed = hub.gql(Some(&token), LIST, json!({})).await;
        assert_eq!(listed["data"]["servers"].as_array().map(Vec::len), Some(100), "{listed}");
        let dir = tempfile::tempdir().unwrap();
        let ceiling = wrk(&hub, "/healthz", None, seconds);
        let row = |query: &str, load: &Load| {
            println!(
                "| {} | {query} | {:.0} | {:.3} | {:.2} ms | {:.2} ms | {:.0} us | {} |",
                backend.name(),
                load.rps,
                load.rps / ceiling.rps,
                load.p50.as_secs_f64() * 1e3,
                load.p99.as_secs_f64() * 1e3,
                load.cpu.as_secs_f64() * 1e6,
                load.failures
            )
        };
        row("`/healthz` (ceiling)", &ceiling);
        for (name, query) in [("servers", LIST), ("me", "{ me { id email } }"), ("hub", "{ hubInfo { version } }")] {
            let script = post_script(dir.path(), name, query, &token);
            let load = wrk(&hub, "/graphql", Some(&script), seconds);
            let shown =
                if name == "servers" { "`servers` (100: id name state)".to_owned() } else { format!("`{query}`") };
            row(&shown, &load);
            if name == "servers" {
                let load = wrk(&hub, "/graphql", Some(&fresh_list_script(dir.path(), &token)), seconds);
                row("`servers`, a new document each time", &load);
            }
        }
        hub.stop().await;
    }
}

/// A graphql-transport-ws connection, initialised (its ack read) and subscribed to `query`.
async fn subscriber_at(url: &str, token: &str, query: &str) -> Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::connect_async(req))
        .await
        .expect("the socket opens within 30 s")
        .expect("the socket opens");
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await.unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("the hub acknowledges within 30 s")
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
    ws.send(Message::Text(subscribe.to_string().into())).await.unwrap();
    ws
}

/// The `at` of a `next` message (a sample, a console line).
fn item_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if !text.contains("\"next\"") {
        return None;
    }
    let start = text.find("\"at\":\"")? + 6;
    let end = start + text[start..].find('"')?;
    Some(chrono::DateTime::parse_from_rfc3339(&text[start..end]).ok()?.with_timezone(&chrono::Utc))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the subscribers saw: for each item (by its `at`), how many got it and how late.
#[derive(Default)]
struct Deliveries {
    /// Arrival minus the item's own time, for every delivery in the window.
    delays: Vec<Duration>,
    /// Per item time (ms): how many subscribers got it.
    per_item: HashMap<i64, usize>,
}

const HOST_METRICS: &str = "subscription { hostMetrics(intervalSeconds: 1) { at cpuPercent cpuPerCore \
    memoryUsedBytes memoryTotalBytes diskUsedBytes netRxBytesPerSecond netTxBytesPerSecond load1 } }";

/// What N subscribers to one subscription saw over a window.
struct FanOut {
    /// Arrival minus the item's own time (`at`), every delivery in the window, sorted.
    delays: Vec<Duration>,
    /// Items seen in the window (by their `at`), and deliveries missing: subscribers that did
    /// not get an item that others got.
    items: usize,
    missed: usize,
    /// The hub's CPU time over the window.
    cpu: Duration,
    /// The hub's memory before the sockets opened, with them open, and 3 s after they closed.
    rss: (u64, u64, u64),
}

impl FanOut {
    fn delay(&self, p: f64) -> String {
        let i = ((self.delays.len() as f64 * p) as usize).min(self.delays.len().saturating_sub(1));
        self.delays.get(i).map_or("-".to_owned(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
    }
}

/// Opens `n` sockets subscribed to `query` (each item carries an `at`), then watches a window
/// of `seconds`.
async fn fan_out(hub: &Hub, token: &str, query: &'static str, n: usize, seconds: u64) -> FanOut {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = hub.rss();
    let opened = Arc::new(tokio::sync::Semaphore::new(128));
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let window = Arc::new(Mutex::new(None::<(i64, i64)>));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (hub_url, token, opened) = (hub.ws_url(), token.to_owned(), opened.clone());
        let (deliveries, window, stop) = (deliveries.clone(), window.clone(), stop.clone());
        let permit = opened.acquire_owned().await.unwrap();
        clients.spawn(async move {
            let mut ws = subscriber_at(&hub_url, &token, query).await;
            drop(permit);
            loop {
                let message = tokio::select! {
                    m = ws.next() => m,
                    () = stop.cancelled() => break,
                };
                let Some(Ok(Message::Text(text))) = message else { break };
                let arrived = chrono::Utc::now();
                // The client shares the machine's two cores with the hub: it reads the one
                // field it needs instead of parsing the whole message.
                let Some(at) = item_time(&text) else { panic!("not an item: {text}") };
                let at_ms = at.timestamp_millis();
                let counted = window.lock().unwrap().is_some_and(|(from, to)| at_ms >= from && at_ms < to);
                if counted {
                    let mut d = deliveries.lock().unwrap();
                    d.delays.push((arrived - at).to_std().unwrap_or_default());
                    *d.per_item.entry(at_ms).or_default() += 1;
                }
            }
            let _ = ws.close(None).await;
        });
    }
    // Every socket open and subscribed; then the window.
    let _ = opened.acquire_many(128).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = hub.rss();
    let from = chrono::Utc::now().timestamp_millis();
    *window.lock().unwrap() = Some((from, from + seconds as i64 * 1000));
    let cpu_before = hub.cpu();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = hub.cpu() - cpu_before;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    while let Some(client) = clients.join_next().await {
        // A client that saw a wrong message panicked: the benchmark fails with it.
        client.expect("a subscriber saw only right answers");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = hub.rss();
    let d = std::mem::take(&mut *deliveries.lock().unwrap());
    let mut delays = d.delays;
    delays.sort();
    FanOut {
        delays,
        items: d.per_item.len(),
        missed: d.per_item.values().map(|got| n.saturating_sub(*got)).sum(),
        cpu,
        rss: (idle, open, after),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// N subscribers on `hostMetrics` with the collector at 1 s: delivery delay, the hub's CPU per
/// subscriber per sample, memory per subscription and after they leave, samples missed.
async fn subscriptions(counts: &[usize], seconds: u64) {
    println!("\n## Subscriptions: `hostMetrics(intervalSeconds: 1)`, collector at 1 s, {seconds} s each\n");
    println!(
        "| subscribers | p50 delay | p95 delay | p99 delay | samples missed | hub CPU per subscriber per sample | RSS per subscription | RSS idle / open / after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &n in counts {
        // A fresh hub for each count: memory a wave of sockets took is kept for the next.
        let hub = Hub::start(
            Backend::Sqlite,
            &["--metrics-interval", "1", "--ws-per-ip-per-minute", "1000000", "--ws-per-account", "1000000"],
        )
        .await;
        let token = hub.admin_token().await;
        let f = fan_out(&hub, &token, HOST_METRICS, n, seconds).await;
        let (idle, open, after) = f.rss;
        println!(
            "| {n} | {} | {} | {} | {} of {} | {:.1} us | {:.1} KiB | {:.0} / {:.0} / {:.0} MiB |",
            f.delay(0.5),
            f.delay(0.95),
            f.delay(0.99),
            f.missed,
            n * f.items,
            f.cpu.as_secs_f64() * 1e6 / (n * f.items.max(1)) as f64,
            open.saturating_sub(idle) as f64 / 1024.0 / n as f64,
            mib(idle),
            mib(open),
            mib(after),
        );
        hub.stop().await;
    }
}

/// One running server printing about 90 lines a second, N subscribers on its console: delivery
/// delay and the hub's CPU per delivered line, against the hub's CPU with no subscriber.
async fn console(counts: &[usize], seconds: u64) {
    println!(
        "\n## Console fan-out: one server printing ~90 lines/s, N subscribers on `serverConsole`, {seconds} s each\n"
    );
    println!(
        "| subscribers | lines delivered | missed | p50 delay | p99 delay | hub CPU per delivered line | hub CPU, share of a core |"
    );
    println!("|---|---|---|---|---|---|---|");
    let hub = Hub::start(Backend::Sqlite, &["--ws-per-ip-per-minute", "1000000", "--ws-per-account", "1000000"]).await;
    let token = hub.admin_token().await;
    // It ends by itself after five minutes, should the benchmark fail before it stops it.
    let def = "name = \"Chatter\"\nexecutable = \"/usr/bin/timeout\"\nargs = [\"300\", \"/bin/sh\", \"-c\", \"while :; do echo chatter line; sleep 0.011; done\"]\n";
    let res = hub
        .gql(Some(&token), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": def }))
        .await;
    let template = res["data"]["createTemplate"]["id"].clone();
    let res = hub.gql(Some(&token), CREATE_SERVER, json!({ "t": template, "n": "chatter" })).await;
    let id = res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("no server: {res}")).to_owned();
    let res = hub.gql(Some(&token), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
    assert!(res["errors"].is_null(), "the server starts: {res}");
    // The query text must live as long as the clients: one per run is leaked (a benchmark).
    let query: &'static str =
        Box::leak(format!("subscription {{ serverConsole(serverId: \"{id}\") {{ at line }} }}").into_boxed_str());
    // The baseline: the hub reading the game's output with nobody watching.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = hub.cpu();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let unwatched = (hub.cpu() - before).as_secs_f64() / seconds as f64;
    println!("| 0 | - | - | - | - | - | {unwatched:.3} |");
    for &n in counts {
        let f = fan_out(&hub, &token, query, n, seconds).await;
        let delivered = f.delays.len();
        let share = f.cpu.as_secs_f64() / seconds as f64;
        println!(
            "| {n} | {delivered} | {} | {} | {} | {:.1} us | {share:.3} |",
            f.missed,
            f.delay(0.5),
            f.delay(0.99),
            (share - unwatched).max(0.0) * seconds as f64 * 1e6 / delivered.max(1) as f64,
        );
    }
    let res = hub.gql(Some(&token), "mutation($id: ID!) { killServer(id: $id) { state } }", json!({ "id": id })).await;
    assert!(res["errors"].is_null(), "the server is killed: {res}");
    hub.stop().await;
}

/// Latencies and outcomes of GraphQL calls made by many clients at once.
#[derive(Default)]
struct Calls {
    latencies: Vec<Duration>,
    /// Answers by outcome: `ok` or the first error's code.
    outcomes: std::collections::BTreeMap<String, usize>,
}

impl Calls {
    fn record(&mut self, took: Duration, answer: &serde_json::Value) {
        self.latencies.push(took);
        let outcome = answer["errors"][0]["extensions"]["code"].as_str().unwrap_or("ok").to_owned();
        *self.outcomes.entry(outcome).or_default() += 1;
    }

    fn merge(&mut self, other: Calls) {
        self.latencies.extend(other.latencies);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }

    fn percentile(&mut self, p: f64) -> Duration {
        if !self.latencies.is_sorted() {
            self.latencies.sort();
        }
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len().saturating_sub(1));
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn outcomes(&self) -> String {
        self.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    }
}

/// One GraphQL call, timed.
async fn timed(
    hub: &Hub,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> (Duration, serde_json::Value) {
    let started = std::time::Instant::now();
    let answer = hub.gql(token, query, variables).await;
    (started.elapsed(), answer)
}

/// 64 clients creating, renaming and deleting servers and roles for `seconds`, on both
/// databases: operations per second, p50/p99, and every outcome by code.
async fn writes(seconds: u64) {
    println!("\n## Writes: 64 clients creating, renaming and deleting servers and roles, {seconds} s\n");
    println!("| backend | operations/s | p50 | p99 | outcomes | reads alone: `servers` p99 / during |");
    println!("|---|---|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let hub = Arc::new(Hub::start(backend, &[]).await);
        let token = hub.admin_token().await;
        let template = hub.create_template(&token).await;
        let alone = repeat(&hub, Some(&token), LIST, Duration::from_secs(3)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        let mut clients = tokio::task::JoinSet::new();
        for client in 0..64 {
            let (hub, token, template) = (hub.clone(), token.clone(), template.clone());
            clients.spawn(async move {
                let mut calls = Calls::default();
                let mut round = 0;
                while std::time::Instant::now() < deadline {
                    round += 1;
                    let name = format!("w{client}-{round}");
                    if client % 2 == 0 {
                        let (t, a) = timed(&hub, Some(&token), CREATE_SERVER, json!({ "t": template, "n": name })).await;
                        calls.record(t, &a);
                        let Some(id) = a["data"]["createServer"]["id"].as_str().map(str::to_owned) else { continue };
                        let rename = "mutation($id: ID!, $n: String!) { updateServer(id: $id, input: { name: $n }) { id } }";
                        let (t, a) = timed(&hub, Some(&token), rename, json!({ "id": id, "n": format!("{name}b") })).await;
                        calls.record(t, &a);
                        let (t, a) =
                            timed(&hub, Some(&token), "mutation($id: ID!) { deleteServer(id: $id) }", json!({ "id": id })).await;
                        calls.record(t, &a);
                    } else {
                        let create = "mutation($n: String!) { createRole(name: $n, permissions: [\"server.read\"]) { id } }";
                        let (t, a) = timed(&hub, Some(&token), create, json!({ "n": name })).await;
                        calls.record(t, &a);
                        let Some(id) = a["data"]["createRole"]["id"].as_str().map(str::to_owned) else { continue };
                        let change = "mutation($id: ID!) { updateRole(id: $id, permissions: [\"server.read\", \"metrics.read\"]) { id } }";
                        let (t, a) = timed(&hub, Some(&token), change, json!({ "id": id })).await;
                        calls.record(t, &a);
                        let (t, a) =
                            timed(&hub, Some(&token), "mutation($id: ID!) { deleteRole(id: $id) }", json!({ "id": id })).await;
                        calls.record(t, &a);
                    }
                }
                calls
            });
        }
        let during = repeat(&hub, Some(&token), LIST, Duration::from_secs(seconds.min(5))).await;
        let mut all = Calls::default();
        while let Some(calls) = clients.join_next().await {
            all.merge(calls.unwrap());
        }
        let (mut alone, mut during) = (alone, during);
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {} | {:.1} / {:.1} ms |",
            backend.name(),
            all.latencies.len() as f64 / seconds as f64,
            all.percentile(0.5).as_secs_f64() * 1e3,
            all.percentile(0.99).as_secs_f64() * 1e3,
            all.outcomes(),
            alone.percentile(0.99).as_secs_f64() * 1e3,
            during.percentile(0.99).as_secs_f64() * 1e3,
        );
        Arc::into_inner(hub).expect("the clients are done").stop().await;
    }
}

const CREATE_SERVER: &str =
    "mutation($t: ID!, $n: String!) { createServer(input: { name: $n, templateId: $t }) { id } }";

/// One client asking `query` in a loop for `span`.
async fn repeat(hub: &Hub, token: Option<&str>, query: &str, span: Duration) -> Calls {
    let mut calls = Calls::default();
    let until = std::time::Instant::now() + span;
    while std::time::Instant::now() < until {
        let (t, a) = timed(hub, token, query, json!({})).await;
        calls.record(t, &a);
    }
    calls
}

/// Sign-in: logins per second with the hub's argon2 parameters (clients signing in at once),
/// the p99 of `hubInfo` alone and during the flood, and the hub's memory before, at the peak and
/// a few seconds after.
async fn sign_in(seconds: u64) {
    println!("\n## Sign-in: logins with the hub's argon2 parameters, {seconds} s each\n");
    println!(
        "| clients signing in | logins/s | login p50 | login p99 | outcomes | `hubInfo` p99 alone / during | RSS idle / peak / 5 s after |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The failure limits are raised: this measures hashing, not the limiter.
    let hub =
        Arc::new(Hub::start(Backend::Sqlite, &["--rate-limit-account", "10000", "--rate-limit-ip", "100000"]).await);
    let _ = hub.admin_token().await;
    for clients in [1, 4, 16] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = hub.rss();
        let alone = repeat(&hub, None, HUB_INFO, Duration::from_secs(2)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let hub = hub.clone();
            set.spawn(async move {
                let mut calls = Calls::default();
                while std::time::Instant::now() < deadline {
                    let (t, a) =
                        timed(&hub, None, LOGIN, json!({ "e": common::ADMIN_EMAIL, "p": common::ADMIN_PASSWORD }))
                            .await;
                    calls.record(t, &a);
                }
                calls
            });
        }
        let watcher = {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut peak = 0;
                while std::time::Instant::now() < deadline {
                    peak = peak.max(hub.rss());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peak
            })
        };
        let mut during = repeat(&hub, None, HUB_INFO, Duration::from_secs(seconds.min(5))).await;
        let mut logins = Calls::default();
        while let Some(calls) = set.join_next().await {
            logins.merge(calls.unwrap());
        }
        let peak = watcher.await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = hub.rss();
        let ok = logins.outcomes.get("ok").copied().unwrap_or(0);
        let mut alone = alone;
        println!(
            "| {clients} | {:.1} | {:.0} ms | {:.0} ms | {} | {:.2} / {:.2} ms | {:.0} / {:.0} / {:.0} MiB |",
            ok as f64 / seconds as f64,
            logins.percentile(0.5).as_secs_f64() * 1e3,
            logins.percentile(0.99).as_secs_f64() * 1e3,
            logins.outcomes(),
            alone.percentile(0.99).as_secs_f64() * 1e3,
            during.percentile(0.99).as_secs_f64() * 1e3,
            mib(idle),
            mib(peak),
            mib(after),
        );
    }
    Arc::into_inner(hub).expect("the clients are done").stop().await;
}

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";

const HUB_INFO: &str = "{ hubInfo { version } }";

/// The binary's size, start to ready on a fresh data dir and on one holding 100 servers, and
/// memory at rest (before anyone signed in, and after).
async fn footprint() {
    println!("\n## Footprint (SQLite)\n");
    let size = std::fs::metadata(Hub::binary()).unwrap().len() as f64 / 1e6;
    let hub = Hub::start(Backend::Sqlite, &[]).await;
    let fresh = hub.ready_after;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = hub.rss();
    let token = hub.admin_token().await;
    hub.create_servers(&token, 100).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let signed_in = hub.rss();
    let hub = hub.restart().await;
    let existing = hub.ready_after;
    hub.stop().await;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| binary | start to `/readyz`, fresh | start to `/readyz`, 100 servers | RSS at rest / after a sign-in |"
    );
    println!("|---|---|---|---|");
    println!(
        "| {size:.1} MB | {:.0} ms | {:.0} ms | {:.0} / {:.0} MiB |",
        ms(fresh),
        ms(existing),
        mib(idle),
        mib(signed_in)
    );
}

/// The next `next` payload's data on a socket subscribed as id 1.
async fn next_item(ws: &mut Ws) -> serde_json::Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("an item within 30 s")
            .expect("the socket is open")
            .expect("a message");
        if let Message::Text(text) = msg {
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            assert_ne!(v["type"], "error", "{v}");
            if v["type"] == "next" {
                return v["payload"]["data"].clone();
            }
        }
    }
}

/// The next state event of a server, with its arrival time.
async fn next_state(ws: &mut Ws) -> (String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let item = next_item(ws).await;
    let arrived = chrono::Utc::now();
    let event = &item["serverState"];
    let at = chrono::DateTime::parse_from_rfc3339(event["at"].as_str().unwrap()).unwrap().with_timezone(&chrono::Utc);
    (event["state"].as_str().unwrap().to_owned(), at, arrived)
}

/// Makes a server of a one-off template.
async fn server_of(hub: &Hub, token: &str, name: &str, definition: &str) -> String {
    let res = hub
        .gql(Some(token), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": definition }))
        .await;
    let template = res["data"]["createTemplate"]["id"].clone();
    let res = hub.gql(Some(token), CREATE_SERVER, json!({ "t": template, "n": name })).await;
    res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("no server: {res}")).to_owned()
}

fn spread(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)].as_secs_f64() * 1e3;
    format!("{:.1} ms | {:.1} ms | {:.1} ms", at(0.5), at(0.99), at(1.0))
}

async fn supervisor(rounds: usize) {
    println!("\n## Supervisor: {rounds} rounds each, a game that is ready as soon as it runs\n");
    println!("| from | to | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let hub = Hub::start(Backend::Sqlite, &[]).await;
    let token = hub.admin_token().await;
    let act = |what: &'static str, id: String| {
        let (hub, token) = (&hub, &token);
        async move {
            let res = hub
                .gql(Some(token), &format!("mutation($id: ID!) {{ {what}(id: $id) {{ state }} }}"), json!({ "id": id }))
                .await;
            assert!(res["errors"].is_null(), "{what}: {res}");
        }
    };
    let watch = |id: &str| format!("subscription {{ serverState(serverId: \"{id}\") {{ state at }} }}");

    // startServer to RUNNING.
    let ready = "name = \"Ready\"\nexecutable = \"/usr/bin/timeout\"\nargs = [\"300\", \"/bin/sh\", \"-c\", \"echo up; exec sleep 300\"]\n[ready]\nregex = [\"^up$\"]\n";
    let id = server_of(&hub, &token, "ready", ready).await;
    let mut ws = subscriber_at(&hub.ws_url(), &token, &watch(&id)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut started = Vec::new();
    for _ in 0..rounds {
        let asked = std::time::Instant::now();
        act("startServer", id.clone()).await;
        while next_state(&mut ws).await.0 != "RUNNING" {}
        started.push(asked.elapsed());
        act("killServer", id.clone()).await;
        while next_state(&mut ws).await.0 != "OFFLINE" {}
    }
    println!("| `startServer` sent | RUNNING received | {} |", spread(started));
    drop(ws);

    // A crash to RUNNING again (restarted at once: no backoff).
    let crasher = "name = \"Crasher\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"echo up; sleep 0.3; exit 3\"]\n[ready]\nregex = [\"^up$\"]\n[crash]\nmax_restarts = 100\nwindow_seconds = 3600\nbackoff_seconds = 0\n";
    let id = server_of(&hub, &token, "crasher", crasher).await;
    let mut ws = subscriber_at(&hub.ws_url(), &token, &watch(&id)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    act("startServer", id.clone()).await;
    while next_state(&mut ws).await.0 != "RUNNING" {}
    let mut restarts = Vec::new();
    while restarts.len() < rounds {
        let (state, crashed, _) = next_state(&mut ws).await;
        assert_ne!(state, "RUNNING", "a crash comes first");
        loop {
            let (state, _, arrived) = next_state(&mut ws).await;
            if state == "RUNNING" {
                restarts.push((arrived - crashed).to_std().unwrap_or_default());
                break;
            }
        }
    }
    println!("| the crash seen (its event's `at`) | RUNNING again received | {} |", spread(restarts));
    act("killServer", id.clone()).await;
    drop(ws);

    // A console line from the game's write to a subscriber.
    let stamper = "name = \"Stamper\"\nexecutable = \"/usr/bin/timeout\"\nargs = [\"300\", \"/bin/sh\", \"-c\", \"while :; do date +%s%N; sleep 0.05; done\"]\n";
    let id = server_of(&hub, &token, "stamper", stamper).await;
    act("startServer", id.clone()).await;
    let query = format!("subscription {{ serverConsole(serverId: \"{id}\") {{ line }} }}");
    let mut ws = subscriber_at(&hub.ws_url(), &token, &query).await;
    let mut lines = Vec::new();
    while lines.len() < rounds * 10 {
        let item = next_item(&mut ws).await;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        if let Some(written) = item["serverConsole"]["line"].as_str().and_then(|l| l.trim().parse::<i64>().ok()) {
            lines.push(Duration::from_nanos((now - written).max(0) as u64));
        }
    }
    println!("| a line written by the game | received by a subscriber | {} |", spread(lines));
    act("killServer", id).await;
    hub.stop().await;
}
