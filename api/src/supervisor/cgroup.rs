//! Memory limits through cgroups when the hub may create them: cgroup v2 (`memory.max`, OOM kills
//! counted in `memory.events`) or the v1 memory controller (`memory.limit_in_bytes`,
//! `memory.oom_control`). Without either, the supervisor falls back to RLIMIT_AS.
//!
//! Each server gets `<root>/kutanga-<hub>/<id>` (`<hub>` names this installation's data dir, so
//! two hubs on one host never share a cgroup); its game is moved there right after it starts (its
//! first milliseconds run unlimited: no game allocates its memory that fast).

use std::{
    io,
    path::{Path, PathBuf},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    V2(PathBuf),
    V1(PathBuf),
    None,
}

impl Cgroups {
    /// Finds a cgroup hierarchy with a memory controller the hub can write to. Only as root: a
    /// hub given capabilities by the packaged systemd unit could write at the hierarchy's root too
    /// (CAP_DAC_OVERRIDE), and would move its games out of the unit's own cgroup, where systemd
    /// no longer sees them. Such a hub limits memory with prlimit; cgroups inside the subtree the
    /// unit delegates are still to do.
    pub fn detect(data_dir: &Path) -> Self {
        if !rustix::process::geteuid().is_root() {
            return Self::None;
        }
        let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        let name = format!("kutanga-{}", &crate::auth::digest(&canonical.to_string_lossy())[..12]);
        let v2 = Path::new("/sys/fs/cgroup");
        if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
        {
            let base = v2.join(&name);
            let enabled = std::fs::create_dir_all(&base).is_ok()
                && std::fs::write(v2.join("cgroup.subtree_control"), "+memory").is_ok()
                && std::fs::write(base.join("cgroup.subtree_control"), "+memory").is_ok();
            if enabled {
                return Self::V2(base);
            }
        }
        let v1 = Path::new("/sys/fs/cgroup/memory");
        if v1.join("memory.limit_in_bytes").exists() {
            let base = v1.join(&name);
            if std::fs::create_dir_all(&base).is_ok() && base.join("memory.limit_in_bytes").exists() {
                return Self::V1(base);
            }
        }
        Self::None
    }

    pub fn available(&self) -> bool {
        !matches!(self, Self::None)
    }

    fn dir(&self, server_id: i64) -> Option<PathBuf> {
        match self {
            Self::V2(base) | Self::V1(base) => Some(base.join(server_id.to_string())),
            Self::None => None,
        }
    }

    /// Puts a running game into its server's cgroup with the memory limit.
    pub fn place(&self, server_id: i64, pid: i32, limit_bytes: u64) -> io::Result<()> {
        let Some(dir) = self.dir(server_id) else { return Ok(()) };
        std::fs::create_dir_all(&dir)?;
        match self {
            Self::V2(_) => {
                std::fs::write(dir.join("memory.max"), limit_bytes.to_string())?;
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            }
            Self::V1(_) => std::fs::write(dir.join("memory.limit_in_bytes"), limit_bytes.to_string())?,
            Self::None => {}
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
    }

    /// How many times the kernel killed a process of this server's cgroup for lack of memory.
    pub fn oom_kills(&self, server_id: i64) -> u64 {
        let Some(dir) = self.dir(server_id) else { return 0 };
        let file = match self {
            Self::V2(_) => "memory.events",
            _ => "memory.oom_control",
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())))
            .unwrap_or(0)
    }

    /// Removes this hub's empty cgroups when it stops (those that still hold a running game stay:
    /// the kernel refuses to remove them).
    pub fn tidy(&self) {
        if let Self::V2(base) | Self::V1(base) = self {
            for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
            let _ = std::fs::remove_dir(base);
        }
    }

    /// Removes the server's cgroup once its processes are gone (a new one is made at each start).
    pub fn remove(&self, server_id: i64) {
        if let Some(dir) = self.dir(server_id) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
