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
    fn a_gap_is_more_than_two_steps() {
        assert!(!is_gap(0, 4_000, 2));
        assert!(is_gap(0, 4_001, 2));
    }
}
