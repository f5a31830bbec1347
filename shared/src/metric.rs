//! The resource metrics the hub records, by the names the API, the history and /metrics use.

use std::{fmt, str::FromStr};

/// One recorded metric. Host metrics describe the machine; server metrics a game server's
/// whole process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// All cores together, 0-100 for the host; of one core for a server (200: two cores busy).
    CpuPercent,
    MemoryUsedBytes,
    MemoryPercent,
    SwapUsedBytes,
    /// The filesystem that holds the hub's data dir.
    DiskUsedBytes,
    DiskPercent,
    NetRxBytesPerS,
    NetTxBytesPerS,
    /// The one-minute load average.
    Load1,
}

/// Whose metric: the host's or a game server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Host,
    Server,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Self::CpuPercent,
        Self::MemoryUsedBytes,
        Self::MemoryPercent,
        Self::SwapUsedBytes,
        Self::DiskUsedBytes,
        Self::DiskPercent,
        Self::NetRxBytesPerS,
        Self::NetTxBytesPerS,
        Self::Load1,
    ];

    /// What a game server records.
    pub const SERVER: [Metric; 2] = [Self::CpuPercent, Self::MemoryUsedBytes];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CpuPercent => "cpu.percent",
            Self::MemoryUsedBytes => "memory.used_bytes",
            Self::MemoryPercent => "memory.percent",
            Self::SwapUsedBytes => "swap.used_bytes",
            Self::DiskUsedBytes => "disk.used_bytes",
            Self::DiskPercent => "disk.percent",
            Self::NetRxBytesPerS => "net.rx_bytes_per_s",
            Self::NetTxBytesPerS => "net.tx_bytes_per_s",
            Self::Load1 => "load.1",
        }
    }

    /// Whether the host or a server (or both) records this metric.
    pub fn applies_to(self, scope: Scope) -> bool {
        match scope {
            Scope::Host => true,
            Scope::Server => Self::SERVER.contains(&self),
        }
    }

    /// The unit, for axis labels.
    pub const fn unit(self) -> &'static str {
        match self {
            Self::CpuPercent | Self::MemoryPercent | Self::DiskPercent => "%",
            Self::MemoryUsedBytes | Self::SwapUsedBytes | Self::DiskUsedBytes => "bytes",
            Self::NetRxBytesPerS | Self::NetTxBytesPerS => "bytes/s",
            Self::Load1 => "",
        }
    }

    /// The names a scope records, for error messages.
    pub fn names(scope: Scope) -> Vec<&'static str> {
        Self::ALL.into_iter().filter(|m| m.applies_to(scope)).map(Metric::as_str).collect()
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown metric `{s}`; known: {}", Self::names(Scope::Host).join(", ")))
    }
}

/// One point of a series: the average over its bucket, and the extremes when the bucket holds
/// more than one sample (a rollup).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Point {
    /// A single sample.
    pub const fn sample(at_ms: i64, value: f64) -> Self {
        Self { at_ms, value, min: None, max: None }
    }
}

/// Runs of points without a gap between neighbours: each is drawn as one line.
pub fn segments(points: &[Point], step_seconds: i64) -> Vec<&[Point]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || is_gap(points[i - 1].at_ms, points[i].at_ms, step_seconds) {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

/// A value in its unit, for axis labels and tooltips: `42%`, `3.5 GiB`, `2.0 KiB/s`.
pub fn format_value(unit: &str, v: f64) -> String {
    match unit {
        "%" => format!("{v:.0}%"),
        "bytes" => format_bytes(v),
        "bytes/s" => format!("{}/s", format_bytes(v)),
        _ => format!("{v:.2}"),
    }
}

/// Bytes in binary units: `512 B`, `3.5 GiB`.
pub fn format_bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Whether two consecutive points of a series with `step_seconds` are apart by a gap (the hub was
/// down, or the server was not running): a line must not join them.
pub fn is_gap(previous_ms: i64, next_ms: i64, step_seconds: i64) -> bool {
    next_ms - previous_ms > 2 * step_seconds * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>(), Ok(m));
        }
        assert!("cpu".parse::<Metric>().unwrap_err().contains("cpu.percent"));
    }

    #[test]
    fn servers_record_a_subset() {
        assert!(Metric::CpuPercent.applies_to(Scope::Server));
        assert!(!Metric::Load1.applies_to(Scope::Server));
        assert!(Metric::ALL.iter().all(|m| m.applies_to(Scope::Host)));
    }

    #[test]
    fn gaps_split_the_line() {
        let p = Point::sample;
        let points = [p(0, 1.0), p(2_000, 1.0), p(60_000, 1.0), p(62_000, 1.0), p(64_000, 1.0)];
        let runs: Vec<usize> = segments(&points, 2).iter().map(|s| s.len()).collect();
        assert_eq!(runs, [2, 3]);
        assert!(segments(&[], 2).is_empty());
    }

    #[test]
    fn values_read_like_units() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(3.5 * 1024.0 * 1024.0 * 1024.0), "3.5 GiB");
        assert_eq!(format_value(Metric::CpuPercent.unit(), 42.0), "42%");
        assert_eq!(format_value(Metric::NetRxBytesPerS.unit(), 2048.0), "2.0 KiB/s");
    }

    #[test]
    fn a_gap_is_more_than_two_steps() {
        assert!(!is_gap(0, 4_000, 2));
        assert!(is_gap(0, 4_001, 2));
    }
}

/// The built-in rule types on suspicious activity. A rule counts one kind of event per client
/// address and fires when one address reaches its threshold within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suspicion {
    /// Sign-ins refused (unknown account, wrong password, disabled account).
    LoginFailures,
    /// A rotated refresh token presented again (a stolen token; the session is revoked).
    RefreshReuse,
    /// Requests answered FORBIDDEN (probing for what a token may do).
    Forbidden,
}

impl Suspicion {
    pub const ALL: [Suspicion; 3] = [Self::LoginFailures, Self::RefreshReuse, Self::Forbidden];

    /// The rule's metric name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoginFailures => "security.login_failures",
            Self::RefreshReuse => "security.refresh_reuse",
            Self::Forbidden => "security.forbidden",
        }
    }

    /// The events in words, for rule descriptions.
    pub const fn words(self) -> &'static str {
        match self {
            Self::LoginFailures => "failed sign-ins",
            Self::RefreshReuse => "reused refresh tokens",
            Self::Forbidden => "FORBIDDEN answers",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}
