//! Chart data from the hub: a metric's history over a range from a query and, for a live
//! range, its new samples from a subscription. The subscription is opened (and buffered) before
//! the history is asked for, the two are merged by time, and after a reconnect the history is
//! asked for again to fill what was missed.

use std::collections::BTreeMap;

use leptos::prelude::*;
use shared::metric::Point;

use super::series::{self, Series};
use crate::{
    api::{
        self, ApiError,
        ops::{
            HostHistory, HostSamples, ServerHistory, ServerSamples, host_history, host_samples, server_history,
            server_samples,
        },
    },
    collect, live, time,
};

/// Whose metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Host,
    Server(i64),
}

/// Which span of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last `window_ms`, moving with live samples.
    Live(i64),
    /// A fixed range in Unix ms.
    Fixed(i64, i64),
}

/// The series of a set of metrics, by metric name, and the range they cover.
#[derive(Clone, Copy)]
pub struct Feed {
    pub series: RwSignal<BTreeMap<&'static str, Series>>,
    pub range: RwSignal<(i64, i64)>,
    pub error: RwSignal<Option<ApiError>>,
    pub loaded: RwSignal<bool>,
}

impl Feed {
    /// The series of some metrics, renamed for a chart's legend.
    pub fn pick(&self, metrics: &'static [(&'static str, &'static str)]) -> Signal<Vec<Series>> {
        let series = self.series;
        Signal::derive(move || {
            series.with(|all| {
                metrics
                    .iter()
                    .filter_map(|(metric, name)| {
                        all.get(metric).map(|s| Series { name: (*name).to_owned(), ..s.clone() })
                    })
                    .collect()
            })
        })
    }
}

/// The most points asked of a history query: about one per two pixels of a wide chart.
const MAX_POINTS: i64 = 600;

/// Starts feeding `metrics` of `source` over `span`; stops when the calling component goes.
pub fn feed(source: Source, metrics: &'static [&'static str], span: Span) -> Feed {
    let now = time::now_ms() as i64;
    let (from, to) = match span {
        Span::Live(window) => (now - window, now),
        Span::Fixed(from, to) => (from, to),
    };
    let feed = Feed {
        series: RwSignal::new(collect::map(metrics.iter().map(|m| (*m, Series::new(*m, 1))))),
        range: RwSignal::new((from, to)),
        error: RwSignal::new(None),
        loaded: RwSignal::new(false),
    };
    if let Span::Live(window) = span {
        let on_sample = move |at_ms: i64, values: Vec<(&'static str, f64)>| {
            let from = at_ms - window;
            feed.range.set((from, at_ms.max(time::now_ms() as i64)));
            feed.series.update(|all| {
                for (metric, value) in values {
                    if let Some(s) = all.get_mut(metric) {
                        series::push(&mut s.points, Point::sample(at_ms, value), from);
                    }
                }
            });
        };
        let resume: Box<dyn Fn()> = Box::new(move || load_history(feed, source, metrics, span));
        let id = match source {
            Source::Host => live::subscribe::<HostSamples>(
                host_samples::Variables {},
                move |event| match event {
                    Ok(data) => {
                        let s = data.host_metrics;
                        let Some(at) = time::parse_ms(&s.at) else { return };
                        on_sample(at, host_values(&s));
                    }
                    Err(e) => feed.error.set(Some(e)),
                },
                Some(resume),
            ),
            Source::Server(id) => live::subscribe::<ServerSamples>(
                server_samples::Variables { server_id: id.to_string() },
                move |event| match event {
                    Ok(data) => {
                        let s = data.server_metrics;
                        let Some(at) = time::parse_ms(&s.at) else { return };
                        on_sample(at, vec![("cpu.percent", s.cpu_percent), ("memory.used_bytes", s.memory_bytes)]);
                    }
                    Err(e) => feed.error.set(Some(e)),
                },
                Some(resume),
            ),
        };
        on_cleanup(move || live::unsubscribe(id));
    }
    load_history(feed, source, metrics, span);
    feed
}

fn host_values(s: &host_samples::HostSamplesHostMetrics) -> Vec<(&'static str, f64)> {
    let percent = |used: f64, total: f64| if total > 0.0 { used / total * 100.0 } else { 0.0 };
    vec![
        ("cpu.percent", s.cpu_percent),
        ("memory.used_bytes", s.memory_used_bytes),
        ("memory.percent", percent(s.memory_used_bytes, s.memory_total_bytes)),
        ("disk.used_bytes", s.disk_used_bytes),
        ("disk.percent", percent(s.disk_used_bytes, s.disk_total_bytes)),
        ("net.rx_bytes_per_s", s.net_rx_bytes_per_second),
        ("net.tx_bytes_per_s", s.net_tx_bytes_per_second),
        ("load.1", s.load1),
    ]
}

fn load_history(feed: Feed, source: Source, metrics: &'static [&'static str], span: Span) {
    leptos::task::spawn_local(async move {
        let now = time::now_ms() as i64;
        let (from, to) = match span {
            Span::Live(window) => (now - window, now),
            Span::Fixed(from, to) => (from, to),
        };
        let range = || TimeRange { from: time::rfc3339(from as f64), to: time::rfc3339(to as f64) };
        for metric in metrics {
            let answer = match source {
                Source::Host => api::run::<HostHistory>(host_history::Variables {
                    metric: (*metric).to_owned(),
                    range: range().into(),
                    max_points: Some(MAX_POINTS),
                })
                .await
                .map(|d| {
                    (
                        d.host_metrics.step_seconds,
                        d.host_metrics.points.into_iter().map(|p| (p.at, p.value, p.min, p.max)).collect::<Vec<_>>(),
                    )
                }),
                Source::Server(id) => api::run::<ServerHistory>(server_history::Variables {
                    server_id: id.to_string(),
                    metric: (*metric).to_owned(),
                    range: range().into(),
                    max_points: Some(MAX_POINTS),
                })
                .await
                .map(|d| {
                    (
                        d.server_metrics.step_seconds,
                        d.server_metrics.points.into_iter().map(|p| (p.at, p.value, p.min, p.max)).collect::<Vec<_>>(),
                    )
                }),
            };
            match answer {
                Ok((step, points)) => {
                    let history: Vec<Point> = points
                        .into_iter()
                        .filter_map(|(at, value, min, max)| {
                            Some(Point { at_ms: time::parse_ms(&at)?, value, min, max })
                        })
                        .collect();
                    feed.series.update(|all| {
                        if let Some(s) = all.get_mut(metric) {
                            s.points = series::merge(&history, &s.points);
                            s.step_seconds = step;
                        }
                    });
                }
                Err(e) => {
                    feed.error.set(Some(e));
                    return;
                }
            }
        }
        feed.error.set(None);
        feed.loaded.set(true);
    });
}

/// A time range for either history query.
struct TimeRange {
    from: String,
    to: String,
}

impl From<TimeRange> for host_history::TimeRangeInput {
    fn from(r: TimeRange) -> Self {
        Self { from: r.from, to: r.to }
    }
}

impl From<TimeRange> for server_history::TimeRangeInput {
    fn from(r: TimeRange) -> Self {
        Self { from: r.from, to: r.to }
    }
}
