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

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::metric_sample;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Set, Statement, Value};
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

/// One point of a served series: the average over its bucket, and the extremes when the bucket
/// holds more than one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at_ms: i64,
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

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
        }
    }

    pub fn from_settings(db: Db, settings: &Settings) -> Self {
        Self::new(db, settings.metrics_interval, Retention::from_settings(settings))
    }

    /// Writes one tick's samples in one statement. Values that are not finite are skipped.
    pub async fn record(&self, at: DateTime<Utc>, values: &[(SeriesKey, f64)]) -> Result<(), DbErr> {
        let at_ms = at.timestamp_millis();
        let rows: Vec<metric_sample::ActiveModel> = values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(key, value)| metric_sample::ActiveModel {
                server_id: Set(key.server_id),
                metric: Set(key.metric.as_str().to_owned()),
                at_ms: Set(at_ms),
                value: Set(*value),
                ..Default::default()
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let txn = self.db.write().await?;
        metric_sample::Entity::insert_many(rows).exec_without_returning(&*txn).await?;
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

    /// Fills `into` from `from`'s closed buckets, continuing after `into`'s last bucket.
    async fn roll_up(&self, from: Tier, into: Tier, now_ms: i64) -> Result<u64, DbErr> {
        let Source::Rollup(step_s) = into.source else { return Ok(0) };
        let conn = self.db.conn();
        let source_end = match from.source {
            Source::Raw => now_ms - ROLLUP_GRACE_MS,
            Source::Rollup(s) => match self.max_bucket(s, None).await? {
                Some(b) => b + from.step_ms,
                None => return Ok(0),
            },
        };
        let Some(oldest) = self.oldest(from).await? else { return Ok(0) };
        let next = self.max_bucket(step_s, None).await?.map(|b| b + into.step_ms);
        let mut start = floor(next.unwrap_or(i64::MIN).max(oldest), into.step_ms);
        let end = floor(source_end.min(now_ms - ROLLUP_GRACE_MS), into.step_ms);
        let mut written = 0;
        while start < end {
            let slice_end = (start + into.slice_ms).min(end);
            let sql = match from.source {
                Source::Raw => format!(
                    r#"INSERT INTO metric_rollups (step_seconds, server_id, metric, bucket_ms, "avg", "min", "max", "count")
                       SELECT {step_s}, server_id, metric, (at_ms / {s}) * {s}, AVG(value), MIN(value), MAX(value), COUNT(*)
                       FROM metric_samples WHERE at_ms >= $1 AND at_ms < $2 GROUP BY 2, 3, 4"#,
                    s = into.step_ms
                ),
                Source::Rollup(from_s) => format!(
                    r#"INSERT INTO metric_rollups (step_seconds, server_id, metric, bucket_ms, "avg", "min", "max", "count")
                       SELECT {step_s}, server_id, metric, (bucket_ms / {s}) * {s},
                              SUM("avg" * "count") / SUM("count"), MIN("min"), MAX("max"), SUM("count")
                       FROM metric_rollups WHERE step_seconds = {from_s} AND bucket_ms >= $1 AND bucket_ms < $2
                       GROUP BY 2, 3, 4"#,
                    s = into.step_ms
                ),
            };
            let txn = self.db.write().await?;
            let res =
                txn.execute_raw(statement(conn.get_database_backend(), &sql, [start.into(), slice_end.into()])).await?;
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
        while let Some(oldest) = self.oldest(tier).await? {
            if oldest >= cutoff {
                break;
            }
            let upper = (oldest + tier.slice_ms).min(cutoff);
            let sql = match tier.source {
                Source::Raw => "DELETE FROM metric_samples WHERE at_ms >= $1 AND at_ms < $2".to_owned(),
                Source::Rollup(s) => {
                    format!(
                        "DELETE FROM metric_rollups WHERE step_seconds = {s} AND bucket_ms >= $1 AND bucket_ms < $2"
                    )
                }
            };
            let txn = self.db.write().await?;
            let res = txn.execute_raw(statement(backend, &sql, [oldest.into(), upper.into()])).await?;
            txn.commit().await?;
            deleted += res.rows_affected();
        }
        Ok(deleted)
    }

    /// The time of a tier's oldest row.
    async fn oldest(&self, tier: Tier) -> Result<Option<i64>, DbErr> {
        let sql = match tier.source {
            Source::Raw => "SELECT MIN(at_ms) FROM metric_samples".to_owned(),
            Source::Rollup(s) => format!("SELECT MIN(bucket_ms) FROM metric_rollups WHERE step_seconds = {s}"),
        };
        self.scalar(&sql, Vec::new()).await
    }

    /// The start of a rollup tier's last bucket, of one series or of all.
    async fn max_bucket(&self, step_s: i64, key: Option<SeriesKey>) -> Result<Option<i64>, DbErr> {
        match key {
            None => {
                self.scalar(&format!("SELECT MAX(bucket_ms) FROM metric_rollups WHERE step_seconds = {step_s}"), vec![])
                    .await
            }
            Some(key) => {
                let (filter, values) = series_filter(key, 1);
                let sql =
                    format!("SELECT MAX(bucket_ms) FROM metric_rollups WHERE step_seconds = {step_s} AND {filter}");
                self.scalar(&sql, values).await
            }
        }
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
        // Coarse to fine: each tier serves from where the coarser one's rollups end.
        let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
        let mut start = from_ms;
        for tier in self.tiers[..=chosen].iter().rev() {
            if start >= to_ms {
                break;
            }
            let end = match tier.source {
                Source::Raw => to_ms,
                Source::Rollup(s) => match self.max_bucket(s, Some(key)).await? {
                    Some(last) => (last + tier.step_ms).min(to_ms),
                    None => continue,
                },
            };
            if end > start {
                self.read_buckets(*tier, key, start, end, step_ms, &mut buckets).await?;
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

    /// Adds one tier's rows in [start, end) into buckets of `step_ms`.
    async fn read_buckets(
        &self,
        tier: Tier,
        key: SeriesKey,
        start: i64,
        end: i64,
        step_ms: i64,
        into: &mut BTreeMap<i64, Bucket>,
    ) -> Result<(), DbErr> {
        let (filter, mut values) = series_filter(key, 1);
        let n = values.len();
        let (a, b) = (n + 1, n + 2);
        let sql = match tier.source {
            Source::Raw => format!(
                "SELECT (at_ms / {step_ms}) * {step_ms}, SUM(value), COUNT(*), MIN(value), MAX(value)
                 FROM metric_samples WHERE {filter} AND at_ms >= ${a} AND at_ms < ${b} GROUP BY 1 ORDER BY 1"
            ),
            Source::Rollup(s) => format!(
                r#"SELECT (bucket_ms / {step_ms}) * {step_ms}, SUM("avg" * "count"), SUM("count"), MIN("min"), MAX("max")
                   FROM metric_rollups WHERE step_seconds = {s} AND {filter} AND bucket_ms >= ${a} AND bucket_ms < ${b}
                   GROUP BY 1 ORDER BY 1"#
            ),
        };
        values.extend([start.into(), end.into()]);
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

/// `metric = $n AND server_id ...` with its values, placeholders numbered from `first`.
fn series_filter(key: SeriesKey, first: usize) -> (String, Vec<Value>) {
    let mut values: Vec<Value> = vec![key.metric.as_str().into()];
    let server = match key.server_id {
        None => "server_id IS NULL".to_owned(),
        Some(id) => {
            values.push(id.into());
            format!("server_id = ${}", first + 1)
        }
    };
    (format!("metric = ${first} AND {server}"), values)
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
