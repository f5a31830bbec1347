//! Processes: the unprivileged identity each game runs as, spawning into a process group with
//! the console wired to files, signals to the group or to every process of a game's identity,
//! and telling a live pid from a reused one.

use std::{
    fs::{File, OpenOptions},
    os::unix::{fs::OpenOptionsExt, process::CommandExt},
    path::{Path, PathBuf},
};

use rustix::process::{Pid, Signal};

use crate::{error::ApiError, templates::Launch};

/// The identity one game server runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameUser {
    pub uid: u32,
    pub gid: u32,
}

/// The range of identities game servers run as: server N runs as UID and GID `base + N`, so no
/// game can read or signal another's files or processes, and a UID tells which server a process
/// belongs to (see [`kill_user`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameIds {
    base: u32,
}

impl GameIds {
    /// `None` when the hub may not run processes as other users (it is neither root nor holds
    /// the capabilities below, as the packaged systemd unit gives its `kutanga` user): games then
    /// run as the hub's own user.
    pub fn new(base: u32) -> Option<Self> {
        (rustix::process::geteuid().is_root() || holds_capabilities(&effective_capabilities())).then_some(Self { base })
    }

    /// The identity of one server.
    pub fn of(&self, server_id: i64) -> Result<GameUser, ApiError> {
        let id = u32::try_from(server_id)
            .ok()
            .and_then(|n| self.base.checked_add(n))
            .filter(|id| *id < u32::MAX - 1)
            .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("server {server_id} is past KUTANGA_GAME_UID_BASE's range"))
        })?;
        Ok(GameUser { uid: id, gid: id })
    }
}

/// What switching a game to its own identity takes: CAP_CHOWN (0) and CAP_FOWNER (3) to give it
/// its folder, CAP_DAC_OVERRIDE (1) to reach into that folder afterwards, CAP_KILL (5) to signal
/// its processes, CAP_SETGID (6) and CAP_SETUID (7) to start them as it.
const GAME_CAPABILITIES: u64 = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 5 | 1 << 6 | 1 << 7;

/// The process's effective capabilities (`CapEff` in /proc/self/status).
fn effective_capabilities() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

fn holds_capabilities(effective: &u64) -> bool {
    effective & GAME_CAPABILITIES == GAME_CAPABILITIES
}

/// Empties the calling thread's inheritable capability set, and with it its ambient set, so that
/// no program the hub starts (a game, the kill helper) inherits a capability the hub holds. The
/// packaged systemd unit gives the hub CAP_KILL, CAP_SETUID and others as ambient capabilities;
/// inherited, they would let a game read the hub's database, and the kill helper's `kill -1`
/// signal every process on the host. The hub keeps them (effective and permitted), and a child
/// keeps them between fork and exec, where it takes its game's identity. Call it before any
/// other thread starts: capabilities are per thread, and new threads copy their creator's.
pub fn keep_capabilities_from_children() -> std::io::Result<()> {
    use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
    let mut sets = capabilities(None)?;
    if sets.inheritable.is_empty() {
        return Ok(());
    }
    sets.inheritable = CapabilitySet::empty();
    set_capabilities(None, sets)?;
    Ok(())
}

/// procps' kill(1), run as a game's UID to signal every process of that UID at once.
const KILL: &str = "/bin/kill";

/// Kills every process that runs as `uid` (real or effective), again until none is left: what a
/// game leaves behind (daemons it detached with setsid, children that changed their group) goes
/// with it. Only for a server's own UID, never a shared one. Returns how many there were.
///
/// The killing is done by a helper running as that UID calling kill(-1, SIGKILL): the kernel
/// signals every process of the UID in one pass, so a game that forks as fast as it can cannot
/// outrun it (as it could a scan of /proc followed by one kill per pid), and no pid reused
/// between a scan and a kill is ever hit. Without the helper the scan-and-kill is the fallback.
pub fn kill_user(uid: u32) -> usize {
    let mut pids = processes_of(uid);
    let found = pids.len();
    for _ in 0..20 {
        if pids.is_empty() {
            break;
        }
        let helper = std::process::Command::new(KILL)
            .args(["-9", "-1"])
            .uid(uid)
            .gid(uid)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if helper.is_err() {
            for pid in pids.iter().copied().filter_map(Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        pids = processes_of(uid);
    }
    found
}

/// The live processes whose real or effective UID is `uid`.
fn processes_of(uid: u32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| process_uids(*pid).is_some_and(|(real, effective)| real == uid || effective == uid))
        .collect()
}

/// The real and effective UID of a live (not zombie) process.
fn process_uids(pid: i32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status.lines().any(|l| l.starts_with("State:") && (l.contains("(zombie)") || l.contains("(dead)"))) {
        return None;
    }
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let mut ids = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok());
    Some((ids.next()?, ids.next()?))
}

