//! The collector: one long-lived `sysinfo::System` on a thread of its own (sysinfo blocks),
//! refreshing only what a sample needs, every `KUTANGA_METRICS_INTERVAL` seconds.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sysinfo::{Disks, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Cost, Tick};
use crate::{
    events::{EventBus, HubEvent},
    supervisor::Supervisor,
};

/// One disk as seen at a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskUsage {
    pub mount_point: String,
    pub used_bytes: f64,
    pub total_bytes: f64,
}

/// The host at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSample {
    pub at: DateTime<Utc>,
    pub cpu_percent: f64,
    pub cpu_per_core: Vec<f64>,
    pub memory_used_bytes: f64,
    pub memory_total_bytes: f64,
    pub swap_used_bytes: f64,
    pub swap_total_bytes: f64,
    /// The filesystem that holds the hub's data dir (where game servers live).
    pub disk_used_bytes: f64,
    pub disk_total_bytes: f64,
    pub disks: Vec<DiskUsage>,
    pub net_rx_bytes_per_second: f64,
    pub net_tx_bytes_per_second: f64,
    pub load: [f64; 3],
}

/// One running game server (its whole process tree) at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSample {
    pub server_id: i64,
    pub at: DateTime<Utc>,
    pub cpu_percent: f64,
    pub memory_bytes: f64,
}

/// The running collector.
pub struct Collector;

impl Collector {
    /// Starts sampling on a thread of its own until `stop` is cancelled. Each tick goes to the
    /// bus (live subscribers) and to `ticks` (history, alerts); when `ticks` is full the tick is
    /// dropped there rather than waited for: the collector never blocks on the database.
    pub fn spawn(
        interval: Duration,
        data_dir: PathBuf,
        bus: Arc<dyn EventBus>,
        supervisor: Supervisor,
        ticks: mpsc::Sender<Tick>,
        stop: CancellationToken,
    ) {
        let result = std::thread::Builder::new().name("kutanga-collector".into()).spawn(move || {
            let mut state = match Sampler::new(data_dir) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "the resource collector cannot start");
                    return;
                }
            };
            while !stop.is_cancelled() {
                let (started, cpu_before) = (Instant::now(), thread_cpu_time());
                let (host, servers) = state.sample(&supervisor.live_pids());
                let cost = Cost { cpu: thread_cpu_time().saturating_sub(cpu_before), wall: started.elapsed() };
                let tick = Tick { host: Arc::new(host), servers: servers.into_iter().map(Arc::new).collect(), cost };
                bus.publish(HubEvent::HostSample(tick.host.clone()));
                for s in &tick.servers {
                    bus.publish(HubEvent::ServerSample(s.clone()));
                }
                if let Err(mpsc::error::TrySendError::Full(_)) = ticks.try_send(tick) {
                    tracing::warn!("the history falls behind the collector; a sample was not recorded");
                }
                let rest = interval.saturating_sub(started.elapsed());
                // Sleep in short steps so that shutdown is quick.
                let until = Instant::now() + rest;
                while Instant::now() < until && !stop.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
                }
            }
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot start the collector thread");
        }
    }
}

/// Takes samples: one long-lived `System` refreshed with only what a sample reads. The
/// collector's thread owns one; the benchmark drives one directly.
pub struct Sampler {
    system: System,
    disks: Disks,
    networks: Networks,
    data_dir: PathBuf,
    last: Instant,
}

impl Sampler {
    /// A sampler whose "disk" is the one holding `data_dir`.
    pub fn new(data_dir: PathBuf) -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        system.refresh_cpu_usage();
        Ok(Self {
            system,
            disks: Disks::new_with_refreshed_list()?,
            networks: Networks::new_with_refreshed_list()?,
            data_dir: std::fs::canonicalize(&data_dir).unwrap_or(data_dir),
            last: Instant::now(),
        })
    }

    /// One sample of the host and of each `(server id, pid)`'s process tree.
    pub fn sample(&mut self, servers: &[(i64, i32)]) -> (HostSample, Vec<ServerSample>) {
        let elapsed = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = Instant::now();
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);
        let (rx, tx) = self
            .networks
            .iter()
            .filter(|(name, _)| name.as_os_str() != "lo")
            .fold((0u64, 0u64), |(r, t), (_, n)| (r + n.received(), t + n.transmitted()));
        let disks: Vec<DiskUsage> = self
            .disks
            .iter()
            .map(|d| DiskUsage {
                mount_point: d.mount_point().display().to_string(),
                used_bytes: d.total_space().saturating_sub(d.available_space()) as f64,
                total_bytes: d.total_space() as f64,
            })
            .collect();
        let home = holding_disk(&disks, &self.data_dir);
        let load = System::load_average().map(|l| [l.one, l.five, l.fifteen]).unwrap_or_default();
        let host = HostSample {
            at: Utc::now(),
            cpu_percent: f64::from(self.system.global_cpu_usage()),
            cpu_per_core: self.system.cpus().iter().map(|c| f64::from(c.usage())).collect(),
            memory_used_bytes: self.system.used_memory() as f64,
            memory_total_bytes: self.system.total_memory() as f64,
            swap_used_bytes: self.system.used_swap() as f64,
            swap_total_bytes: self.system.total_swap() as f64,
            disk_used_bytes: home.map_or(0.0, |d| d.used_bytes),
            disk_total_bytes: home.map_or(0.0, |d| d.total_bytes),
            disks: disks.clone(),
            net_rx_bytes_per_second: rx as f64 / elapsed,
            net_tx_bytes_per_second: tx as f64 / elapsed,
            load,
        };
        let mut samples = Vec::new();
        if !servers.is_empty() {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
            for (pid, p) in self.system.processes() {
                if let Some(parent) = p.parent() {
                    children.entry(parent).or_default().push(*pid);
                }
            }
            for (server_id, pid) in servers {
                let (mut cpu, mut mem) = (0.0, 0.0);
                let mut stack = vec![Pid::from_u32(*pid as u32)];
                while let Some(p) = stack.pop() {
                    if let Some(proc_) = self.system.process(p) {
                        cpu += f64::from(proc_.cpu_usage());
                        mem += proc_.memory() as f64;
                    }
                    stack.extend(children.get(&p).into_iter().flatten().copied());
                }
                samples.push(ServerSample { server_id: *server_id, at: host.at, cpu_percent: cpu, memory_bytes: mem });
            }
        }
        (host, samples)
    }
}

/// The CPU time this thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// The disk whose mount point is the longest prefix of `path`.
fn holding_disk<'a>(disks: &'a [DiskUsage], path: &Path) -> Option<&'a DiskUsage> {
    disks.iter().filter(|d| path.starts_with(&d.mount_point)).max_by_key(|d| d.mount_point.len())
}
