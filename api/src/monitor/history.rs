//! The metric history, tiered as Netdata keeps it: raw samples (one per collector interval),
//! 1-minute rollups and 1-hour rollups (average, minimum, maximum, count), each tier with a
//! retention of its own.
//!
//! Rollups are computed incrementally by set-based SQL: each tier continues after its last bucket,
//! reading the finer tier's closed buckets only. Expired rows are deleted by time range, one
//! bounded slice per statement. Every function takes `now` from its caller, so tests drive
//! simulated days through the same code the collector uses.
//!
//! A history query picks the coarsest tier that still gives `maxPoints` over the range (the finest
//! one when none does), aggregates it further into buckets of a multiple of its step when needed
//! (so a peak survives as a bucket's maximum) and reads the recent end, which that tier has not
//! rolled up yet, from the finer tiers. Buckets without data are left out: a gap stays a gap.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use shared::Metric;

use crate::{config::Settings, db::Db};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A bucket is rolled up once it ended this long ago (samples are written as they are taken).
const ROLLUP_GRACE_MS: i64 = 10_000;

/// One series: a metric of the host (`server_id` None) or of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub server_id: Option<i64>,
    pub metric: Metric,
}

impl SeriesKey {
    pub fn host(metric: Metric) -> Self {
        Self { server_id: None, metric }
    }

    pub fn server(server_id: i64, metric: Metric) -> Self {
        Self { server_id: Some(server_id), metric }
    }
}

pub use shared::metric::Point;

/// A served series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Metric,
    /// The width of each point's bucket.
    pub step_seconds: i64,
    pub points: Vec<Point>,
}

/// How long each tier keeps its rows.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw_ms: i64,
    pub minute_ms: i64,
    pub hour_ms: i64,
}

impl Retention {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            raw_ms: i64::from(s.metrics_raw_hours) * HOUR_MS,
            minute_ms: i64::from(s.metrics_minute_days) * DAY_MS,
            hour_ms: i64::from(s.metrics_hour_days) * DAY_MS,
        }
    }
}

/// Where a tier's rows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Raw,
    /// metric_rollups with this step in seconds.
    Rollup(i64),
}

#[derive(Debug, Clone, Copy)]
struct Tier {
    source: Source,
    step_ms: i64,
    kept_ms: i64,
    /// The width of one expiry slice.
    slice_ms: i64,
}

/// Which end of a tier.
#[derive(Debug, Clone, Copy)]
enum Edge {
    First,
    Last,
}

/// What one round of housekeeping did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upkeep {
    pub rolled_up: u64,
    pub deleted: u64,
}

/// The history store.
#[derive(Clone, Debug)]
pub struct History {
    db: Db,
    /// Finest first: raw, minutes, hours.
    tiers: [Tier; 3],
    /// Series ids by key (a series is never renamed or deleted, so the cache stays true).
    ids: Arc<Mutex<HashMap<SeriesKey, i64>>>,
}

impl History {
    /// A store whose raw samples come every `raw_step_seconds`.
    pub fn new(db: Db, raw_step_seconds: u64, retention: Retention) -> Self {
        let raw_step_ms = (raw_step_seconds as i64).max(1) * 1000;
        Self {
            db,
            tiers: [
                Tier { source: Source::Raw, step_ms: raw_step_ms, kept_ms: retention.raw_ms, slice_ms: 10 * MINUTE_MS },
                Tier { source: Source::Rollup(60), step_ms: MINUTE_MS, kept_ms: retention.minute_ms, slice_ms: DAY_MS },
                Tier {
                    source: Source::Rollup(3600),
                    step_ms: HOUR_MS,
                    kept_ms: retention.hour_ms,
                    slice_ms: 30 * DAY_MS,
                },
            ],
            ids: Arc::default(),
        }
    }

    pub fn from_settings(db: Db, settings: &Settings) -> Self {
        Self::new(db, settings.metrics_interval, Retention::from_settings(settings))
    }