/// Gives a folder (recursively) to a game's user, and makes it private to it (0700). The walk goes through directory handles opened
/// with O_NOFOLLOW and changes owners relative to them without following links, so a game that
/// swaps a folder for a symlink mid-walk cannot make the hub touch anything outside.
pub fn hand_over(dir: &Path, user: &GameUser) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags, chownat, openat};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = openat(rustix::fs::CWD, dir, flags, Mode::empty())?;
    let (uid, gid) = (rustix::fs::Uid::from_raw(user.uid), rustix::fs::Gid::from_raw(user.gid));
    rustix::fs::fchown(&root, Some(uid), Some(gid))?;
    rustix::fs::fchmod(&root, Mode::from_raw_mode(0o700))?;
    fn walk(
        fd: &rustix::fd::OwnedFd,
        uid: rustix::fs::Uid,
        gid: rustix::fs::Gid,
        flags: OFlags,
        depth: u32,
    ) -> std::io::Result<()> {
        if depth > 64 {
            return Ok(());
        }
        for entry in rustix::fs::Dir::read_from(fd)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            // A file with other hard links may be a link the game made to a file outside (where
            // the kernel allows that): it is never handed over.
            let stat = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
            let is_dir = rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory;
            if !is_dir && stat.st_nlink > 1 {
                continue;
            }
            chownat(fd, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
            if entry.file_type() == rustix::fs::FileType::Directory
                && let Ok(child) = openat(fd, name, flags, Mode::empty())
            {
                walk(&child, uid, gid, flags, depth + 1)?;
            }
        }
        Ok(())
    }
    walk(&root, uid, gid, flags, 0)
}

/// Where the hub keeps a server's console files: beside, not inside, its folder.
pub struct ConsolePaths {
    pub dir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub stdin: PathBuf,
}

impl ConsolePaths {
    pub fn new(data_dir: &Path, server_id: i64) -> Self {
        let dir = data_dir.join("console").join(server_id.to_string());
        Self { stdout: dir.join("stdout.log"), stderr: dir.join("stderr.log"), stdin: dir.join("stdin"), dir }
    }

    /// Makes the folder (0700) when missing and a new stdin FIFO (0600): the game that ran last
    /// owned the old one and may have changed its mode.
    pub fn prepare(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        match std::fs::remove_file(&self.stdin) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        rustix::fs::mkfifoat(rustix::fs::CWD, &self.stdin, rustix::fs::Mode::from_raw_mode(0o600))?;
        Ok(())
    }

    fn append(path: &Path) -> std::io::Result<File> {
        OpenOptions::new().create(true).append(true).mode(0o600).open(path)
    }

    /// Opens the FIFO to write commands into, without blocking (a reader exists while the game runs).
    pub fn stdin_writer(&self) -> std::io::Result<File> {
        OpenOptions::new().write(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(&self.stdin)
    }
}

/// A spawned game.
pub struct Spawned {
    pub child: tokio::process::Child,
    pub pid: i32,
    pub start_time: Option<i64>,
    /// Where each log file ended when the game started: the console begins there.
    pub stdout_from: u64,
    pub stderr_from: u64,
}

/// Resource limits of a game.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// RLIMIT_AS (virtual memory), when the server has a memory limit.
    pub memory_bytes: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
}

/// util-linux's prlimit sets the limits and then execs the game: no window without them.
const PRLIMIT: &str = "/usr/bin/prlimit";

/// Starts the game in its folder, as its own user (when the hub is root), in a process group of
/// its own, with stdin from the FIFO (held open read-write by the game itself, so it never sees
/// end-of-file when the hub goes away), stdout/stderr appended to the console files, and its
/// limits.
pub fn spawn(
    launch: &Launch,
    dir: &Path,
    paths: &ConsolePaths,
    user: Option<&GameUser>,
    limits: Limits,
) -> Result<Spawned, ApiError> {
    paths.prepare().map_err(ApiError::internal)?;
    let stdout = ConsolePaths::append(&paths.stdout).map_err(ApiError::internal)?;
    let stderr = ConsolePaths::append(&paths.stderr).map_err(ApiError::internal)?;
    let stdout_from = stdout.metadata().map(|m| m.len()).unwrap_or(0);
    let stderr_from = stderr.metadata().map(|m| m.len()).unwrap_or(0);
    let stdin = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&paths.stdin)
        .map_err(ApiError::internal)?;
    if let Some(user) = user {
        // The game's own, so that it may open it again by name (`/dev/stdin`: games that read
        // commands from a file path, such as Wesnoth's server). Its folder stays the hub's (0700):
        // nobody else reaches it.
        let (uid, gid) = (rustix::fs::Uid::from_raw(user.uid), rustix::fs::Gid::from_raw(user.gid));
        rustix::fs::fchown(&stdin, Some(uid), Some(gid)).map_err(ApiError::internal)?;
    }

    let wrapped = Path::new(PRLIMIT).exists();
    let mut cmd = if wrapped {
        let mut c = tokio::process::Command::new(PRLIMIT);
        let n = limits.open_files;
        c.arg(format!("--nofile={n}:{n}"));
        if let Some(bytes) = limits.memory_bytes {
            c.arg(format!("--as={bytes}:{bytes}"));
        }
        // `--`: the program and its arguments are never read as prlimit's options.
        c.arg("--").arg(&launch.program);
        c
    } else {
        tokio::process::Command::new(&launch.program)
    };
    cmd.args(&launch.args)
        .current_dir(launch.working_dir.as_ref().map_or_else(|| dir.to_owned(), |wd| dir.join(wd)))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/games")
        .env("LANG", "C.UTF-8")
        .env("HOME", dir)
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
    let child = cmd.spawn().map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (can the game's user reach the server's folder? every parent folder needs o+x)"
        } else {
            ""
        };
        ApiError::Conflict {
            field: None,
            message: format!("cannot start `{}`: {}{hint}", launch.program, crate::error::io_words(&e)),
        }
    })?;
    let pid =
        child.id().map(|p| p as i32).ok_or_else(|| ApiError::internal(anyhow::anyhow!("the game exited at once")))?;
    if !wrapped {
        apply_limits(pid, limits);
    }
    Ok(Spawned { child, pid, start_time: start_time(pid), stdout_from, stderr_from })
}

