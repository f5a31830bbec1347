//! The public `hubInfo` query and the guarded `hubOverview` for whoever runs the hub.

use async_graphql::{Context, Object, SimpleObject};
use entity::{game_server, user};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use shared::{Permission as Key, ServerState};

use super::guard::Need;
use crate::{
    app::Services,
    config::{ConfigEntry, DatabaseTarget, Registration},
    error::{ApiError, GqlResult, IntoGql},
};

/// The running hub, for whoever administers it.
#[derive(SimpleObject)]
pub struct HubOverview {
    /// The hub's display name from config.
    name: String,
    /// The hub's version.
    version: String,
    /// The database schema this hub writes: the name of its newest migration (`kutanga
    /// --version` prints it too; a backup records it).
    schema_version: String,
    /// `SQLite` or `PostgreSQL`.
    database: String,
    /// The data folder (database when SQLite, keys, game servers, logs) and the disk it uses.
    data_dir: String,
    /// The disk space the data folder takes, in bytes.
    data_dir_bytes: f64,
    /// `closed`, `open` or `invite`.
    registration: String,
    /// How many accounts there are.
    users: i32,
    /// How many game servers there are.
    servers: i32,
    /// How many game servers are RUNNING.
    servers_running: i32,
    /// GraphQL subscriptions open now, over every socket.
    open_subscriptions: i32,
    /// Every option as it was set (flag, environment, file or default), secrets hidden.
    configuration: Vec<ConfigOption>,
}

/// One option of the running hub.
#[derive(SimpleObject)]
pub struct ConfigOption {
    /// The long option name, also the key in the TOML file (`data_dir`).
    key: String,
    /// The value; a secret shows only `set` or `unset`.
    value: String,
    /// `default`, `environment`, `file` or `command line`.
    source: String,
    /// Whether the value is a secret (shown only as `set` or `unset`).
    secret: bool,
}

impl From<&ConfigEntry> for ConfigOption {
    fn from(e: &ConfigEntry) -> Self {
        Self { key: e.key.clone(), value: e.value.clone(), source: e.source.to_owned(), secret: e.secret }
    }
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What anyone may know about this hub.
#[derive(SimpleObject)]
pub struct HubInfo {
    /// The hub's display name from config.
    name: String,
    /// The hub's version.
    version: String,
    /// Whether `register` works without an invitation.
    registration_open: bool,
}

#[derive(Default)]
pub struct HubQuery;

#[Object]
impl HubQuery {
    /// The hub's name and version. Public: the only query that needs no token.
    async fn hub_info(&self, ctx: &Context<'_>) -> GqlResult<HubInfo> {
        let services = ctx.data::<Services>()?;
        Ok(HubInfo {
            name: services.settings.hub_name.clone(),
            version: shared::VERSION.to_owned(),
            registration_open: services.settings.registration == Registration::Open,
        })
    }

    /// The hub's version, database, data folder and its size, registration mode, counts and
    /// effective configuration (secrets hidden). Needs `settings.manage`.
    #[graphql(guard = "Need(Key::SettingsManage)")]
    async fn hub_overview(&self, ctx: &Context<'_>) -> GqlResult<HubOverview> {
        let s = ctx.data::<Services>()?;
        let db = s.db.conn();
        let users = user::Entity::find().count(db).await.map_err(ApiError::from).gql()?;
        let servers = game_server::Entity::find().count(db).await.map_err(ApiError::from).gql()?;
        let running = game_server::Entity::find()
            .filter(game_server::Column::State.eq(ServerState::Running.as_str()))
            .count(db)
            .await
            .map_err(ApiError::from)
            .gql()?;
        let dir = s.settings.data_dir.clone();
        let bytes = tokio::task::spawn_blocking(move || crate::supervisor::process::disk_usage(&dir))
            .await
            .map_err(ApiError::internal)
            .gql()?;
        Ok(HubOverview {
            name: s.settings.hub_name.clone(),
            version: shared::VERSION.to_owned(),
            schema_version: crate::db::schema_version(),
            database: match s.settings.database() {
                DatabaseTarget::Sqlite(_) => "SQLite".into(),
                DatabaseTarget::Postgres(_) => "PostgreSQL".into(),
            },
            data_dir: s.settings.data_dir.display().to_string(),
            data_dir_bytes: bytes as f64,
            registration: match s.settings.registration {
                Registration::Closed => "closed",
                Registration::Open => "open",
                Registration::Invite => "invite",
            }
            .into(),
            users: count(users),
            servers: count(servers),
            servers_running: count(running),
            open_subscriptions: i32::try_from(s.stats.subscriptions_open()).unwrap_or(i32::MAX),
            configuration: s.settings.effective.iter().map(ConfigOption::from).collect(),
        })
    }
}
