//! The monitoring benchmark (`cargo xtask bench`). It prints figures and asserts nothing:
//!
//! 1. the collector's CPU time per sample with 10 running servers, beside the CPU time per scrape
//!    of Debian's prometheus-node-exporter measured in the same run;
//! 2. history queries (p50) on SQLite and PostgreSQL with 30 days of 1-minute rollups and 24 h of
//!    raw samples at 1 s loaded, beside reading the same 30 days' rows without tiers;
//! 3. the SQLite database's size after a simulated year at the default settings.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use common::{PgDatabase, process_cpu};
use kutanga::{
    config::DatabaseTarget,
    db::Db,
    monitor::{
        History, SeriesKey,
        collector::{Sampler, thread_cpu_time},
        history::Retention,
    },
};
use sea_orm::ConnectionTrait;
use shared::Metric;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let samples: usize = std::env::var("KUTANGA_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    println!(
        "# Kutanga Hub monitoring benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    collector_against_node_exporter(samples).await;
    println!("\n## History queries (30 days of 1-minute rollups, 24 h of raw samples at 1 s, 9 host metrics)\n");
    println!(
        "| backend | load | catch-up rollup | 30 d, 500 points | 24 h, 500 points | 1 h, 500 points | 30 d of minute rows, untiered | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().unwrap();
    history_queries("SQLite", DatabaseTarget::Sqlite(dir.path().join("bench.db"))).await;
    let pg = PgDatabase::create().await;
    history_queries("PostgreSQL", DatabaseTarget::Postgres(pg.url.clone())).await;
    pg.drop_now().await;
    a_simulated_year().await;
}

/// Ten "servers": each a shell with two children, as a game with helpers would be.
fn start_servers() -> Vec<Child> {
    (0..10)
        .map(|_| {
            Command::new("/bin/sh")
                .args(["-c", "sleep 600 & sleep 600 & wait"])
                .stdout(Stdio::null())
                .spawn()
                .expect("sh starts")
        })
        .collect()
}

async fn collector_against_node_exporter(samples: usize) {
    println!("## Collector (1 s interval, 10 running servers, {samples} samples each)\n");
    let mut servers = start_servers();
    let pids: Vec<(i64, i32)> = servers.iter().enumerate().map(|(i, c)| (i as i64 + 1, c.id() as i32)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data = tempfile::tempdir().unwrap();
    let per_sample = tokio::task::spawn_blocking(move || {
        let mut sampler = Sampler::new(data.path().to_owned()).expect("sysinfo");
        sampler.sample(&pids);
        let mut costs = Vec::new();
        for _ in 0..samples {
            let started = Instant::now();
            let before = thread_cpu_time();
            let (_, found) = sampler.sample(&pids);
            costs.push(thread_cpu_time() - before);
            assert_eq!(found.len(), 10);
            std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
        }
        costs.iter().sum::<Duration>() / samples as u32
    })
    .await
    .unwrap();

    let exporter = PathBuf::from("/usr/bin/prometheus-node-exporter");
    let per_scrape = if exporter.exists() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(&exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node exporter starts");
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/metrics");
        let mut up = false;
        for _ in 0..50 {
            if client.get(&url).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "the node exporter answers");
        let before = process_cpu(child.id());
        for _ in 0..samples {
            let started = Instant::now();
            let body = client.get(&url).send().await.unwrap().text().await.unwrap();
            assert!(body.contains("node_cpu_seconds_total"));
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
        }
        let cost = (process_cpu(child.id()) - before) / samples as u32;
        child.kill().ok();
        child.wait().ok();
        Some(cost)
    } else {
        None
    };
    for s in &mut servers {
        s.kill().ok();
        s.wait().ok();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| | CPU per sample | share of one core at 1 s |");
    println!("|---|---|---|");
    println!("| kutanga collector | {:.2} ms | {:.3} % |", ms(per_sample), per_sample.as_secs_f64() * 100.0);
    match per_scrape {
        Some(cost) => {
            println!(
                "| prometheus-node-exporter (one scrape) | {:.2} ms | {:.3} % |",
                ms(cost),
                cost.as_secs_f64() * 100.0
            );
            println!(
                "\ncollector / node exporter = {:.2} (below 1: the collector is the cheaper)",
                per_sample.as_secs_f64() / cost.as_secs_f64().max(1e-9)
            );
        }
        None => println!("\n(prometheus-node-exporter is not installed: `apt-get install prometheus-node-exporter`)"),
    }
}

const HOST_METRICS: [Metric; 9] = Metric::ALL;

/// Inserts rows into a table, many per statement, in transactions of about 50k rows.
async fn bulk(db: &Db, table: &str, columns: &str, rows: impl Iterator<Item = String>) {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let txn = db.write().await.unwrap();
        for _ in 0..50 {
            let chunk: Vec<String> = rows.by_ref().take(1000).collect();
            if chunk.is_empty() {
                break;
            }
            txn.execute_unprepared(&format!("INSERT INTO {table} ({columns}) VALUES {}", chunk.join(",")))
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
    }
}

fn wave(metric: Metric, t: i64) -> f64 {
    let phase = (t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
    let base = match metric.unit() {
        "%" => 40.0,
        "" => 1.5,
        _ => 4e9,
    };
    base * (1.0 + 0.5 * phase.sin())
}

/// 1-minute rollup rows of one series over [from, to), as the upkeep would have made them.
fn minute_rows(series: i64, metric: Metric, from: i64, to: i64) -> impl Iterator<Item = String> {
    (from / 60_000..to / 60_000).map(move |m| {
        let (t, v) = (m * 60_000, wave(metric, m * 60_000));
        format!("(60, {series}, {t}, {v}, {}, {}, 30)", v * 0.9, v * 1.1)
    })
}

/// Raw samples of one series every `step` ms over [from, to).
fn raw_points(metric: Metric, from: i64, to: i64, step: i64) -> Vec<(i64, f64)> {
    (0..(to - from) / step).map(|i| from + i * step).map(|t| (t, wave(metric, t))).collect()
}

const BUCKET_COLUMNS: &str = r#"step_seconds, series_id, bucket_ms, "avg", "min", "max", "count""#;

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn history_queries(backend: &str, target: DatabaseTarget) {
    let db = Db::connect(&target).await.unwrap();
    db.migrate().await.unwrap();
    let now_ms = Utc::now().timestamp_millis() / 60_000 * 60_000;
    let now = DateTime::from_timestamp_millis(now_ms).unwrap();
    let history = History::new(db.clone(), 1, Retention { raw_ms: DAY, minute_ms: 30 * DAY, hour_ms: 365 * DAY });
    let started = Instant::now();
    for metric in HOST_METRICS {
        let key = SeriesKey::host(metric);
        let id = history.series_id(key, true).await.unwrap().unwrap();
        bulk(&db, "metric_buckets", BUCKET_COLUMNS, minute_rows(id, metric, now_ms - 30 * DAY, now_ms)).await;
        history.record_series(key, &raw_points(metric, now_ms - DAY, now_ms, 1000)).await.unwrap();
    }
    let load = started.elapsed();
    if backend == "PostgreSQL" {
        db.conn().execute_unprepared("ANALYZE").await.unwrap();
    }
    let started = Instant::now();
    history.upkeep(now).await.unwrap();
    let catch_up = started.elapsed();
    let key = SeriesKey::host(Metric::CpuPercent);
    let mut figures = Vec::new();
    for span in [30 * DAY, DAY, HOUR] {
        let from = DateTime::from_timestamp_millis(now_ms - span).unwrap();
        let mut times = Vec::new();
        for _ in 0..60 {
            let t = Instant::now();
            let s = history.series(key, from, now, 500, now).await.unwrap();
            times.push(t.elapsed());
            assert!(!s.points.is_empty() && s.points.len() <= 500);
        }
        figures.push(p50(times));
    }
    // The baseline: the same 30 days read as they are stored, one row per minute.
    let mut times = Vec::new();
    let id = history.series_id(key, false).await.unwrap().unwrap();
    let sql = format!(
        r#"SELECT bucket_ms, "avg" FROM metric_buckets WHERE step_seconds = 60 AND series_id = {id} AND bucket_ms >= {} ORDER BY bucket_ms"#,
        now_ms - 30 * DAY
    );
    for _ in 0..20 {
        let t = Instant::now();
        let rows = db.conn().query_all_raw(sea_orm::Statement::from_string(db.backend(), sql.clone())).await.unwrap();
        times.push(t.elapsed());
        assert!(rows.len() >= 43_000);
    }
    let untiered = p50(times);
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {backend} | {:.1} s | {} | {} | {} | {} | {} | {:.3} |",
        load.as_secs_f64(),
        ms(catch_up),
        ms(figures[0]),
        ms(figures[1]),
        ms(figures[2]),
        ms(untiered),
        figures[0].as_secs_f64() / untiered.as_secs_f64()
    );
    db.close().await;
}

/// A year at the default settings (a sample every 2 s; raw 24 h, minutes 30 days, hours 365
/// days) for the host and 10 running servers, day by day with the hub's own upkeep (rollups and
/// expiry) at the end of each day. Rows a tier would already have dropped by the year's end are
/// not written at all (raw before the last 2 days, minutes before the last 32): the upkeep
/// deletes the ones that expire during the last days, as it does every day in service.
async fn a_simulated_year() {
    println!("\n## Database size after a simulated year (SQLite, default settings, host + 10 servers)\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("year.db");
    let db = Db::connect(&DatabaseTarget::Sqlite(path.clone())).await.unwrap();
    db.migrate().await.unwrap();
    let history = History::new(db.clone(), 2, Retention { raw_ms: DAY, minute_ms: 30 * DAY, hour_ms: 365 * DAY });
    let start = Utc::now().timestamp_millis() / DAY * DAY - 365 * DAY;
    let servers: Vec<Option<i64>> = (1..=10).map(Some).collect();
    let started = Instant::now();
    let mut series = Vec::new();
    for (server, metrics) in
        std::iter::once((None, &HOST_METRICS[..])).chain(servers.iter().map(|s| (*s, &Metric::SERVER[..])))
    {
        for metric in metrics {
            let key = SeriesKey { server_id: server, metric: *metric };
            series.push((key, history.series_id(key, true).await.unwrap().unwrap()));
        }
    }
    for day in 0..365 {
        let (from, to) = (start + day * DAY, start + (day + 1) * DAY);
        let mut hours: Vec<String> = Vec::new();
        for (key, id) in &series {
            for h in 0..24 {
                let t = from + h * HOUR;
                let v = wave(key.metric, t);
                hours.push(format!("(3600, {id}, {t}, {v}, {}, {}, 1800)", v * 0.8, v * 1.2));
            }
            if day >= 365 - 32 {
                bulk(&db, "metric_buckets", BUCKET_COLUMNS, minute_rows(*id, key.metric, from, to)).await;
            }
            if day >= 365 - 2 {
                history.record_series(*key, &raw_points(key.metric, from, to, 2000)).await.unwrap();
            }
        }
        bulk(&db, "metric_buckets", BUCKET_COLUMNS, hours.into_iter()).await;
        history.upkeep(DateTime::from_timestamp_millis(to + 15_000).unwrap()).await.unwrap();
    }
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row =
                db.conn().query_one_raw(sea_orm::Statement::from_string(db.backend(), sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    let raw = count("SELECT COUNT(*) FROM metric_points").await;
    let minutes = count("SELECT COUNT(*) FROM metric_buckets WHERE step_seconds = 60").await;
    let hours = count("SELECT COUNT(*) FROM metric_buckets WHERE step_seconds = 3600").await;
    db.conn().execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    db.conn().execute_unprepared("VACUUM").await.unwrap();
    db.close().await;
    let size = std::fs::metadata(&path).unwrap().len() as f64 / (1024.0 * 1024.0);
    println!("| raw rows | minute rows | hour rows | database file | simulated in |");
    println!("|---|---|---|---|---|");
    println!("| {raw} | {minutes} | {hours} | {size:.1} MiB | {:.0} s |", started.elapsed().as_secs_f64());
    println!("\n(29 series: 9 host metrics and 2 for each server; the size stays here from then on)");
}
