//! The metric history: rollups and retention over simulated days (an injected clock, on real
//! SQLite and PostgreSQL), tier choice, peaks that survive downsampling, gaps that stay gaps, and
//! the hostMetrics / serverMetrics queries on a running hub with their permissions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{Backend, Store, TestHub, code};
use kutanga::{
    config::DatabaseTarget,
    db::Db,
    monitor::{
        History, SeriesKey,
        history::{Retention, Series},
    },
};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use shared::Metric;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A migrated database of the backend, without a hub (so that nothing else writes to it).
async fn database(store: &Store) -> Db {
    let target = match &store.pg {
        Some(pg) => DatabaseTarget::Postgres(pg.url.clone()),
        None => DatabaseTarget::Sqlite(store.dir.path().join("history.db")),
    };
    let db = Db::connect(&target).await.unwrap();
    db.migrate().await.unwrap();
    db
}

fn retention() -> Retention {
    Retention { raw_ms: DAY, minute_ms: 30 * DAY, hour_ms: 365 * DAY }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

/// A fixed start, on an hour boundary.
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

async fn count(db: &Db, sql: &str) -> i64 {
    let row = db.conn().query_one_raw(Statement::from_string(db.backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn rollups_and_retention_follow_a_simulated_month(backend: Backend) {
    let store = Store::new(backend).await;
    let db = database(&store).await;
    // Short raw retention and a coarse collector so that a month fits in seconds of test time.
    let h = History::new(db.clone(), 60, Retention { raw_ms: 2 * HOUR, minute_ms: 3 * DAY, hour_ms: 20 * DAY });
    let mut now = T0;
    for _day in 0..25 {
        // One sample a minute, value = the hour of the day, upkeep every simulated hour.
        for _hour in 0..24 {
            let rows: Vec<(i64, f64)> =
                (0..60).map(|m| now + m * 60_000).map(|t| (t, ((t - T0) / HOUR % 24) as f64)).collect();
            h.record_series(SeriesKey::host(Metric::CpuPercent), &rows).await.unwrap();
            now += HOUR;
            h.upkeep(at(now + 15_000)).await.unwrap();
        }
    }
    let raw = count(&db, "SELECT COUNT(*) FROM metric_points").await;
    let minutes = count(&db, "SELECT COUNT(*) FROM metric_buckets WHERE step_seconds = 60").await;
    let hours = count(&db, "SELECT COUNT(*) FROM metric_buckets WHERE step_seconds = 3600").await;
    // Each tier holds its retention (give or take the slice being written), nothing older.
    assert_eq!(raw, 119, "raw rows");
    assert_eq!(minutes, 3 * 24 * 60 - 1, "minute rows");
    assert_eq!(hours, 20 * 24 - 1, "hour rows");
    let oldest_hour = count(&db, "SELECT MIN(bucket_ms) FROM metric_buckets WHERE step_seconds = 3600").await;
    assert!(oldest_hour >= now - 20 * DAY, "an hour rollup outlived its retention");
    // Rollups are exact: an hour bucket of constant samples has that value, 60 minutes' count.
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(
            db.backend(),
            format!(
                r#"SELECT "avg", "min", "max", "count" FROM metric_buckets WHERE step_seconds = 3600 AND bucket_ms = {}"#,
                now - 5 * DAY + 7 * HOUR
            ),
        ))
        .await
        .unwrap()
        .expect("the hour rollup exists");
    let (avg, min, max, n): (f64, f64, f64, i64) = (
        row.try_get_by_index(0).unwrap(),
        row.try_get_by_index(1).unwrap(),
        row.try_get_by_index(2).unwrap(),
        row.try_get_by_index::<i32>(3).map(i64::from).unwrap(),
    );
    assert_eq!((avg, min, max, n), (7.0, 7.0, 7.0, 60));
    // A second upkeep at the same instant changes nothing: rollups are incremental.
    let again = h.upkeep(at(now + 15_000)).await.unwrap();
    assert_eq!((again.rolled_up, again.deleted), (0, 0));

    // The queries pick their tier: the last hour from raw samples, three days from minutes
    // (downsampled to 500 points), three weeks from hours.
    let q = |from: i64, max: u32| h.series(SeriesKey::host(Metric::CpuPercent), at(from), at(now), max, at(now));
    let last_hour = q(now - HOUR, 500).await.unwrap();
    assert_eq!(last_hour.step_seconds, 60);
    assert_eq!(last_hour.points.len(), 60);
    let days = q(now - 3 * DAY + HOUR, 500).await.unwrap();
    assert_eq!(days.step_seconds % 60, 0);
    assert!(
        days.step_seconds > 60 && days.points.len() <= 500,
        "{} s, {} points",
        days.step_seconds,
        days.points.len()
    );
    let weeks = q(now - 19 * DAY, 500).await.unwrap();
    assert_eq!(weeks.step_seconds, 3600);
    assert_eq!(weeks.points.len(), 19 * 24);
    assert_eq!(weeks.points[7].value, 7.0);
    // Values that are not finite are never stored.
    h.record(at(now), &[(SeriesKey::host(Metric::Load1), f64::NAN)]).await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM metric_series WHERE metric = 'load.1'").await, 0);
    db.close().await;
}

async fn downsampling_keeps_peaks_and_gaps_stay_gaps(backend: Backend) {
    let store = Store::new(backend).await;
    let db = database(&store).await;
    let h = History::new(db.clone(), 1, retention());
    let key = SeriesKey::server(42, Metric::CpuPercent);
    // An hour at 1 s: flat 10 % with one 1-second spike to 95 %, and a 10-minute hole.
    let spike = T0 + 1_234_000;
    let (hole_from, hole_to) = (T0 + 2_000_000, T0 + 2_600_000);
    let mut rows = Vec::new();
    let mut t = T0;
    while t < T0 + HOUR {
        if !(hole_from..hole_to).contains(&t) {
            rows.push((t, if t == spike { 95.0 } else { 10.0 }));
        }
        t += 1000;
    }
    h.record_series(key, &rows).await.unwrap();
    // The recorder's own path writes a tick of several series in one statement.
    h.record(
        at(T0 + HOUR - 500),
        &[(SeriesKey::host(Metric::CpuPercent), 50.0), (SeriesKey::server(43, Metric::CpuPercent), 5.0)],
    )
    .await
    .unwrap();
    let now = T0 + HOUR;
    let s: Series = h.series(key, at(T0), at(now), 100, at(now)).await.unwrap();
    assert_eq!(s.step_seconds, 36);
    assert!(s.points.len() <= 100);
    let peak = s.points.iter().map(|p| p.max.unwrap_or(p.value)).fold(0.0, f64::max);
    assert_eq!(peak, 95.0, "the spike survives as a bucket's maximum");
    // No point inside the hole; the points around it are more than two steps apart.
    assert!(!s.points.iter().any(|p| p.at_ms >= hole_from && p.at_ms + 36_000 <= hole_to));
    let gaps = s.points.windows(2).filter(|w| shared::metric::is_gap(w[0].at_ms, w[1].at_ms, s.step_seconds)).count();
    assert_eq!(gaps, 1, "exactly the hole is a gap");
    // Other series (the host, another server) are not mixed in.
    let other = h.series(SeriesKey::server(43, Metric::CpuPercent), at(T0), at(now), 100, at(now)).await.unwrap();
    assert_eq!(other.points.iter().map(|p| p.value).collect::<Vec<_>>(), vec![5.0]);
    // The recent end comes from the raw tier while its minutes are not rolled up yet; once
    // rolled up, the same query answers the same points.
    let before = h.series(key, at(T0), at(now), 30, at(now)).await.unwrap();
    h.upkeep(at(now + 60_000)).await.unwrap();
    let after = h.series(key, at(T0), at(now), 30, at(now + 60_000)).await.unwrap();
    assert_eq!(before.step_seconds, after.step_seconds);
    assert_eq!(before.points.len(), after.points.len());
    for (a, b) in before.points.iter().zip(&after.points) {
        assert_eq!((a.at_ms, a.max), (b.at_ms, b.max));
        assert!((a.value - b.value).abs() < 1e-9);
    }
    db.close().await;
}

async fn history_queries_serve_recorded_samples_with_permissions(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    let q = "query($m: String!, $from: DateTime!, $to: DateTime!, $n: Int) {
        hostMetrics(metric: $m, range: {from: $from, to: $to}, maxPoints: $n) { metric stepSeconds points { at value min max } } }";
    let vars = |m: &str, n: i64| {
        let now = Utc::now();
        json!({ "m": m, "from": (now - chrono::Duration::minutes(5)).to_rfc3339(), "to": now.to_rfc3339(), "n": n })
    };
    // The collector's samples reach the history within a few seconds.
    let mut points = 0;
    for _ in 0..30 {
        let res = hub.gql(Some(&admin), q, vars("memory.used_bytes", 500)).await;
        assert!(res["errors"].is_null(), "{res}");
        points = res["data"]["hostMetrics"]["points"].as_array().unwrap().len();
        if points >= 2 {
            let series = &res["data"]["hostMetrics"];
            assert_eq!(series["stepSeconds"], 1);
            assert!(series["points"][0]["value"].as_f64().unwrap() > 0.0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(points >= 2, "recorded samples are served");

    // Bad input names its field; nothing is guessed.
    let res = hub.gql(Some(&admin), q, vars("cpu", 500)).await;
    assert_eq!((code(&res), res["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("metric")));
    let res = hub.gql(Some(&admin), q, vars("cpu.percent", 0)).await;
    assert_eq!(res["errors"][0]["extensions"]["field"], "maxPoints");
    let now = Utc::now().to_rfc3339();
    let res = hub.gql(Some(&admin), q, json!({ "m": "cpu.percent", "from": now, "to": now })).await;
    assert_eq!(res["errors"][0]["extensions"]["field"], "range", "{res}");

    // A user without metrics.read is refused; a server's history needs server.read on it.
    let user = hub.user_with_roles("player@hub.test", &["User"]).await;
    let res = hub.gql(Some(&user), q, vars("cpu.percent", 500)).await;
    assert_eq!(code(&res), "FORBIDDEN");
    let server = hub.create_burner(&admin).await;
    let sq = "query($id: ID!, $m: String!, $from: DateTime!, $to: DateTime!) {
        serverMetrics(serverId: $id, metric: $m, range: {from: $from, to: $to}) { stepSeconds points { value } } }";
    let mut v = vars("cpu.percent", 500);
    v["id"] = json!(server);
    let res = hub.gql(Some(&user), sq, v.clone()).await;
    assert_eq!(code(&res), "NOT_FOUND");
    let res = hub.gql(Some(&admin), sq, v.clone()).await;
    assert!(res["errors"].is_null(), "{res}");
    assert_eq!(res["data"]["serverMetrics"]["points"], json!([]), "a server that never ran has no history");
    // Once it runs, its busy loop is in its history.
    hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": server })).await;
    let mut busy = false;
    for _ in 0..40 {
        v["to"] = json!(Utc::now().to_rfc3339());
        let res = hub.gql(Some(&admin), sq, v.clone()).await;
        let points = res["data"]["serverMetrics"]["points"].as_array().unwrap().clone();
        if points.iter().any(|p| p["value"].as_f64().unwrap() > 25.0) {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(busy, "the server's CPU is recorded");
    v["m"] = json!("load.1");
    let res = hub.gql(Some(&admin), sq, v).await;
    assert_eq!(res["errors"][0]["extensions"]["field"], "metric", "servers do not record the load");
    hub.stop().await;
}

async fn the_first_layout_is_carried_over(backend: Backend) {
    use migration::MigratorTrait;
    let store = Store::new(backend).await;
    let target = match &store.pg {
        Some(pg) => DatabaseTarget::Postgres(pg.url.clone()),
        None => DatabaseTarget::Sqlite(store.dir.path().join("old.db")),
    };
    let db = Db::connect(&target).await.unwrap();
    migration::Migrator::up(db.conn(), Some(3)).await.unwrap();
    db.conn()
        .execute_unprepared(&format!(
            r#"INSERT INTO metric_samples (server_id, metric, at_ms, value) VALUES
                 (NULL, 'cpu.percent', {T0}, 10), (NULL, 'cpu.percent', {}, 20), (7, 'cpu.percent', {T0}, 150);
               INSERT INTO metric_rollups (step_seconds, server_id, metric, bucket_ms, "avg", "min", "max", "count") VALUES
                 (60, NULL, 'memory.used_bytes', {T0}, 5, 4, 6, 30)"#,
            T0 + 1000
        ))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM metric_series").await, 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM metric_points").await, 3);
    let h = History::new(db.clone(), 1, retention());
    let now = T0 + HOUR;
    let cpu = h.series(SeriesKey::host(Metric::CpuPercent), at(T0), at(now), 10, at(now)).await.unwrap();
    assert_eq!(cpu.points.iter().map(|p| p.max.unwrap_or(p.value)).collect::<Vec<_>>(), [20.0]);
    let server = h.series(SeriesKey::server(7, Metric::CpuPercent), at(T0), at(now), 10, at(now)).await.unwrap();
    assert_eq!(server.points[0].value, 150.0);
    let memory = h.series(SeriesKey::host(Metric::MemoryUsedBytes), at(T0), at(now), 10, at(now)).await.unwrap();
    assert_eq!((memory.points[0].min, memory.points[0].max), (Some(4.0), Some(6.0)));
    db.close().await;
}

on_both!(
    the_first_layout_is_carried_over,
    rollups_and_retention_follow_a_simulated_month,
    downsampling_keeps_peaks_and_gaps_stay_gaps,
    history_queries_serve_recorded_samples_with_permissions,
);
