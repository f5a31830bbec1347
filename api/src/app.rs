//! The assembled hub: its services, its router, and serving until shutdown.

use std::{net::SocketAddr, sync::Arc};

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    alerts::AlertEngine,
    auth::{
        SessionPolicy, TokenKeys,
        cache::CallerCache,
        limits::{AttemptLimits, SocketLimits},
        policy::PasswordPolicy,
    },
    bootstrap::{self, FirstAdmin},
    config::Settings,
    db::Db,
    events::{EventBus, LocalBus},
    graphql::{self, Limits},
    http,
    mail::Mailer,
    monitor::History,
    stats::Stats,
    supervisor::Supervisor,
};

/// What every resolver, handler and service may use: one pointer, cheap to clone and small to
/// hold (every socket, subscription and closure that keeps it holds 8 bytes, not the whole set).
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

impl std::ops::Deref for Services {
    type Target = ServiceSet;
    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}

/// The services themselves.
pub struct ServiceSet {
    pub db: Db,
    pub bus: Arc<dyn EventBus>,
    pub keys: TokenKeys,
    pub settings: Arc<Settings>,
    pub session_policy: SessionPolicy,
    pub password_policy: PasswordPolicy,
    pub cache: Arc<CallerCache>,
    pub limits: Arc<AttemptLimits>,
    /// New WebSockets per address, open ones per account.
    pub sockets: Arc<SocketLimits>,
    pub mailer: Mailer,
    /// Runs the game servers.
    pub supervisor: Supervisor,
    /// The resource history (raw samples and rollups).
    pub history: History,
    /// Evaluates the alert rules.
    pub alerts: AlertEngine,
    /// The hub's metrics for Prometheus.
    pub stats: Stats,
    /// Tracks background work (mail, WebSocket sessions, watchers) that shutdown waits for.
    pub tasks: TaskTracker,
}

impl Services {
    /// Says that a user's access changed (roles, grants, account, sessions; None: anyone's):
    /// cached callers are forgotten at once and open subscriptions re-check.
    pub fn access_changed(&self, user_id: Option<i64>) {
        self.cache.invalidate_user(user_id);
        self.bus.access_changed();
    }

    /// Ends a change of someone's access: commits it, says the access changed, then publishes
    /// its audit entries, so that no open subscription sees the entries of a change (the
    /// demotion of its own caller, say) before the change itself.
    pub async fn commit_access_change(
        &self,
        txn: crate::db::WriteTxn,
        audit: crate::audit::AuditBatch,
        user_id: Option<i64>,
    ) -> Result<(), sea_orm::DbErr> {
        txn.commit().await?;
        self.access_changed(user_id);
        audit.publish(self.bus.as_ref());
        Ok(())
    }
}

/// A hub ready to serve.
#[derive(Clone)]
pub struct App {
    pub services: Services,
    pub graphql: graphql::Engine,
    /// Cancelled to stop the hub; every background task watches it.
    pub shutdown: CancellationToken,
    /// The certificate when the hub serves HTTPS itself.
    pub tls: Option<Arc<http::tls::Tls>>,
}

impl Services {
    /// Opens the database (migrating and seeding it) and builds every service from the settings.
    pub async fn open(settings: Settings) -> anyhow::Result<Self> {
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::default());
        std::fs::create_dir_all(&settings.data_dir)?;
        // Traversable (games reach their folders inside) but not listable by other users.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o711))?;
        }
        let keys = TokenKeys::load(settings.jwt_secret.as_deref(), &settings.data_dir, settings.access_token_ttl())?;
        let (db, _) = bootstrap::open_database(&settings, bus.as_ref()).await?;
        bootstrap::seed(&db, bus.as_ref()).await?;
        crate::templates::service::seed_built_in(&db, bus.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the built-in templates: {e}"))?;
        let session_policy = SessionPolicy {
            lifetime: chrono::Duration::seconds(settings.session_ttl as i64),
            idle: chrono::Duration::seconds(settings.session_idle_timeout as i64),
            reuse_grace: chrono::Duration::seconds(settings.refresh_reuse_grace as i64),
        };
        let limits = AttemptLimits::new(
            settings.rate_limit_account,
            settings.rate_limit_ip,
            std::time::Duration::from_secs(settings.rate_limit_window),
        );
        let sockets = Arc::new(SocketLimits::new(settings.ws_per_ip_per_minute, settings.ws_per_account));
        let mailer = Mailer::from_settings(&settings)?;
        let password_policy = PasswordPolicy { min_chars: usize::from(settings.password_min_length) };
        let settings = Arc::new(settings);
        let tasks = TaskTracker::new();
        let supervisor = Supervisor::new(db.clone(), bus.clone(), settings.clone(), tasks.clone())?;
        let history = History::from_settings(db.clone(), &settings);
        let alerts = AlertEngine::new(&settings)?;
        let stats = Stats::new()?;
        Ok(Self(Arc::new(ServiceSet {
            db,
            bus,
            keys,
            settings,
            session_policy,
            password_policy,
            cache: Arc::new(CallerCache::default()),
            limits: Arc::new(limits),
            sockets,
            mailer,
            supervisor,
            history,
            alerts,
            stats,
            tasks,
        })))
    }
}

