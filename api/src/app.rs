//! The assembled hub: its services, its router, and serving until shutdown.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    auth::{TokenKeys, service::SessionPolicy},
    bootstrap::{self, FirstAdmin},
    config::Settings,
    db::Db,
    events::{EventBus, LocalBus},
    graphql::{self, HubSchema, Limits},
    http,
};

/// What every resolver and handler may use. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub bus: Arc<dyn EventBus>,
    pub keys: TokenKeys,
    pub settings: Arc<Settings>,
    pub session_policy: SessionPolicy,
}

/// A hub ready to serve.
#[derive(Clone)]
pub struct App {
    pub services: Services,
    pub schema: HubSchema,
    /// Cancelled to stop the hub; every background task watches it.
    pub shutdown: CancellationToken,
    /// Tracks the tasks that must end before the process exits (WebSocket sessions...).
    pub tasks: TaskTracker,
}

impl App {
    /// Connects, migrates, seeds and makes the first admin; returns the hub and, on the very
    /// first start, the admin's credentials to show.
    pub async fn build(settings: Settings) -> anyhow::Result<(Self, Option<FirstAdmin>)> {
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::new(1024));
        std::fs::create_dir_all(&settings.data_dir)?;
        let keys = TokenKeys::load(settings.jwt_secret.as_deref(), &settings.data_dir, settings.access_token_ttl())?;
        let db = bootstrap::open_database(&settings, bus.as_ref()).await?;
        bootstrap::seed(&db, bus.as_ref()).await?;
        let admin = bootstrap::first_admin(&db, bus.as_ref(), &settings)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the first admin: {e}"))?;
        let session_policy = SessionPolicy { lifetime: chrono::Duration::seconds(settings.session_ttl as i64) };
        let limits = Limits {
            depth: usize::from(settings.graphql_max_depth),
            complexity: settings.graphql_max_complexity as usize,
            recursion: usize::from(settings.graphql_max_recursion),
            introspection: settings.introspection_enabled(),
        };
        let services = Services { db, bus, keys, settings: Arc::new(settings), session_policy };
        let schema = graphql::build_schema(services.clone(), limits);
        Ok((Self { services, schema, shutdown: CancellationToken::new(), tasks: TaskTracker::new() }, admin))
    }

    /// The HTTP router (GraphQL, WebSocket, health, the web app).
    pub fn router(&self) -> axum::Router {
        http::router(self)
    }

    /// Serves on the listener until [`App::shutdown`] is cancelled, then drains requests and
    /// closes WebSockets (close frame 1001) within the configured timeout.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        let grace = self.services.settings.shutdown_timeout();
        let router = self.router();
        let token = self.shutdown.clone();
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
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            tracing::warn!(open = self.tasks.len(), "sessions still open after the shutdown timeout");
        }
        self.services.db.clone().close().await;
        tracing::info!("the hub has stopped");
        Ok(())
    }
}
