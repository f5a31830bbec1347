//! Resources: one collector samples the host and each running game server; every tick goes live
//! to subscribers (through the bus) and into the tiered history, which upkeep rolls up and
//! expires every minute.

pub mod chart;
pub mod collector;
pub mod history;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use shared::{Metric, Permission, metric::Scope};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use collector::{Collector, DiskUsage, HostSample, ServerSample};
pub use history::{History, SeriesKey};

use crate::{app::Services, auth::Caller, error::ApiError, servers::access};

pub use history::Series;

/// Whose history a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Host,
    Server(i64),
}

/// The most points one history query may ask for.
pub const MAX_POINTS: i64 = 10_000;

/// A history query as the API and the charts take it: checked, then answered by [`History`].
/// The host needs `metrics.read`; a server needs `server.read` on it (global or granted).
pub async fn series(
    s: &Services,
    caller: &Caller,
    target: Target,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_points: i64,
) -> Result<Series, ApiError> {
    let key = authorize(s, caller, target, metric).await?;
    read(s, key, from, to, max_points).await
}

/// The series the caller asks for, once the caller may read it.
pub async fn authorize(s: &Services, caller: &Caller, target: Target, metric: &str) -> Result<SeriesKey, ApiError> {
    match target {
        Target::Host => caller.require(Permission::MetricsRead)?,
        Target::Server(id) => {
            access::require(s.db.conn(), caller, id, Permission::ServerRead).await?;
        }
    }
    key_of(target, metric)
}

/// The series of a target's metric (no permission check: see [`authorize`]).
pub fn key_of(target: Target, metric: &str) -> Result<SeriesKey, ApiError> {
    Ok(match target {
        Target::Host => SeriesKey::host(parse_metric(metric, Scope::Host)?),
        Target::Server(id) => SeriesKey::server(id, parse_metric(metric, Scope::Server)?),
    })
}

/// Reads a checked series over a range.
pub async fn read(
    s: &Services,
    key: SeriesKey,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_points: i64,
) -> Result<Series, ApiError> {
    if from >= to {
        return Err(ApiError::bad_input("range", "range.from must be before range.to"));
    }
    if !(1..=MAX_POINTS).contains(&max_points) {
        return Err(ApiError::bad_input("maxPoints", format!("maxPoints is 1 to {MAX_POINTS}")));
    }
    Ok(s.history.series(key, from, to, max_points as u32, Utc::now()).await?)
}

/// A metric name the scope records.
pub fn parse_metric(name: &str, scope: Scope) -> Result<Metric, ApiError> {
    match name.parse::<Metric>() {
        Ok(m) if m.applies_to(scope) => Ok(m),
        _ => Err(ApiError::bad_input(
            "metric",
            format!("unknown metric `{name}`; known: {}", Metric::names(scope).join(", ")),
        )),
    }
}

/// Everything one collector pass saw.
#[derive(Debug, Clone)]
pub struct Tick {
    pub host: Arc<HostSample>,
    pub servers: Vec<Arc<ServerSample>>,
    /// What taking it cost.
    pub cost: Cost,
}

/// The collector's cost for one tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// CPU time of the collector's thread.
    pub cpu: Duration,
    pub wall: Duration,
}

impl Tick {
    /// The tick as rows of the history.
    pub fn values(&self) -> Vec<(SeriesKey, f64)> {
        let h = &self.host;
        let mut values = vec![
            (Metric::CpuPercent, h.cpu_percent),
            (Metric::MemoryUsedBytes, h.memory_used_bytes),
            (Metric::MemoryPercent, percent(h.memory_used_bytes, h.memory_total_bytes)),
            (Metric::SwapUsedBytes, h.swap_used_bytes),
            (Metric::DiskUsedBytes, h.disk_used_bytes),
            (Metric::DiskPercent, percent(h.disk_used_bytes, h.disk_total_bytes)),
            (Metric::NetRxBytesPerS, h.net_rx_bytes_per_second),
            (Metric::NetTxBytesPerS, h.net_tx_bytes_per_second),
            (Metric::Load1, h.load[0]),
        ]
        .into_iter()
        .map(|(m, v)| (SeriesKey::host(m), v))
        .collect::<Vec<_>>();
        for s in &self.servers {
            values.push((SeriesKey::server(s.server_id, Metric::CpuPercent), s.cpu_percent));
            values.push((SeriesKey::server(s.server_id, Metric::MemoryUsedBytes), s.memory_bytes));
        }
        values
    }
}

fn percent(part: f64, total: f64) -> f64 {
    if total > 0.0 { part / total * 100.0 } else { 0.0 }
}

/// How often the history is rolled up and expired.
const UPKEEP_EVERY: Duration = Duration::from_secs(60);

/// Starts the collector, the task that records its ticks (and evaluates the alert rules on
/// them), and the history's upkeep.
pub fn start(services: &Services, stop: CancellationToken) {
    let settings = &services.settings;
    let history = services.history.clone();
    let (ticks, mut received) = mpsc::channel::<Tick>(16);
    Collector::spawn(
        Duration::from_secs(settings.metrics_interval),
        settings.data_dir.clone(),
        services.bus.clone(),
        services.supervisor.clone(),
        ticks,
        stop.clone(),
    );
    let (s, token) = (services.clone(), stop.clone());
    services.tasks.spawn(async move {
        let history = &s.history;
        loop {
            tokio::select! {
                tick = received.recv() => match tick {
                    Some(tick) => {
                        s.stats.observe_tick(&tick);
                        let values = tick.values();
                        if let Err(e) = history.record(tick.host.at, &values).await {
                            tracing::warn!(error = %e, "cannot record a resource sample");
                        }
                        if let Err(e) = s.alerts.observe(&s, tick.host.at, &values).await {
                            tracing::warn!(error = %e, "cannot evaluate the alert rules");
                        }
                    }
                    None => break,
                },
                () = token.cancelled() => break,
            }
        }
    });
    services.tasks.spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => match history.upkeep(Utc::now()).await {
                    Ok(done) => tracing::debug!(rolled_up = done.rolled_up, deleted = done.deleted, "metric history upkeep"),
                    Err(e) => tracing::warn!(error = %e, "metric history upkeep failed"),
                },
                () = stop.cancelled() => break,
            }
        }
    });
}