    /// The id of a series; made on first use when `create`, else None for a series never seen.
    pub async fn series_id(&self, key: SeriesKey, create: bool) -> Result<Option<i64>, DbErr> {
        if let Some(id) = self.ids.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Some(*id));
        }
        let scope = key.server_id.unwrap_or(0);
        let find = "SELECT id FROM metric_series WHERE scope_id = $1 AND metric = $2";
        let mut id = self.scalar(find, vec![scope.into(), key.metric.as_str().into()]).await?;
        if id.is_none() && create {
            let txn = self.db.write_history().await?;
            let insert = "INSERT INTO metric_series (scope_id, metric) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            txn.execute_raw(statement(self.db.backend(), insert, [scope.into(), key.metric.as_str().into()])).await?;
            txn.commit().await?;
            id = self.scalar(find, vec![scope.into(), key.metric.as_str().into()]).await?;
        }
        if let Some(id) = id {
            self.ids.lock().unwrap_or_else(|p| p.into_inner()).insert(key, id);
        }
        Ok(id)
    }

    /// Writes one tick's samples in one statement. Values that are not finite are skipped.
    pub async fn record(&self, at: DateTime<Utc>, values: &[(SeriesKey, f64)]) -> Result<(), DbErr> {
        let at_ms = at.timestamp_millis();
        let mut rows = Vec::with_capacity(values.len());
        for (key, value) in values.iter().filter(|(_, v)| v.is_finite()) {
            if let Some(id) = self.series_id(*key, true).await? {
                rows.push((id, at_ms, *value));
            }
        }
        self.insert_points(&rows).await
    }

    /// Writes many samples of one series (an import, a backfill, a benchmark's load).
    pub async fn record_series(&self, key: SeriesKey, points: &[(i64, f64)]) -> Result<(), DbErr> {
        let Some(id) = self.series_id(key, true).await? else { return Ok(()) };
        let rows: Vec<(i64, i64, f64)> =
            points.iter().filter(|(_, v)| v.is_finite()).map(|(at, v)| (id, *at, *v)).collect();
        for chunk in rows.chunks(5_000) {
            self.insert_points(chunk).await?;
        }
        Ok(())
    }

    /// Inserts (series, time, value) rows; a second sample of a series at the same millisecond
    /// is ignored.
    async fn insert_points(&self, rows: &[(i64, i64, f64)]) -> Result<(), DbErr> {
        if rows.is_empty() {
            return Ok(());
        }
        let txn = self.db.write_history().await?;
        // Three values a row stay far below SQLite's limit on bound parameters.
        for chunk in rows.chunks(1_000) {
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
            let mut tuples = Vec::with_capacity(chunk.len());
            for (i, (id, at, v)) in chunk.iter().enumerate() {
                tuples.push(format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
                values.extend([Value::from(*id), Value::from(*at), Value::from(*v)]);
            }
            let sql = format!(
                "INSERT INTO metric_points (series_id, at_ms, value) VALUES {} ON CONFLICT DO NOTHING",
                tuples.join(", ")
            );
            txn.execute_raw(statement(self.db.backend(), &sql, values)).await?;
        }
        txn.commit().await
    }

    /// Rolls up every closed bucket not rolled up yet, then deletes what each tier no longer
    /// keeps. Called every minute; after a long stop it catches up in bounded slices.
    pub async fn upkeep(&self, now: DateTime<Utc>) -> Result<Upkeep, DbErr> {
        let now_ms = now.timestamp_millis();
        let mut done = Upkeep::default();
        for pair in self.tiers.windows(2) {
            done.rolled_up += self.roll_up(pair[0], pair[1], now_ms).await?;
        }
        for tier in self.tiers {
            done.deleted += self.expire(tier, now_ms).await?;
        }
        Ok(done)
    }

    /// Fills `into` from `from`'s closed buckets, continuing after `into`'s last bucket. The
    /// statements walk the series and each series' rows in key order: no table scan.
    async fn roll_up(&self, from: Tier, into: Tier, now_ms: i64) -> Result<u64, DbErr> {
        let Source::Rollup(step_s) = into.source else { return Ok(0) };
        let source_end = match from.source {
            Source::Raw => now_ms - ROLLUP_GRACE_MS,
            Source::Rollup(_) => match self.edge(from.source, Edge::Last).await? {
                Some(b) => b + from.step_ms,
                None => return Ok(0),
            },
        };
        let Some(oldest) = self.edge(from.source, Edge::First).await? else { return Ok(0) };
        let next = self.edge(into.source, Edge::Last).await?.map(|b| b + into.step_ms);
        let mut start = floor(next.unwrap_or(i64::MIN).max(oldest), into.step_ms);
        let end = floor(source_end.min(now_ms - ROLLUP_GRACE_MS), into.step_ms);
        let mut written = 0;
        while start < end {
            let slice_end = (start + into.slice_ms).min(end);
            let sql = match from.source {
                Source::Raw => format!(
                    r#"INSERT INTO metric_buckets (step_seconds, series_id, bucket_ms, "avg", "min", "max", "count")
                       SELECT {step_s}, p.series_id, (p.at_ms / {s}) * {s}, AVG(p.value), MIN(p.value), MAX(p.value), COUNT(*)
                       FROM metric_series x JOIN metric_points p ON p.series_id = x.id
                       WHERE p.at_ms >= $1 AND p.at_ms < $2 GROUP BY 2, 3"#,
                    s = into.step_ms
                ),
                Source::Rollup(from_s) => format!(
                    r#"INSERT INTO metric_buckets (step_seconds, series_id, bucket_ms, "avg", "min", "max", "count")
                       SELECT {step_s}, b.series_id, (b.bucket_ms / {s}) * {s},
                              SUM(b."avg" * b."count") / SUM(b."count"), MIN(b."min"), MAX(b."max"), SUM(b."count")
                       FROM metric_series x JOIN metric_buckets b ON b.step_seconds = {from_s} AND b.series_id = x.id
                       WHERE b.bucket_ms >= $1 AND b.bucket_ms < $2 GROUP BY 2, 3"#,
                    s = into.step_ms
                ),
            };
            let txn = self.db.write_history().await?;
            let res = txn.execute_raw(statement(self.db.backend(), &sql, [start.into(), slice_end.into()])).await?;
            txn.commit().await?;
            written += res.rows_affected();
            start = slice_end;
        }
        Ok(written)
    }

    /// Deletes the tier's rows older than its retention, one time slice per statement.
    async fn expire(&self, tier: Tier, now_ms: i64) -> Result<u64, DbErr> {
        let cutoff = now_ms - tier.kept_ms;
        let backend = self.db.backend();
        let mut deleted = 0;
        while let Some(oldest) = self.edge(tier.source, Edge::First).await? {
            if oldest >= cutoff {
                break;
            }
            let upper = (oldest + tier.slice_ms).min(cutoff);
            let sql = match tier.source {
                Source::Raw => "DELETE FROM metric_points WHERE series_id IN (SELECT id FROM metric_series)
                                AND at_ms >= $1 AND at_ms < $2"
                    .to_owned(),
                Source::Rollup(s) => format!(
                    "DELETE FROM metric_buckets WHERE step_seconds = {s} AND series_id IN (SELECT id FROM metric_series)
                     AND bucket_ms >= $1 AND bucket_ms < $2"
                ),
            };
            let txn = self.db.write_history().await?;
            let res = txn.execute_raw(statement(backend, &sql, [oldest.into(), upper.into()])).await?;
            txn.commit().await?;
            deleted += res.rows_affected();
        }
        Ok(deleted)
    }

    /// The time of a tier's oldest (or newest) row over every series: one key lookup a series.
    async fn edge(&self, source: Source, edge: Edge) -> Result<Option<i64>, DbErr> {
        let f = match edge {
            Edge::First => "MIN",
            Edge::Last => "MAX",
        };
        let sql = match source {
            Source::Raw => {
                format!(
                    "SELECT {f}((SELECT {f}(at_ms) FROM metric_points WHERE series_id = x.id)) FROM metric_series x"
                )
            }
            Source::Rollup(s) => format!(
                "SELECT {f}((SELECT {f}(bucket_ms) FROM metric_buckets WHERE step_seconds = {s} AND series_id = x.id))
                 FROM metric_series x"
            ),
        };
        self.scalar(&sql, Vec::new()).await
    }

    async fn scalar(&self, sql: &str, values: Vec<Value>) -> Result<Option<i64>, DbErr> {
        let row = self.db.conn().query_one_raw(statement(self.db.backend(), sql, values)).await?;
        row.map(|r| r.try_get_by_index::<Option<i64>>(0)).transpose().map(Option::flatten)
    }

    /// A series over [from, to) with at most `max_points` points (see the module docs).
    pub async fn series(
        &self,
        key: SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
        now: DateTime<Utc>,
    ) -> Result<Series, DbErr> {
        let (from_ms, now_ms) = (from.timestamp_millis(), now.timestamp_millis());
        let to_ms = to.timestamp_millis().min(now_ms + 1);
        let max_points = i64::from(max_points.max(1));
        let chosen = self.pick_tier(from_ms, to_ms, max_points, now_ms);
        let step_ms = bucket_width(self.tiers[chosen].step_ms, from_ms, to_ms, max_points);
        let Some(id) = self.series_id(key, false).await? else {
            return Ok(Series { metric: key.metric, step_seconds: step_ms / 1000, points: Vec::new() });
        };
        // Coarse to fine: each tier serves from where the coarser one's rollups end.
        let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
        let mut start = from_ms;
        for tier in self.tiers[..=chosen].iter().rev() {
            if start >= to_ms {
                break;
            }
            let end = match tier.source {
                Source::Raw => to_ms,
                Source::Rollup(s) => {
                    let sql = format!(
                        "SELECT MAX(bucket_ms) FROM metric_buckets WHERE step_seconds = {s} AND series_id = $1"
                    );
                    match self.scalar(&sql, vec![id.into()]).await? {
                        Some(last) => (last + tier.step_ms).min(to_ms),
                        None => continue,
                    }
                }
            };
            if end > start {
                self.read_buckets(*tier, id, start, end, step_ms, &mut buckets).await?;
                start = end;
            }
        }
        let points = buckets
            .into_iter()
            .map(|(at_ms, b)| {
                let several = b.count > 1;
                Point {
                    at_ms,
                    value: b.sum / b.count as f64,
                    min: several.then_some(b.min),
                    max: several.then_some(b.max),
                }
            })
            .collect();
        Ok(Series { metric: key.metric, step_seconds: step_ms / 1000, points })
    }

    /// The coarsest tier that still reaches back to `from` and whose step gives at least
    /// `max_points` over the range; the finest tier that reaches back when none is that fine.
    fn pick_tier(&self, from_ms: i64, to_ms: i64, max_points: i64, now_ms: i64) -> usize {
        let reaching: Vec<usize> =
            (0..self.tiers.len()).filter(|&i| now_ms - self.tiers[i].kept_ms <= from_ms).collect();
        let Some(&finest) = reaching.first() else { return self.tiers.len() - 1 };
        let wanted = (to_ms - from_ms) / max_points;
        reaching.into_iter().rev().find(|&i| self.tiers[i].step_ms <= wanted).unwrap_or(finest)
    }

    /// Adds one tier's rows of a series in [start, end) into buckets of `step_ms`.
    async fn read_buckets(
        &self,
        tier: Tier,
        series_id: i64,
        start: i64,
        end: i64,
        step_ms: i64,
        into: &mut BTreeMap<i64, Bucket>,
    ) -> Result<(), DbErr> {
        let sql = match tier.source {
            Source::Raw => format!(
                "SELECT (at_ms / {step_ms}) * {step_ms}, SUM(value), COUNT(*), MIN(value), MAX(value)
                 FROM metric_points WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY 1 ORDER BY 1"
            ),
            Source::Rollup(s) => format!(
                r#"SELECT (bucket_ms / {step_ms}) * {step_ms}, SUM("avg" * "count"), SUM("count"), MIN("min"), MAX("max")
                   FROM metric_buckets WHERE step_seconds = {s} AND series_id = $1 AND bucket_ms >= $2 AND bucket_ms < $3
                   GROUP BY 1 ORDER BY 1"#
            ),
        };
        let values: Vec<Value> = vec![series_id.into(), start.into(), end.into()];
        for row in self.db.conn().query_all_raw(statement(self.db.backend(), &sql, values)).await? {
            let at: i64 = row.try_get_by_index(0)?;
            let part = Bucket {
                sum: row.try_get_by_index(1)?,
                count: row.try_get_by_index(2)?,
                min: row.try_get_by_index(3)?,
                max: row.try_get_by_index(4)?,
            };
            into.entry(at).and_modify(|b| b.merge(&part)).or_insert(part);
        }
        Ok(())
    }
}