impl App {
    /// Opens the services and makes the first admin; returns the hub and, on the very first
    /// start, the admin's credentials to show.
    pub async fn build(settings: Settings) -> anyhow::Result<(Self, Option<FirstAdmin>)> {
        let tls = settings.tls().map(|(cert, key)| http::tls::Tls::load(cert, key)).transpose()?;
        let services = Services::open(settings).await?;
        services.supervisor.adopt_all().await.map_err(|e| anyhow::anyhow!("cannot take the game servers back: {e}"))?;
        let admin = bootstrap::first_admin(&services)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the first admin: {e}"))?;
        let settings = &services.settings;
        let limits = Limits {
            depth: usize::from(settings.graphql_max_depth),
            complexity: settings.graphql_max_complexity as usize,
            recursion: usize::from(settings.graphql_max_recursion),
            introspection: settings.introspection_enabled(),
        };
        let graphql = graphql::Engine::new(services.clone(), limits);
        Ok((Self { services, graphql, shutdown: CancellationToken::new(), tls }, admin))
    }

    /// Periodic chores that keep memory bounded: forgetting rate-limit state that has refilled,
    /// giving memory back once sockets have closed.
    fn spawn_housekeeping(&self) {
        let (limits, sockets, token) =
            (self.services.limits.clone(), self.services.sockets.clone(), self.shutdown.clone());
        self.services.tasks.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            let mut look = tokio::time::interval(std::time::Duration::from_secs(2));
            let mut waves = crate::memory::AfterWaves::default();
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        limits.tidy();
                        sockets.tidy();
                    }
                    _ = look.tick() => {
                        if waves.fewer_now(sockets.open(), std::time::Instant::now()) {
                            // It walks every arena: off the runtime's few threads.
                            tokio::task::spawn_blocking(crate::memory::give_back);
                        }
                    }
                    () = token.cancelled() => break,
                }
            }
        });
    }

    /// Backups on the schedule the settings ask for: looked at every ten minutes, made when the
    /// newest is older than the interval. A failed backup is logged and tried again next time.
    fn spawn_backups(&self) {
        let Some(schedule) = self.services.settings.backup_schedule() else { return };
        let (s, token) = (self.services.clone(), self.shutdown.clone());
        self.services.tasks.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tokio::select! {
                    _ = tick.tick() => match schedule.tick(&s.settings, &s.db).await {
                        Ok(Some(path)) => tracing::info!(path = %path.display(), "backup written"),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = format!("{e:#}"), "the scheduled backup failed"),
                    },
                    () = token.cancelled() => break,
                }
            }
        });
    }

    /// The HTTP router (GraphQL, WebSocket, health, the web app).
    pub fn router(&self) -> axum::Router {
        http::router(self)
    }

    /// Serves on the listener until [`App::shutdown`] is cancelled, then drains requests and
    /// closes WebSockets (close frame 1001) within the configured timeout.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        let grace = self.services.settings.shutdown_timeout();
        self.spawn_housekeeping();
        self.spawn_backups();
        let s = &self.services;
        crate::monitor::start(s, self.shutdown.clone());
        crate::alerts::engine::watch_crashes(s, self.shutdown.clone());
        crate::alerts::suspicion::watch(s, self.shutdown.clone());
        let router = self.router();
        let token = self.shutdown.clone();
        if let Some(tls) = &self.tls {
            tls.clone().reload_on_sighup(token.clone());
        }
        // `tap_io` only for axum's ConnectInfo, which it implements for any tapped listener.
        let listener = http::tls::HubListener::new(listener, self.tls.clone())?.tap_io(|_| ());
        let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let deadline = async {
            token.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            res = server => res?,
            () = deadline => tracing::warn!("requests still open after the shutdown timeout; closing them"),
        }
        // Game servers go on running (they are adopted at the next start) unless asked otherwise;
        // their watchers stop.
        if self.services.settings.stop_servers_on_shutdown {
            tracing::info!("stopping the game servers (KUTANGA_STOP_SERVERS_ON_SHUTDOWN)");
            self.services.supervisor.stop_all().await;
        }
        self.services.supervisor.detach();
        let tasks = &self.services.tasks;
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(open = tasks.len(), "tasks still running after the shutdown timeout");
        }
        self.services.db.clone().close().await;
        tracing::info!("the hub has stopped");
        Ok(())
    }
}
