//! The supervisor: runs game servers and watches them.
//!
//! States: INSTALLING -> OFFLINE -> STARTING -> RUNNING -> STOPPING -> OFFLINE, and CRASHED on an
//! exit nobody asked for. Every transition is stored, published on the bus (`serverState`) and
//! written to the audit log with who asked. A game runs as an unprivileged UID of its own, in its
//! own folder and process group; its console goes to files the hub tails, and its stdin is a FIFO,
//! so a game outlives a restart of the hub and is adopted again (pid plus start time) on start.

pub mod cgroup;
pub mod console;
pub mod files;
pub mod process;

use std::{
    collections::HashMap,
    io::Write,
    os::unix::process::ExitStatusExt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use entity::{game_server, template};
use regex::Regex;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use shared::ServerState;
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::{
    console::Console,
    process::{ConsolePaths, GameIds},
};
use crate::{
    audit::{Actor, AuditBatch, Entry, Outcome},
    config::Settings,
    db::Db,
    error::ApiError,
    events::{EventBus, HubEvent, ServerStateEvent},
    servers::service::{folder, values_of},
    templates::{Definition, Launch, ProbeKind, ServerContext, StopDef, render, service::definition_of},
};

/// Who asked, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub actor: Option<Actor>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Asked,
    Restart,
    ReadyTimeout(u64),
}

/// A running game.
struct Live {
    server_id: i64,
    pid: i32,
    paths: ConsolePaths,
    stop_def: StopDef,
    stop_command: Option<String>,
    reason: Mutex<Option<StopReason>>,
    ready: std::sync::atomic::AtomicBool,
    exited: watch::Receiver<bool>,
}

impl Live {
    /// A running game, with the sender that announces its exit.
    fn new(
        server_id: i64,
        pid: i32,
        paths: ConsolePaths,
        def: &Definition,
        launch: &Launch,
        ready: bool,
    ) -> (Arc<Self>, watch::Sender<bool>) {
        let (exited_tx, exited) = watch::channel(false);
        let live = Self {
            server_id,
            pid,
            paths,
            stop_def: def.stop.clone(),
            stop_command: launch.stop_command.clone(),
            reason: Mutex::new(None),
            ready: std::sync::atomic::AtomicBool::new(ready),
            exited,
        };
        (Arc::new(live), exited_tx)
    }
}

struct Inner {
    cgroups: cgroup::Cgroups,
    db: Db,
    bus: Arc<dyn EventBus>,
    settings: Arc<Settings>,
    /// Each game's identity, when the hub is root (else games run as the hub's user).
    ids: Option<GameIds>,
    tasks: TaskTracker,
    /// Cancelled when the hub stops: watchers end, games go on running.
    detach: CancellationToken,
    live: Mutex<HashMap<i64, Arc<Live>>>,
    /// One lock per server, held across a whole start, stop or restart (the check of the state
    /// and the change of it), so that two power actions never interleave; kill never waits.
    power: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    consoles: Mutex<HashMap<i64, Arc<Console>>>,
    crashes: Mutex<HashMap<i64, Vec<Instant>>>,
    /// Wakes console readers when a game writes.
    files: files::FileWatcher,
}

/// The handle every resolver uses. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor(Arc<Inner>);

/// The audit actions that record a server's changes of state, with the state each leads to.
pub const TRANSITIONS: [(&str, ServerState); 7] = [
    ("server.start", ServerState::Starting),
    ("server.ready", ServerState::Running),
    ("server.stop", ServerState::Stopping),
    ("server.restart", ServerState::Stopping),
    ("server.quota_stop", ServerState::Stopping),
    ("server.stopped", ServerState::Offline),
    ("server.crash", ServerState::Crashed),
];

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::Conflict { field: None, message: message.into() }
}

impl Supervisor {
    pub fn new(db: Db, bus: Arc<dyn EventBus>, settings: Arc<Settings>, tasks: TaskTracker) -> anyhow::Result<Self> {
        let ids = GameIds::new(settings.game_uid_base);
        match ids {
            Some(_) => tracing::info!(base = settings.game_uid_base, "each game server runs as a UID of its own"),
            None => tracing::warn!("the hub is not root: game servers run as the hub's own user, unisolated"),
        }
        let cgroups = cgroup::Cgroups::detect(&settings.data_dir);
        tracing::info!(cgroups = ?cgroups, "memory limits");
        Ok(Self(Arc::new(Inner {
            cgroups,
            db,
            bus,
            settings,
            ids,
            tasks,
            detach: CancellationToken::new(),
            live: Mutex::default(),
            power: Mutex::default(),
            consoles: Mutex::default(),
            crashes: Mutex::default(),
            files: files::FileWatcher::start(),
        })))
    }