/// Without prlimit(1): sets the limits on the running process (a short window without them).
fn apply_limits(pid: i32, limits: Limits) {
    use rustix::process::{Resource, Rlimit, prlimit};
    let pid = Pid::from_raw(pid);
    let n = Some(limits.open_files);
    let _ = prlimit(pid, Resource::Nofile, Rlimit { current: n, maximum: n });
    if let Some(bytes) = limits.memory_bytes {
        let _ = prlimit(pid, Resource::As, Rlimit { current: Some(bytes), maximum: Some(bytes) });
    }
}

/// Whether a process runs: it exists and is neither stopped (SIGSTOP, traced) nor a zombie.
pub fn runs(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('R' | 'S' | 'D' | 'I' | 'W' | 'P'))
}

/// The disk space a folder uses (allocated blocks), without following symlinks.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += disk_usage(&entry.path());
        }
    }
    total
}

/// The process's start time (clock ticks since boot, field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `started` (and not a zombie).
pub fn alive(pid: i32, started: Option<i64>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(close) = stat.rfind(')') else { return false };
    let state = stat[close + 2..].chars().next();
    state != Some('Z') && state != Some('X') && start_time(pid) == started
}

/// Sends a signal to the game's whole process group.
pub fn signal_group(pgid: i32, signal: &str) {
    let sig = match signal {
        "SIGINT" => Signal::INT,
        "SIGHUP" => Signal::HUP,
        "SIGQUIT" => Signal::QUIT,
        "SIGKILL" => Signal::KILL,
        _ => Signal::TERM,
    };
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_known_by_its_start_time() {
        let me = std::process::id() as i32;
        let t = start_time(me);
        assert!(t.is_some());
        assert!(alive(me, t));
        assert!(!alive(me, t.map(|t| t + 1)), "same pid, other start time: a reused pid");
        assert!(!alive(i32::MAX - 1, None));
    }
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    #[test]
    fn games_get_identities_with_the_capabilities_or_as_root() {
        // The packaged unit's AmbientCapabilities: CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL
        // CAP_SETGID CAP_SETUID.
        assert!(holds_capabilities(&0x0000_00eb));
        assert!(holds_capabilities(&0x0000_01ff_ffff_ffff), "root's full set");
        assert!(!holds_capabilities(&0x0000_00c0), "setuid and setgid alone cannot hand a folder over");
        assert!(!holds_capabilities(&0));
        if rustix::process::geteuid().is_root() {
            assert!(holds_capabilities(&effective_capabilities()), "this test runs as root with them all");
        }
    }
}

#[cfg(test)]
mod hand_over_tests {
    use super::*;

    #[test]
    fn handing_over_never_follows_links_out_of_the_folder() {
        use std::os::unix::fs::MetadataExt;
        if !rustix::process::geteuid().is_root() {
            return; // changing owners needs root; CI runs as root
        }
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file"), "y").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link-to-file")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub/link-to-dir")).unwrap();
        // A hard link to a file outside (where the kernel lets a game make one) is not handed over.
        std::fs::write(outside.path().join("hard"), "z").unwrap();
        std::fs::hard_link(outside.path().join("hard"), dir.path().join("hard-link")).unwrap();
        let nobody = GameUser { uid: 65534, gid: 65534 };
        hand_over(dir.path(), &nobody).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("sub/file")).unwrap().uid(), 65534);
        assert_eq!(std::fs::symlink_metadata(dir.path().join("link-to-file")).unwrap().uid(), 65534);
        assert_eq!(std::fs::metadata(outside.path().join("secret")).unwrap().uid(), 0, "the target is untouched");
        assert_eq!(std::fs::metadata(outside.path()).unwrap().uid(), 0);
        assert_eq!(
            std::fs::metadata(outside.path().join("hard")).unwrap().uid(),
            0,
            "the hard link's file is untouched"
        );
    }
}
