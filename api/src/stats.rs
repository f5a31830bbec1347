//! The hub's metrics for Prometheus (`GET /metrics`): the latest sample of the host and of each
//! running server, and the hub's own work: HTTP requests, GraphQL operations by name and
//! outcome, open subscriptions, and what the collector costs.
//!
//! Label values stay bounded: routes are the router's patterns, operations are named by the root
//! fields they select (validated against the schema), and past [`MAX_OPERATION_LABELS`] distinct
//! names any new one is counted as `other`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::monitor::Tick;

/// Distinct GraphQL operation labels kept before new ones become `other`.
pub const MAX_OPERATION_LABELS: usize = 256;

/// The registry and every metric in it. Cheap to clone.
#[derive(Clone)]
pub struct Stats {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    graphql_operations: IntCounterVec,
    operation_names: Arc<Mutex<HashSet<String>>>,
    subscriptions_open: IntGauge,
    collector_cpu: Counter,
    collector_samples: IntCounter,
    collector_last_wall: Gauge,
    host: HostGauges,
    server_cpu: GaugeVec,
    server_memory: GaugeVec,
}

#[derive(Clone)]
struct HostGauges {
    cpu: Gauge,
    cpu_core: GaugeVec,
    memory_used: Gauge,
    memory_total: Gauge,
    swap_used: Gauge,
    swap_total: Gauge,
    disk_used: GaugeVec,
    disk_total: GaugeVec,
    rx: Gauge,
    tx: Gauge,
    load: GaugeVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, metric: T) -> prometheus::Result<T> {
    r.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<Gauge> {
    register(r, Gauge::with_opts(Opts::new(name, help))?)
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    register(r, GaugeVec::new(Opts::new(name, help), labels)?)
}

impl Stats {
    /// GraphQL subscriptions open now.
    pub fn subscriptions_open(&self) -> i64 {
        self.subscriptions_open.get()
    }

    /// The registry with every metric (an error only for a bad definition here).
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let host = HostGauges {
            cpu: gauge(&r, "kutanga_host_cpu_usage_ratio", "Busy share of all CPU cores together (0 to 1).")?,
            cpu_core: gauge_vec(
                &r,
                "kutanga_host_cpu_core_usage_ratio",
                "Busy share of each CPU core (0 to 1).",
                &["core"],
            )?,
            memory_used: gauge(&r, "kutanga_host_memory_used_bytes", "Memory in use.")?,
            memory_total: gauge(&r, "kutanga_host_memory_total_bytes", "Memory installed.")?,
            swap_used: gauge(&r, "kutanga_host_swap_used_bytes", "Swap in use.")?,
            swap_total: gauge(&r, "kutanga_host_swap_total_bytes", "Swap available.")?,
            disk_used: gauge_vec(
                &r,
                "kutanga_host_disk_used_bytes",
                "Space used on each mounted disk.",
                &["mountpoint"],
            )?,
            disk_total: gauge_vec(&r, "kutanga_host_disk_total_bytes", "Size of each mounted disk.", &["mountpoint"])?,
            rx: gauge(
                &r,
                "kutanga_host_network_receive_bytes_per_second",
                "Bytes received per second (loopback excluded).",
            )?,
            tx: gauge(
                &r,
                "kutanga_host_network_transmit_bytes_per_second",
                "Bytes sent per second (loopback excluded).",
            )?,
            load: gauge_vec(&r, "kutanga_host_load_average", "Load average over 1, 5 and 15 minutes.", &["minutes"])?,
        };
        let server_labels = &["server_id"];
        Ok(Self {
            http_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new("kutanga_http_requests_total", "HTTP requests answered, by route and status."),
                    &["method", "route", "status"],
                )?,
            )?,
            http_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("kutanga_http_request_duration_seconds", "Time to answer an HTTP request."),
                    &["route"],
                )?,
            )?,
            graphql_operations: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "kutanga_graphql_operations_total",
                        "GraphQL operations, by type, the root fields they select, and outcome (ok or the error code).",
                    ),
                    &["type", "operation", "outcome"],
                )?,
            )?,
            operation_names: Arc::default(),
            subscriptions_open: register(
                &r,
                IntGauge::new("kutanga_graphql_subscriptions_open", "GraphQL subscriptions open now.")?,
            )?,
            collector_cpu: register(
                &r,
                Counter::new("kutanga_collector_cpu_seconds_total", "CPU time the resource collector has used.")?,
            )?,
            collector_samples: register(
                &r,
                IntCounter::new("kutanga_collector_samples_total", "Samples the resource collector has taken.")?,
            )?,
            collector_last_wall: gauge(&r, "kutanga_collector_last_duration_seconds", "Wall time of the last sample.")?,
            host,
            server_cpu: gauge_vec(
                &r,
                "kutanga_server_cpu_usage_ratio",
                "Busy share of one core used by a running game server's processes (2 is two cores).",
                server_labels,
            )?,
            server_memory: gauge_vec(
                &r,
                "kutanga_server_memory_bytes",
                "Resident memory of a running game server's processes.",
                server_labels,
            )?,
            registry: r,
        })
    }

    /// Takes in one collector tick: the latest values and the collector's cost.
    pub fn observe_tick(&self, tick: &Tick) {
        let h = &tick.host;
        let g = &self.host;
        g.cpu.set(h.cpu_percent / 100.0);
        for (i, c) in h.cpu_per_core.iter().enumerate() {
            g.cpu_core.with_label_values(&[i.to_string()]).set(c / 100.0);
        }
        g.memory_used.set(h.memory_used_bytes);
        g.memory_total.set(h.memory_total_bytes);
        g.swap_used.set(h.swap_used_bytes);
        g.swap_total.set(h.swap_total_bytes);
        g.disk_used.reset();
        g.disk_total.reset();
        for d in &h.disks {
            g.disk_used.with_label_values(&[d.mount_point.as_str()]).set(d.used_bytes);
            g.disk_total.with_label_values(&[d.mount_point.as_str()]).set(d.total_bytes);
        }
        g.rx.set(h.net_rx_bytes_per_second);
        g.tx.set(h.net_tx_bytes_per_second);
        for (minutes, value) in ["1", "5", "15"].iter().zip(h.load) {
            g.load.with_label_values(&[*minutes]).set(value);
        }
        // Only running servers have a series: a stopped one disappears rather than reading 0.
        self.server_cpu.reset();
        self.server_memory.reset();
        for s in &tick.servers {
            let id = s.server_id.to_string();
            self.server_cpu.with_label_values(&[id.as_str()]).set(s.cpu_percent / 100.0);
            self.server_memory.with_label_values(&[id.as_str()]).set(s.memory_bytes);
        }
        self.collector_cpu.inc_by(tick.cost.cpu.as_secs_f64());
        self.collector_samples.inc();
        self.collector_last_wall.set(tick.cost.wall.as_secs_f64());
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests.with_label_values(&[method, route, status.to_string().as_str()]).inc();
        self.http_duration.with_label_values(&[route]).observe(seconds);
    }

    pub fn graphql_operation(&self, kind: &str, operation: &str, outcome: &str) {
        let operation = {
            let mut names = self.operation_names.lock().unwrap_or_else(|p| p.into_inner());
            if names.contains(operation) || (names.len() < MAX_OPERATION_LABELS && names.insert(operation.to_owned())) {
                operation
            } else {
                "other"
            }
        };
        self.graphql_operations.with_label_values(&[kind, operation, outcome]).inc();
    }

    /// Counts an open subscription until the guard is dropped.
    pub fn subscription_opened(&self) -> SubscriptionGuard {
        self.subscriptions_open.inc();
        SubscriptionGuard(self.subscriptions_open.clone())
    }

    /// Everything in the text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Decrements the open-subscriptions gauge when dropped.
pub struct SubscriptionGuard(IntGauge);

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
