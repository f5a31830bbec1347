//! Resource history (queries) and live samples (subscriptions) of the host and of each server.

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, future, stream::BoxStream};
use shared::Permission as Key;

use super::{
    guard::{Need, SignedIn, caller, services},
    live,
    users::parse_arg,
};
use crate::{
    error::{ApiError, GqlResult, IntoGql},
    events::{HubEvent, Topic},
    monitor,
    servers::access,
};

/// A span of time.
#[derive(InputObject)]
pub struct TimeRangeInput {
    /// Its start (included).
    from: DateTime<Utc>,
    /// Its end (excluded); after `from`.
    to: DateTime<Utc>,
}

/// One point of a history: the average over its bucket (`stepSeconds` wide, starting at `at`),
/// with the bucket's extremes when it holds several samples.
#[derive(SimpleObject)]
pub struct MetricPoint {
    /// The start of its bucket.
    at: DateTime<Utc>,
    /// The average over the bucket, in the metric's unit.
    value: f64,
    /// The bucket's lowest value; null when the bucket holds a single sample.
    min: Option<f64>,
    /// The bucket's highest value; null when the bucket holds a single sample.
    max: Option<f64>,
}

/// A metric over a range. Buckets without data (the hub was down, the server was not running)
/// have no point: where two points are more than two steps apart, draw a gap, not a line.
#[derive(SimpleObject)]
pub struct MetricSeries {
    /// cpu.percent, memory.used_bytes, memory.percent, swap.used_bytes, disk.used_bytes,
    /// disk.percent, net.rx_bytes_per_s, net.tx_bytes_per_s, load.1 (a server: the first two).
    metric: String,
    /// The resolution actually served.
    step_seconds: i32,
    /// The points, oldest first; empty when there is no data in the range.
    points: Vec<MetricPoint>,
}