/// A bucket being assembled (it may straddle two tiers).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    sum: f64,
    count: i64,
    min: f64,
    max: f64,
}

impl Bucket {
    fn merge(&mut self, other: &Bucket) {
        self.sum += other.sum;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The smallest multiple of `tier_step_ms` whose aligned buckets over [from, to) number at most
/// `max_points`.
fn bucket_width(tier_step_ms: i64, from_ms: i64, to_ms: i64, max_points: i64) -> i64 {
    let span = (to_ms - from_ms).max(1);
    let mut k = (span / (tier_step_ms * max_points)).max(1);
    loop {
        let step = tier_step_ms * k;
        let buckets = (to_ms - 1).div_euclid(step) - from_ms.div_euclid(step) + 1;
        if buckets <= max_points {
            return step;
        }
        k += 1;
    }
}

fn floor(ms: i64, step_ms: i64) -> i64 {
    ms.div_euclid(step_ms) * step_ms
}

/// A statement with `$n` placeholders (SQLite reads `$n` too, numbered by first appearance:
/// every statement here uses them in order).
fn statement(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_never_exceed_max_points() {
        for (step, span, max) in [(2_000, DAY_MS, 500), (MINUTE_MS, 30 * DAY_MS, 500), (HOUR_MS, 365 * DAY_MS, 7)] {
            for from in [0, 1_234_567, 999_999_999] {
                let w = bucket_width(step, from, from + span, max);
                assert_eq!(w % step, 0);
                assert!((from + span - 1).div_euclid(w) - from.div_euclid(w) < max);
            }
        }
        assert_eq!(bucket_width(2_000, 0, 600_000, 500), 2_000);
    }
}