    /// The running games: (server id, pid).
    pub fn live_pids(&self) -> Vec<(i64, i32)> {
        self.0.live.lock().map(|m| m.iter().map(|(id, l)| (*id, l.pid)).collect()).unwrap_or_default()
    }

    /// Kills every game this hub runs, at once (for tests and emergencies).
    pub fn kill_all_now(&self) {
        if let Ok(map) = self.0.live.lock() {
            for live in map.values() {
                process::signal_group(live.pid, "SIGKILL");
            }
        }
    }

    /// Stops every running game the usual way and waits (bounded by their stop timeouts) until
    /// each has exited and been recorded.
    pub async fn stop_all(&self) {
        let running: Vec<(i64, Arc<Live>)> =
            self.0.live.lock().map(|m| m.iter().map(|(id, l)| (*id, l.clone())).collect()).unwrap_or_default();
        for (id, _) in &running {
            let asker = Asker { actor: None, ip: None };
            if let Err(e) = self.stop(*id, asker).await {
                tracing::warn!(server = id, error = %e, "could not stop on shutdown");
            }
        }
        for (_, live) in running {
            let limit = live.stop_def.command_timeout + live.stop_def.signal_timeout + 5;
            let mut exited = live.exited.clone();
            let _ = tokio::time::timeout(Duration::from_secs(limit), exited.wait_for(|e| *e)).await;
        }
        // The exits are recorded by their watchers; wait until each has done so.
        for _ in 0..100 {
            if self.0.live.lock().map(|m| m.is_empty()).unwrap_or(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops watching (the hub is stopping); the games go on running and are adopted next start.
    pub fn detach(&self) {
        self.0.detach.cancel();
        self.0.cgroups.tidy();
    }

    /// The console of a server (its in-memory tail survives restarts of the game).
    pub fn console(&self, server_id: i64) -> Arc<Console> {
        let mut consoles = self.0.consoles.lock().unwrap_or_else(|e| e.into_inner());
        consoles
            .entry(server_id)
            .or_insert_with(|| {
                Arc::new(Console::new(server_id, self.0.settings.console_lines as usize, self.0.bus.clone()))
            })
            .clone()
    }

    /// Holds the power lock of a server: no start, stop or restart of it runs meanwhile.
    pub async fn power_lock(&self, server_id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.power.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(server_id).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn live(&self, server_id: i64) -> Option<Arc<Live>> {
        self.0.live.lock().ok()?.get(&server_id).cloned()
    }

    async fn row(&self, server_id: i64) -> Result<game_server::Model, ApiError> {
        game_server::Entity::find_by_id(server_id).one(self.0.db.conn()).await?.ok_or(ApiError::NotFound("server"))
    }

    async fn definition(&self, row: &game_server::Model) -> Result<Definition, ApiError> {
        let tpl = template::Entity::find_by_id(row.template_id)
            .one(self.0.db.conn())
            .await?
            .ok_or(ApiError::NotFound("template"))?;
        definition_of(&tpl)
    }

    /// Stores a state, publishes it and writes its audit entry, in one transaction. The entry's
    /// action is one of [`TRANSITIONS`], which is how a server's history is read back.
    async fn transition(
        &self,
        server_id: i64,
        state: ServerState,
        message: Option<String>,
        entry: Entry,
        change: impl FnOnce(&mut game_server::ActiveModel) + Send,
    ) -> Result<(), ApiError> {
        let mut audit = AuditBatch::default();
        let txn = self.0.db.write().await?;
        let Some(row) = game_server::Entity::find_by_id(server_id).one(&*txn).await? else {
            return Ok(()); // deleted meanwhile
        };
        let mut active = row.into_active_model();
        active.state = Set(state.as_str().to_owned());
        change(&mut active);
        active.update(&*txn).await?;
        audit.record(&*txn, entry.target("server", server_id)).await?;
        audit.finish(txn, self.0.bus.as_ref()).await?;
        if let Some(m) = &message {
            self.console(server_id).push("system", m.clone());
        }
        self.0.bus.publish(HubEvent::ServerState(Arc::new(ServerStateEvent {
            server_id,
            state,
            at: Utc::now(),
            message,
        })));
        Ok(())
    }

    /// Starts a stopped or crashed server. It is STARTING until its ready line appears. A start
    /// while another power action on the server runs waits for it, then answers CONFLICT if the
    /// server runs by then.
    pub async fn start(&self, server_id: i64, asker: Asker) -> Result<(), ApiError> {
        let _power = self.power_lock(server_id).await;
        self.start_locked(server_id, asker).await
    }

    async fn start_locked(&self, server_id: i64, asker: Asker) -> Result<(), ApiError> {
        let row = self.row(server_id).await?;
        let state: ServerState = row.state.parse().map_err(|e: String| ApiError::internal(anyhow::anyhow!(e)))?;
        if self.live(server_id).is_some() || !matches!(state, ServerState::Offline | ServerState::Crashed) {
            return Err(conflict(format!("the server is {state}; it can be started when OFFLINE or CRASHED")));
        }
        let def = self.definition(&row).await?;
        let values = values_of(self.0.db.conn(), server_id).await?;
        let dir = folder(&self.0.settings.data_dir, server_id);
        let launch = render(&def, &values, &ServerContext { dir: &dir, id: server_id, name: &row.name });
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        if let Some(wd) = &launch.working_dir {
            use cap_std::{ambient_authority, fs::Dir};
            let root = Dir::open_ambient_dir(&dir, ambient_authority()).map_err(ApiError::internal)?;
            root.create_dir_all(wd).map_err(|e| {
                conflict(format!("cannot make the working folder `{wd}`: {}", crate::error::io_words(&e)))
            })?;
        }
        let user = self.0.ids.map(|ids| ids.of(server_id)).transpose()?;
        if let Some(user) = &user {
            // Leftovers of an earlier run (or of a server this id once was) go first.
            self.sweep(server_id).await;
            process::hand_over(&dir, user).map_err(ApiError::internal)?;
        }
        let quota = self.0.settings.disk_quota_mb * 1024 * 1024;
        if quota > 0 {
            let used = tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || process::disk_usage(&dir)
            })
            .await?;
            if used > quota {
                return Err(conflict(format!(
                    "the server's folder uses {} MiB, over its quota of {} MiB; free some space first",
                    used / 1_048_576,
                    self.0.settings.disk_quota_mb
                )));
            }
        }
        let paths = ConsolePaths::new(&self.0.settings.data_dir, server_id);
        let memory = row.memory_limit_mb.map(|mb| u64::try_from(mb).unwrap_or(0) * 1024 * 1024);
        let cgroups = &self.0.cgroups;
        let limits = process::Limits {
            // With cgroups the limit is on resident memory; RLIMIT_AS (virtual) is the fallback.
            memory_bytes: memory.filter(|_| !cgroups.available()),
            open_files: self.0.settings.game_open_files,
        };
        cgroups.remove(server_id);
        let spawned = process::spawn(&launch, &dir, &paths, user.as_ref(), limits)?;
        if let Some(bytes) = memory
            && let Err(e) = cgroups.place(server_id, spawned.pid, bytes)
        {
            process::signal_group(spawned.pid, "SIGKILL");
            return Err(ApiError::internal(anyhow::anyhow!("cannot apply the memory limit: {e}")));
        }
        let (pid, start_time) = (spawned.pid, spawned.start_time);
        let ready_def = def.ready.clone();
        let needs_ready = ready_def.as_ref().is_some_and(|r| !launch.ready_patterns.is_empty() || !r.regex.is_empty());
        let (live, exited_tx) = Live::new(server_id, pid, paths, &def, &launch, !needs_ready);
        if let Ok(mut map) = self.0.live.lock() {
            map.insert(server_id, live.clone());
        }
        let now = Utc::now();
        let entry = Entry::new("server.start", asker.actor.clone()).ip(asker.ip.clone()).detail(format!("pid {pid}"));
        let recorded = self
            .transition(server_id, ServerState::Starting, Some(format!("starting (pid {pid})")), entry, move |a| {
                a.pid = Set(Some(i64::from(pid)));
                a.pid_start_time = Set(start_time);
                a.started_at = Set(Some(now));
            })
            .await;
        if let Err(e) = recorded {
            // A game nobody could follow must not run: it goes, and the server stays as it was.
            process::signal_group(pid, "SIGKILL");
            if let Ok(mut map) = self.0.live.lock() {
                map.remove(&server_id);
            }
            return Err(e);
        }
        let regexes: Vec<Regex> =
            ready_def.as_ref().map(|r| r.regex.iter().filter_map(|x| Regex::new(x).ok()).collect()).unwrap_or_default();
        self.watch(
            server_id,
            live.clone(),
            Waiter::Child(spawned.child),
            exited_tx,
            (spawned.stdout_from, spawned.stderr_from),
            launch.ready_patterns,
            regexes,
        );
        self.check_periodically(server_id, live.clone(), &def, row.port, dir);
        if needs_ready {
            let timeout = ready_def.map_or(60, |r| r.timeout);
            self.ready_timer(server_id, live, timeout);
        } else {
            self.became_ready(server_id).await;
        }
        Ok(())
    }

    /// Follows the console and waits for the exit; both end when the hub detaches.
    #[allow(clippy::too_many_arguments)]
    fn watch(
        &self,
        server_id: i64,
        live: Arc<Live>,
        waiter: Waiter,
        exited_tx: watch::Sender<bool>,
        from: (u64, u64),
        patterns: Vec<String>,
        regexes: Vec<Regex>,
    ) {
        let console = self.console(server_id);
        let rotate_at = self.0.settings.console_log_bytes;
        let mut followers = Vec::new();
        for (path, stream, offset) in
            [(live.paths.stdout.clone(), "stdout", from.0), (live.paths.stderr.clone(), "stderr", from.1)]
        {
            let (console, sup, live2) = (console.clone(), self.clone(), live.clone());
            let (patterns, regexes) = (patterns.clone(), regexes.clone());
            let exited = live.exited.clone();
            let detach = self.0.detach.clone();
            let files = self.0.files.clone();
            followers.push(self.0.tasks.spawn(async move {
                let handle = tokio::runtime::Handle::current();
                console::follow(
                    path,
                    offset,
                    rotate_at,
                    &files,
                    |line| {
                        let is_ready = !live2.ready.load(std::sync::atomic::Ordering::Relaxed)
                            && (patterns.iter().any(|p| line.contains(p.as_str()))
                                || regexes.iter().any(|r| r.is_match(&line)));
                        console.push(stream, line);
                        if is_ready && !live2.ready.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            let sup = sup.clone();
                            handle.spawn(async move { sup.became_ready(server_id).await });
                        }
                    },
                    move || *exited.borrow() || detach.is_cancelled(),
                )
                .await;
            }));
        }
        let sup = self.clone();
        let detach = self.0.detach.clone();
        self.0.tasks.spawn(async move {
            let status = tokio::select! {
                status = waiter.wait() => status,
                () = detach.cancelled() => return,
            };
            let _ = exited_tx.send(true);
            for f in followers {
                let _ = f.await;
            }
            sup.exited(server_id, live, status).await;
        });
    }

    /// The periodic status check of a running server: its disk quota, and its port probe once it
    /// is ready (three failed probes in a row: it hangs, so it is killed and handled as a crash).
    fn check_periodically(
        &self,
        server_id: i64,
        live: Arc<Live>,
        def: &Definition,
        port: Option<i32>,
        dir: std::path::PathBuf,
    ) {
        let port = port.and_then(|p| u16::try_from(p).ok());
        let probe = def.probe.as_ref().map(|p| p.kind).filter(|k| *k == ProbeKind::Process || port.is_some());
        let quota = self.0.settings.disk_quota_mb * 1024 * 1024;
        if probe.is_none() && quota == 0 {
            return;
        }
        let interval = Duration::from_secs(self.0.settings.status_interval);
        let (sup, detach) = (self.clone(), self.0.detach.clone());
        self.0.tasks.spawn(async move {
            let mut exited = live.exited.clone();
            let mut failures = 0;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = exited.wait_for(|e| *e) => return,
                    () = detach.cancelled() => return,
                }
                if live.reason.lock().map(|r| r.is_some()).unwrap_or(true) {
                    return; // stopping already
                }
                if quota > 0 {
                    let d = dir.clone();
                    let used = tokio::task::spawn_blocking(move || process::disk_usage(&d)).await.unwrap_or(0);
                    if used > quota {
                        let message = format!(
                            "over its disk quota ({} of {} MiB); stopping it",
                            used / 1_048_576,
                            quota / 1_048_576
                        );
                        sup.console(server_id).push("system", message.clone());
                        let asker = Asker { actor: None, ip: None };
                        if let Err(e) = sup.begin_stop(server_id, asker, StopReason::Asked, "server.quota_stop").await {
                            tracing::warn!(server = server_id, error = %e, "could not stop a server over quota");
                        }
                        return;
                    }
                }
                if let Some(kind) = probe
                    && live.ready.load(std::sync::atomic::Ordering::SeqCst)
                {
                    let answered = match (kind, port) {
                        (ProbeKind::Process, _) => process::runs(live.pid),
                        (kind, Some(port)) => probe_port(kind, port).await,
                        (_, None) => true,
                    };
                    if answered {
                        failures = 0;
                    } else {
                        failures += 1;
                        let what = match (kind, port) {
                            (ProbeKind::Process, _) => "the process is stopped or gone".to_owned(),
                            (_, port) => format!("no answer on port {}", port.unwrap_or_default()),
                        };
                        sup.console(server_id).push("system", format!("{what} ({failures} of 3 checks)"));
                        if failures >= 3 {
                            sup.console(server_id).push("system", "failed its probe 3 times; killing it".into());
                            process::signal_group(live.pid, "SIGKILL");
                            return;
                        }
                    }
                }
            }
        });
    }

    fn ready_timer(&self, server_id: i64, live: Arc<Live>, timeout: u64) {
        let sup = self.clone();
        let detach = self.0.detach.clone();
        self.0.tasks.spawn(async move {
            let mut exited = live.exited.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(timeout)) => {}
                _ = exited.wait_for(|e| *e) => return,
                () = detach.cancelled() => return,
            }
            if live.ready.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            if let Ok(mut r) = live.reason.lock() {
                r.get_or_insert(StopReason::ReadyTimeout(timeout));
            }
            sup.console(server_id).push("system", format!("not ready after {timeout} s; stopping it"));
            sup.stop_sequence(live).await;
        });
    }

    async fn became_ready(&self, server_id: i64) {
        let Ok(row) = self.row(server_id).await else { return };
        if row.state != ServerState::Starting.as_str() {
            return;
        }
        let entry = Entry::new("server.ready", None);
        if let Err(e) = self.transition(server_id, ServerState::Running, Some("ready".into()), entry, |_| {}).await {
            tracing::error!(server = server_id, error = %e, "cannot record readiness");
        }
    }

    /// Kills every process left that runs as the server's own UID (daemons a game detached
    /// from its group, for one). Nothing to do when games do not have UIDs of their own.
    pub async fn sweep(&self, server_id: i64) {
        let Some(Ok(user)) = self.0.ids.map(|ids| ids.of(server_id)) else { return };
        let killed = tokio::task::spawn_blocking(move || process::kill_user(user.uid)).await.unwrap_or(0);
        if killed > 0 {
            self.console(server_id).push("system", format!("killed {killed} process(es) the game left behind"));
        }
    }

    /// The game has exited: decide what it means and what comes next.
    async fn exited(&self, server_id: i64, live: Arc<Live>, status: Option<std::process::ExitStatus>) {
        self.sweep(server_id).await;
        if let Ok(mut map) = self.0.live.lock() {
            map.remove(&server_id);
        }
        let reason = live.reason.lock().ok().and_then(|r| *r);
        let code = status.and_then(|s| s.code());
        let oom = self.0.cgroups.oom_kills(server_id) > 0;
        self.0.cgroups.remove(server_id);
        let mut how = match status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "exited".into(),
            },
            None => "exited (status unknown: it was adopted after a hub restart)".into(),
        };
        if oom {
            how.push_str(", out of memory (over its memory limit)");
        }
        let clear = move |a: &mut game_server::ActiveModel| {
            a.pid = Set(None);
            a.pid_start_time = Set(None);
            a.last_exit_code = Set(code);
        };
        let result = match reason {
            Some(StopReason::Asked) => {
                self.transition(
                    server_id,
                    ServerState::Offline,
                    Some(format!("stopped ({how})")),
                    Entry::new("server.stopped", None).detail(how),
                    clear,
                )
                .await
            }
            Some(StopReason::Restart) => {
                let r = self
                    .transition(
                        server_id,
                        ServerState::Offline,
                        Some(format!("stopped for a restart ({how})")),
                        Entry::new("server.stopped", None).detail(how),
                        clear,
                    )
                    .await;
                if r.is_ok()
                    && let Err(e) = self.start(server_id, Asker::default()).await
                {
                    self.console(server_id).push("system", format!("restart failed: {e}"));
                }
                r
            }
            Some(StopReason::ReadyTimeout(t)) => {
                let last = self.last_lines(server_id, 5);
                let message = format!("did not become ready within {t} s ({how}); last lines: {last}");
                let entry = Entry::new("server.crash", None).outcome(Outcome::Failure).detail(message.clone());
                self.transition(server_id, ServerState::Crashed, Some(message), entry, clear).await
            }
            None => self.crashed(server_id, how, clear).await,
        };
        if let Err(e) = result {
            tracing::error!(server = server_id, error = %e, "cannot record the exit");
        }
    }

    fn last_lines(&self, server_id: i64, n: usize) -> String {
        let lines: Vec<String> = self
            .console(server_id)
            .tail(n + 3)
            .iter()
            .filter(|l| l.stream != "system")
            .map(|l| l.line.clone())
            .collect();
        let skip = lines.len().saturating_sub(n);
        lines[skip..].join(" | ")
    }

    /// An exit nobody asked for: CRASHED, then a restart with backoff unless it crashes too often.
    async fn crashed(
        &self,
        server_id: i64,
        how: String,
        clear: impl FnOnce(&mut game_server::ActiveModel) + Send,
    ) -> Result<(), ApiError> {
        let row = self.row(server_id).await?;
        let def = self.definition(&row).await?;
        let policy = def.crash.clone();
        let window = Duration::from_secs(policy.window_seconds);
        let recent = {
            let mut crashes = self.0.crashes.lock().unwrap_or_else(|e| e.into_inner());
            let list = crashes.entry(server_id).or_default();
            list.retain(|t| t.elapsed() < window);
            list.push(Instant::now());
            list.len() as u32
        };
        let last = self.last_lines(server_id, 5);
        let restart = row.auto_restart && policy.auto_restart && recent <= policy.max_restarts;
        let message = if restart {
            let wait = policy.backoff_seconds.saturating_mul(1 << (recent - 1).min(10));
            format!(
                "crashed: {how}; restarting in {wait} s (crash {recent} of {} allowed in {} s); last lines: {last}",
                policy.max_restarts, policy.window_seconds
            )
        } else if row.auto_restart && policy.auto_restart {
            format!(
                "crashed: {how}; {recent} crashes within {} s, so it stays stopped (start it by hand); last lines: {last}",
                policy.window_seconds
            )
        } else {
            format!("crashed: {how}; last lines: {last}")
        };
        let entry = Entry::new("server.crash", None).outcome(Outcome::Failure).detail(message.clone());
        self.transition(server_id, ServerState::Crashed, Some(message), entry, clear).await?;
        if restart {
            let wait = Duration::from_secs(policy.backoff_seconds.saturating_mul(1 << (recent - 1).min(10)));
            let (sup, detach) = (self.clone(), self.0.detach.clone());
            self.0.tasks.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = detach.cancelled() => return,
                }
                let asker = Asker { actor: None, ip: None };
                if let Err(e) = sup.start(server_id, asker).await {
                    tracing::info!(server = server_id, error = %e, "auto-restart skipped");
                }
            });
        }
        Ok(())
    }

    /// Asks a running server to stop: its console command, then its signal, then SIGKILL.
    /// Returns at once (STOPPING); the exit is reported on serverState.
    pub async fn stop(&self, server_id: i64, asker: Asker) -> Result<(), ApiError> {
        let _power = self.power_lock(server_id).await;
        self.begin_stop(server_id, asker, StopReason::Asked, "server.stop").await
    }

    /// Stops and starts again.
    pub async fn restart(&self, server_id: i64, asker: Asker) -> Result<(), ApiError> {
        let _power = self.power_lock(server_id).await;
        if self.live(server_id).is_none() {
            return self.start_locked(server_id, asker).await;
        }
        self.begin_stop(server_id, asker, StopReason::Restart, "server.restart").await
    }

    async fn begin_stop(
        &self,
        server_id: i64,
        asker: Asker,
        reason: StopReason,
        action: &'static str,
    ) -> Result<(), ApiError> {
        let live = self.live(server_id).ok_or_else(|| conflict("the server is not running"))?;
        {
            let mut r = live.reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_some() {
                return Err(conflict("the server is already stopping"));
            }
            *r = Some(reason);
        }
        let entry = Entry::new(action, asker.actor).ip(asker.ip);
        self.transition(server_id, ServerState::Stopping, Some("stopping".into()), entry, |_| {}).await?;
        let sup = self.clone();
        self.0.tasks.spawn(async move { sup.stop_sequence(live).await });
        Ok(())
    }

    async fn stop_sequence(&self, live: Arc<Live>) {
        let mut exited = live.exited.clone();
        let def = live.stop_def.clone();
        if let Some(cmd) = &live.stop_command {
            let wrote = live.paths.stdin_writer().and_then(|mut f| f.write_all(format!("{cmd}\n").as_bytes()));
            if wrote.is_ok() {
                // On the console as a person's command is, so that the stop is seen to be asked.
                self.console(live.server_id).push("stdin", cmd.clone());
            }
            if wrote.is_ok()
                && tokio::time::timeout(Duration::from_secs(def.command_timeout), exited.wait_for(|e| *e)).await.is_ok()
            {
                return;
            }
        }
        process::signal_group(live.pid, &def.signal);
        if tokio::time::timeout(Duration::from_secs(def.signal_timeout), exited.wait_for(|e| *e)).await.is_ok() {
            return;
        }
        process::signal_group(live.pid, "SIGKILL");
    }

    /// Kills a running server at once (SIGKILL to its process group).
    pub async fn kill(&self, server_id: i64, asker: Asker) -> Result<(), ApiError> {
        let live = self.live(server_id).ok_or_else(|| conflict("the server is not running"))?;
        if let Ok(mut r) = live.reason.lock() {
            *r = Some(StopReason::Asked);
        }
        let entry = Entry::new("server.kill", asker.actor).ip(asker.ip).target("server", server_id);
        let mut audit = AuditBatch::default();
        let txn = self.0.db.write().await?;
        audit.record(&*txn, entry).await?;
        audit.finish(txn, self.0.bus.as_ref()).await?;
        process::signal_group(live.pid, "SIGKILL");
        let mut exited = live.exited.clone();
        let _ = tokio::time::timeout(Duration::from_secs(5), exited.wait_for(|e| *e)).await;
        Ok(())
    }

    /// Writes a line to the server's stdin; it appears on the console as `stdin`.
    pub async fn send(&self, server_id: i64, line: &str, asker: Asker) -> Result<(), ApiError> {
        // 4,095 bytes and its line break fit PIPE_BUF: written whole or not at all.
        if line.is_empty() || line.chars().count() > 1024 || line.len() > 4095 || line.chars().any(char::is_control) {
            return Err(ApiError::bad_input("command", "a command is one line of 1 to 1024 characters (4,095 bytes)"));
        }
        let live = self.live(server_id).ok_or_else(|| conflict("the server is not running"))?;
        // No command is sent unlogged: its entry is written first, in a transaction committed
        // only once the game has it. A command the game never got is logged as not sent.
        let entry = Entry::new("server.command", asker.actor).ip(asker.ip).target("server", server_id);
        let mut audit = AuditBatch::default();
        let txn = self.0.db.write().await?;
        audit.record(&*txn, entry.clone().detail(line)).await?;
        // Non-blocking, and at most PIPE_BUF bytes: the line goes whole or not at all, at once.
        let sent = live.paths.stdin_writer().and_then(|mut w| w.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = sent {
            drop(txn);
            let why = format!("the console does not take input: {}", crate::error::io_words(&e));
            let mut failed = AuditBatch::default();
            let txn = self.0.db.write().await?;
            failed.record(&*txn, entry.outcome(Outcome::Failure).detail(format!("{line} ({why})"))).await?;
            failed.finish(txn, self.0.bus.as_ref()).await?;
            return Err(conflict(why));
        }
        // On the console before the game can answer it (the answer comes through the tailer).
        self.console(server_id).push("stdin", line.to_owned());
        if let Err(e) = audit.finish(txn, self.0.bus.as_ref()).await {
            tracing::error!(server = server_id, error = %e, "a console command was sent but its audit entry was lost");
            return Err(e.into());
        }
        Ok(())
    }

    /// After a start of the hub: adopts the games that outlived the last one (same pid and start
    /// time), marks the others as crashed, and starts the servers marked to start with the hub.
    pub async fn adopt_all(&self) -> Result<(), ApiError> {
        let rows = game_server::Entity::find().all(self.0.db.conn()).await?;
        for row in rows {
            let state: ServerState = row.state.parse().unwrap_or(ServerState::Crashed);
            let active = matches!(state, ServerState::Starting | ServerState::Running | ServerState::Stopping);
            let pid = row.pid.map(|p| p as i32);
            match (active, pid) {
                (true, Some(pid)) if process::alive(pid, row.pid_start_time) => self.adopt(&row, pid).await?,
                (true, _) => {
                    let entry = Entry::new("server.crash", None)
                        .outcome(Outcome::Failure)
                        .detail("exited while the hub was down");
                    self.transition(
                        row.id,
                        ServerState::Crashed,
                        Some("exited while the hub was down".into()),
                        entry,
                        |a| {
                            a.pid = Set(None);
                            a.pid_start_time = Set(None);
                        },
                    )
                    .await?;
                }
                _ if row.start_with_hub && matches!(state, ServerState::Offline | ServerState::Crashed) => {
                    if let Err(e) = self.start(row.id, Asker::default()).await {
                        tracing::warn!(server = row.id, error = %e, "could not start with the hub");
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn adopt(&self, row: &game_server::Model, pid: i32) -> Result<(), ApiError> {
        let def = self.definition(row).await?;
        let values = values_of(self.0.db.conn(), row.id).await?;
        let dir = folder(&self.0.settings.data_dir, row.id);
        let launch = render(&def, &values, &ServerContext { dir: &dir, id: row.id, name: &row.name });
        let paths = ConsolePaths::new(&self.0.settings.data_dir, row.id);
        let end = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let from = (end(&paths.stdout), end(&paths.stderr));
        let (live, exited_tx) =
            Live::new(row.id, pid, paths, &def, &launch, row.state == ServerState::Running.as_str());
        if let Ok(mut map) = self.0.live.lock() {
            map.insert(row.id, live.clone());
        }
        self.console(row.id).push("system", format!("the hub restarted and adopted the running server (pid {pid})"));
        tracing::info!(server = row.id, pid, "adopted a running game server");
        let regexes =
            def.ready.as_ref().map(|r| r.regex.iter().filter_map(|x| Regex::new(x).ok()).collect()).unwrap_or_default();
        let waiter = Waiter::Adopted { pid, start_time: row.pid_start_time };
        self.watch(row.id, live.clone(), waiter, exited_tx, from, launch.ready_patterns, regexes);
        self.check_periodically(row.id, live.clone(), &def, row.port, dir);
        if row.state == ServerState::Stopping.as_str() {
            if let Ok(mut r) = live.reason.lock() {
                *r = Some(StopReason::Asked);
            }
            let sup = self.clone();
            self.0.tasks.spawn(async move { sup.stop_sequence(live).await });
        }
        Ok(())
    }
}

/// Whether something listens on the port on this host: a TCP connect, or for UDP a datagram on
/// a connected socket (a closed port answers with ICMP "port unreachable", seen as refused).
async fn probe_port(kind: ProbeKind, port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match kind {
        ProbeKind::Process => true,
        ProbeKind::Tcp => matches!(
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        ),
        ProbeKind::Udp => {
            let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else { return true };
            if socket.connect(addr).await.is_err() || socket.send(&[0xff, 0xff, 0xff, 0xff]).await.is_err() {
                return false;
            }
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await {
                Ok(Err(e)) => e.kind() != std::io::ErrorKind::ConnectionRefused,
                _ => true,
            }
        }
    }
}

/// How the exit of a game is learnt: from the child (exact status) or, for an adopted game, by
/// watching its pid.
enum Waiter {
    Child(tokio::process::Child),
    Adopted { pid: i32, start_time: Option<i64> },
}

impl Waiter {
    async fn wait(self) -> Option<std::process::ExitStatus> {
        match self {
            Self::Child(mut child) => child.wait().await.ok(),
            Self::Adopted { pid, start_time } => {
                while process::alive(pid, start_time) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None
            }
        }
    }
}