impl From<monitor::Series> for MetricSeries {
    fn from(s: monitor::Series) -> Self {
        Self {
            metric: s.metric.as_str().to_owned(),
            step_seconds: i32::try_from(s.step_seconds).unwrap_or(i32::MAX),
            points: s
                .points
                .into_iter()
                .map(|p| MetricPoint {
                    at: DateTime::from_timestamp_millis(p.at_ms).unwrap_or_default(),
                    value: p.value,
                    min: p.min,
                    max: p.max,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct MetricsQuery;

#[Object]
impl MetricsQuery {
    /// The host's history of one metric over `range`, in at most `maxPoints` points, read from
    /// the finest stored tier that fits (raw, 1-minute or 1-hour). Needs `metrics.read`.
    #[graphql(guard = "Need(Key::MetricsRead)")]
    async fn host_metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The metric's name, such as `cpu.percent` (see `MetricSeries.metric`).")] metric: String,
        #[graphql(desc = "The span of time to read.")] range: TimeRangeInput,
        #[graphql(default = 500, desc = "At most this many points, 1 to 10000; null: 500.")] max_points: Option<i32>,
    ) -> GqlResult<MetricSeries> {
        let (s, me) = (services(ctx)?, caller(ctx)?);
        monitor::series(s, me, monitor::Target::Host, &metric, range.from, range.to, points(max_points))
            .await
            .map(MetricSeries::from)
            .gql()
    }

    /// A server's history of one metric (its whole process tree). Needs `server.read` on it.
    #[graphql(guard = "SignedIn")]
    async fn server_metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] server_id: ID,
        #[graphql(desc = "`cpu.percent` or `memory.used_bytes`.")] metric: String,
        #[graphql(desc = "The span of time to read.")] range: TimeRangeInput,
        #[graphql(default = 500, desc = "At most this many points, 1 to 10000; null: 500.")] max_points: Option<i32>,
    ) -> GqlResult<MetricSeries> {
        let (s, me) = (services(ctx)?, caller(ctx)?);
        let id = parse_arg("serverId", &server_id).gql()?;
        monitor::series(s, me, monitor::Target::Server(id), &metric, range.from, range.to, points(max_points))
            .await
            .map(MetricSeries::from)
            .gql()
    }
}

/// `maxPoints`: an explicit null means the default.
fn points(max_points: Option<i32>) -> i64 {
    i64::from(max_points.unwrap_or(500))
}

/// One disk.
#[derive(SimpleObject)]
pub struct DiskSample {
    /// Where it is mounted.
    mount_point: String,
    /// The space in use (its size less the space available), in bytes.
    used_bytes: f64,
    /// Its size, in bytes.
    total_bytes: f64,
}

/// The host at one instant.
#[derive(SimpleObject)]
pub struct HostSample {
    /// When it was taken.
    at: DateTime<Utc>,
    /// All cores together, 0-100.
    cpu_percent: f64,
    /// Each core's use, 0-100, in the order of the cores.
    cpu_per_core: Vec<f64>,
    /// Memory in use, in bytes.
    memory_used_bytes: f64,
    /// All the memory, in bytes.
    memory_total_bytes: f64,
    /// Swap in use, in bytes.
    swap_used_bytes: f64,
    /// All the swap, in bytes.
    swap_total_bytes: f64,
    /// The filesystem that holds the hub's data (and its game servers).
    disk_used_bytes: f64,
    /// The size of that filesystem, in bytes.
    disk_total_bytes: f64,
    /// Every mounted disk.
    disks: Vec<DiskSample>,
    /// Bytes received per second over every network interface but loopback, since the sample
    /// before.
    net_rx_bytes_per_second: f64,
    /// Bytes sent per second over every network interface but loopback, since the sample before.
    net_tx_bytes_per_second: f64,
    /// The load average over 1 minute.
    load1: f64,
    /// The load average over 5 minutes.
    load5: f64,
    /// The load average over 15 minutes.
    load15: f64,
}

impl From<&monitor::HostSample> for HostSample {
    fn from(h: &monitor::HostSample) -> Self {
        Self {
            at: h.at,
            cpu_percent: h.cpu_percent,
            cpu_per_core: h.cpu_per_core.clone(),
            memory_used_bytes: h.memory_used_bytes,
            memory_total_bytes: h.memory_total_bytes,
            swap_used_bytes: h.swap_used_bytes,
            swap_total_bytes: h.swap_total_bytes,
            disk_used_bytes: h.disk_used_bytes,
            disk_total_bytes: h.disk_total_bytes,
            disks: h
                .disks
                .iter()
                .map(|d| DiskSample {
                    mount_point: d.mount_point.clone(),
                    used_bytes: d.used_bytes,
                    total_bytes: d.total_bytes,
                })
                .collect(),
            net_rx_bytes_per_second: h.net_rx_bytes_per_second,
            net_tx_bytes_per_second: h.net_tx_bytes_per_second,
            load1: h.load[0],
            load5: h.load[1],
            load15: h.load[2],
        }
    }
}

/// A running server's whole process tree at one instant.
#[derive(SimpleObject)]
pub struct ServerSample {
    /// The server's id.
    server_id: ID,
    /// When it was taken.
    at: DateTime<Utc>,
    /// Of one core: 200 means two cores busy.
    cpu_percent: f64,
    /// The resident memory of its process tree, in bytes.
    memory_bytes: f64,
}

/// At most one sample per interval, judged on the samples' own times and never on when they
/// arrive: a sample delivered late must not make the next, on-time one look too early. A little
/// early is allowed, as the collector's ticks jitter.
struct Throttle {
    every: chrono::Duration,
    last: Option<DateTime<Utc>>,
}

impl Throttle {
    fn every(seconds: i32) -> Self {
        Self { every: chrono::Duration::milliseconds(i64::from(seconds) * 1000 - 200), last: None }
    }

    fn pass(&mut self, at: DateTime<Utc>) -> bool {
        // A sample older than the last one passed means the wall clock was set back: start over
        // from it, or nothing would pass until the clock caught up again.
        let pass = self.last.is_none_or(|last| at < last || at - last >= self.every);
        if pass {
            self.last = Some(at);
        }
        pass
    }
}

#[derive(Default)]
pub struct MetricsSubscription;

#[Subscription]
impl MetricsSubscription {
    /// The host's samples, at most one per `intervalSeconds` (never faster than the collector);
    /// a subscriber that falls behind skips samples. Needs `metrics.read`.
    #[graphql(guard = "Need(Key::MetricsRead)")]
    async fn host_metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1, desc = "The least time between two samples, in seconds: 1 to 3600.")]
        interval_seconds: i32,
    ) -> async_graphql::Result<BoxStream<'static, GqlResult<HostSample>>> {
        let (s, me) = (services(ctx)?.clone(), caller(ctx)?.clone());
        if !(1..=3600).contains(&interval_seconds) {
            return Err(ApiError::bad_input("intervalSeconds", "intervalSeconds is 1 to 3600")).gql();
        }
        let mut throttle = Throttle::every(interval_seconds);
        let samples = s
            .bus
            .subscribe(Topic::Samples)
            .filter_map(move |e| {
                future::ready(match e {
                    HubEvent::HostSample(h) if throttle.pass(h.at) => Some(HostSample::from(h.as_ref())),
                    _ => None,
                })
            })
            .boxed();
        let check: live::Check = Box::new(|_, me| Box::pin(async move { me.require(Key::MetricsRead) }));
        Ok(live::while_allowed(&s, live::LiveCaller::new(&me), check, samples).boxed())
    }

    /// One running server's samples (CPU and memory of its process tree). Needs `server.read`.
    #[graphql(guard = "SignedIn")]
    async fn server_metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] server_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, GqlResult<ServerSample>>> {
        let (s, me) = (services(ctx)?.clone(), caller(ctx)?.clone());
        let id = parse_arg("serverId", &server_id).gql()?;
        if let Err(e) = access::require(s.db.conn(), &me, id, Key::ServerRead).await {
            return Ok(futures_util::stream::once(future::ready(Err(e.extend()))).boxed());
        }
        let samples = s
            .bus
            .subscribe(Topic::Samples)
            .filter_map(move |e| {
                future::ready(match e {
                    HubEvent::ServerSample(x) if x.server_id == id => Some(ServerSample {
                        server_id: ID(id.to_string()),
                        at: x.at,
                        cpu_percent: x.cpu_percent,
                        memory_bytes: x.memory_bytes,
                    }),
                    _ => None,
                })
            })
            .boxed();
        let check: live::Check = Box::new(move |s, me| {
            Box::pin(async move { access::require(s.db.conn(), &me, id, Key::ServerRead).await.map(|_| ()) })
        });
        Ok(live::while_allowed(&s, live::LiveCaller::new(&me), check, samples).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(interval: i32, times_ms: &[i64]) -> Vec<i64> {
        let mut throttle = Throttle::every(interval);
        times_ms.iter().copied().filter(|t| throttle.pass(DateTime::from_timestamp_millis(*t).unwrap())).collect()
    }

    #[test]
    fn the_throttle_keeps_to_the_samples_own_times() {
        // Every sample at 1 s, whenever it is delivered.
        assert_eq!(passed(1, &[0, 1000, 2000, 3000]), [0, 1000, 2000, 3000]);
        // Collector jitter: a sample a little early still passes.
        assert_eq!(passed(1, &[0, 950, 1990, 2900]), [0, 950, 1990, 2900]);
        // Faster samples are thinned to the interval.
        assert_eq!(passed(1, &[0, 500, 1000, 1500, 2000]), [0, 1000, 2000]);
        assert_eq!(passed(5, &[0, 1000, 2000, 3000, 4000, 5000, 6000, 9900]), [0, 5000, 9900]);
        // The clock set back an hour: delivery goes on at once, at the interval.
        assert_eq!(passed(1, &[3_600_000, 3_601_000, 1000, 1500, 2000]), [3_600_000, 3_601_000, 1000, 2000]);
    }
}
