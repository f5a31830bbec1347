//! Game servers: what the caller may see, their power, console and grants.

use std::sync::Arc;

use async_graphql::ErrorExtensions;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::{game_server, server_variable, template};
use futures_util::{StreamExt, stream::BoxStream};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use shared::Permission as Key;
use shared::ServerState;

use super::{
    guard::{SignedIn, caller, client, services},
    live,
    templates::Template,
    users::parse_arg,
};
use crate::{
    audit,
    error::{ApiError, GqlResult, IntoGql},
    events::{HubEvent, Topic},
    servers::{access, service as server_service},
    supervisor::{Asker, Supervisor, TRANSITIONS},
};

/// A variable value given when creating or changing a server.
#[derive(InputObject)]
pub struct ServerVariableInput {
    /// The variable's key, as the template declares it (e.g. PORT).
    key: String,
    /// Its value; it must pass the variable's rule.
    value: String,
}

pub(super) fn pairs(vars: Vec<ServerVariableInput>) -> Vec<(String, String)> {
    vars.into_iter().map(|v| (v.key, v.value)).collect()
}

/// A new server.
#[derive(InputObject)]
pub struct CreateServerInput {
    /// The server's name: 1 to 64 characters, no control or invisible characters; unique.
    name: String,
    /// The template to make it from.
    template_id: ID,
    /// Values of the template's variables; those left out take their defaults.
    variables: Option<Vec<ServerVariableInput>>,
    /// Restart it after a crash. Default: the template's `crash.autoRestart`.
    auto_restart: Option<bool>,
    /// Start it whenever the hub starts.
    start_with_hub: Option<bool>,
    /// The most memory its processes may use, in MB (64 to 1048576); null: no limit.
    memory_limit_mb: Option<i32>,
}

/// Changes to a server; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateServerInput {
    /// The new name: 1 to 64 characters, no control or invisible characters; unique.
    name: Option<String>,
    /// New values of some of the template's variables (the others keep theirs); only while the
    /// server is OFFLINE or CRASHED.
    variables: Option<Vec<ServerVariableInput>>,
    /// Restart it after a crash.
    auto_restart: Option<bool>,
    /// Start it whenever the hub starts.
    start_with_hub: Option<bool>,
    /// The most memory its processes may use, in MB (64 to 1048576).
    memory_limit_mb: Option<i32>,
}

/// A console line as the API shows it: the hub's own line, which each subscriber's answer reads
/// from, with no copy per subscriber of what it does not ask for.
pub struct ConsoleLine(Arc<crate::events::ConsoleLine>);

/// One line of a server's console.
#[Object]
impl ConsoleLine {
    /// The server's id.
    async fn server_id(&self) -> ID {
        ID(self.0.server_id.to_string())
    }
    /// When the hub read or wrote the line.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// stdout, stderr, stdin (a command sent) or system (the hub's own word).
    async fn stream(&self) -> &str {
        self.0.stream
    }
    /// The line's text, without its line break (ANSI escape codes are removed from the game's
    /// output).
    async fn line(&self) -> &str {
        &self.0.line
    }
}

/// A change of a server's state.
#[derive(SimpleObject)]
pub struct ServerStateEvent {
    /// The server's id.
    server_id: ID,
    /// The state it went into.
    state: ServerState,
    /// When it changed.
    at: DateTime<Utc>,
    /// What happened, in words (such as how the process exited); null when there is nothing to
    /// add.
    message: Option<String>,
}

/// A user's grants on one server.
#[derive(SimpleObject)]
pub struct ServerGrant {
    /// Who holds the grant.
    user: Grantee,
    /// `server.*` keys.
    permissions: Vec<String>,
}

/// Who holds a grant: enough to recognise them, and no more (the rest of an account needs
/// `user.read`).
#[derive(SimpleObject)]
pub struct Grantee {
    /// The account's id.
    id: ID,
    /// The address the account signs in with.
    email: String,
    /// The name shown for the account.
    display_name: String,
}

impl From<super::users::User> for Grantee {
    fn from(u: super::users::User) -> Self {
        Self { id: u.id, email: u.email, display_name: u.display_name }
    }
}

/// A variable's value on one server.
#[derive(SimpleObject)]
pub struct ServerVariable {
    /// The variable's key (e.g. PORT).
    key: String,
    /// Its value on this server.
    value: String,
}

/// A game server instance.
pub struct GameServer(game_server::Model);

/// A game server: one instance of a template, with its own folder, variables and process.
#[Object]
impl GameServer {
    /// The server's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The server's name (unique).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The template it was made from.
    async fn template(&self, ctx: &Context<'_>) -> GqlResult<Template> {
        let s = services(ctx)?;
        template::Entity::find_by_id(self.0.template_id)
            .one(s.db.conn())
            .await
            .map_err(ApiError::from)
            .and_then(|t| t.ok_or(ApiError::NotFound("template")))
            .map(Template::from)
            .gql()
    }
    /// Where it is in its life cycle.
    async fn state(&self) -> GqlResult<ServerState> {
        self.0.state.parse::<ServerState>().map_err(|e| ApiError::internal(anyhow::anyhow!(e))).gql()
    }
    /// The process id of its game while one runs; null when none does.
    async fn pid(&self) -> Option<i64> {
        self.0.pid
    }
    /// Its port: the value of its template's port variable; null when the template has none.
    async fn port(&self) -> Option<i32> {
        self.0.port
    }
    /// Its variables' values, by key.
    async fn variables(&self, ctx: &Context<'_>) -> GqlResult<Vec<ServerVariable>> {
        let s = services(ctx)?;
        let rows = server_variable::Entity::find()
            .filter(server_variable::Column::ServerId.eq(self.0.id))
            .order_by_asc(server_variable::Column::Key)
            .all(s.db.conn())
            .await
            .gql()?;
        Ok(rows.into_iter().map(|v| ServerVariable { key: v.key, value: v.value }).collect())
    }
    /// Whether the hub restarts it after a crash (when its template's crash policy allows it too).
    async fn auto_restart(&self) -> bool {
        self.0.auto_restart
    }
    /// Started whenever the hub starts.
    async fn start_with_hub(&self) -> bool {
        self.0.start_with_hub
    }
    /// The most memory its processes may use, in MB; null: no limit.
    async fn memory_limit_mb(&self) -> Option<i32> {
        self.0.memory_limit_mb
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was last started; null when it never was.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// The exit code of its last exit; null when it has not exited yet, was ended by a signal, or
    /// its status is unknown.
    async fn last_exit_code(&self) -> Option<i32> {
        self.0.last_exit_code
    }
    /// The last lines of its console, oldest first (at most 1000). Needs `server.read` on it.
    async fn console_tail(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100, desc = "How many lines, 1 to 1000.")] lines: i32,
    ) -> GqlResult<Vec<ConsoleLine>> {
        let s = services(ctx)?;
        if !(1..=1000).contains(&lines) {
            return Err(ApiError::bad_input("lines", "lines is 1 to 1000")).gql();
        }
        Ok(s.supervisor.console(self.0.id).tail(lines as usize).into_iter().map(ConsoleLine).collect())
    }

    /// Who holds per-server grants here, with their keys. Needs `server.grant` on it.
    async fn grants(&self, ctx: &Context<'_>) -> GqlResult<Vec<ServerGrant>> {
        let s = services(ctx)?;
        let rows = access::grants(s.db.conn(), caller(ctx)?, self.0.id).await.gql()?;
        Ok(rows
            .into_iter()
            .map(|(user, permissions)| ServerGrant { user: super::users::User::from(user).into(), permissions })
            .collect())
    }

    /// Its latest changes of state, newest first (1 to 200, default 20), read from the audit
    /// trail: visible to whoever sees the server.
    async fn state_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many changes, 1 to 200.")] last: i32,
    ) -> GqlResult<Vec<ServerStateEvent>> {
        let s = services(ctx)?;
        if !(1..=200).contains(&last) {
            return Err(ApiError::bad_input("last", "last is 1 to 200")).gql();
        }
        let actions: Vec<&str> = TRANSITIONS.iter().map(|(a, _)| *a).collect();
        let rows = audit::about(s.db.conn(), "server", &self.0.id.to_string(), &actions, last as u64)
            .await
            .map_err(ApiError::from)
            .gql()?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let state = TRANSITIONS.iter().find(|(a, _)| *a == row.action)?.1;
                Some(ServerStateEvent { server_id: ID(self.0.id.to_string()), state, at: row.at, message: row.detail })
            })
            .collect())
    }

    /// The per-server keys the caller holds on this server (global or granted).
    async fn my_permissions(&self, ctx: &Context<'_>) -> GqlResult<Vec<String>> {
        let s = services(ctx)?;
        let keys = access::keys_on(s.db.conn(), caller(ctx)?, self.0.id).await.gql()?;
        Ok(keys.iter().map(|k| k.key().to_owned()).collect())
    }
}

#[derive(Default)]
pub struct ServerQuery;

#[Object]
impl ServerQuery {
    /// The servers the caller may see: all with `server.read`, else those granted to them.
    #[graphql(guard = "SignedIn")]
    async fn servers(&self, ctx: &Context<'_>) -> GqlResult<Vec<GameServer>> {
        let s = services(ctx)?;
        Ok(access::visible(s.db.conn(), caller(ctx)?).await.gql()?.into_iter().map(GameServer).collect())
    }

    /// One server, or null when it does not exist or the caller may not see it.
    #[graphql(guard = "SignedIn")]
    async fn server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
    ) -> GqlResult<Option<GameServer>> {
        let s = services(ctx)?;
        let id = parse_arg("id", &id).gql()?;
        match access::require(s.db.conn(), caller(ctx)?, id, shared::Permission::ServerRead).await {
            Ok(server) => Ok(Some(GameServer(server))),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e).gql(),
        }
    }
}

fn asker(ctx: &Context<'_>) -> GqlResult<Asker> {
    Ok(Asker { actor: Some(caller(ctx)?.actor()), ip: client(ctx).ip.clone() })
}

type Action = fn(Supervisor, i64, Asker) -> futures_util::future::BoxFuture<'static, Result<(), ApiError>>;

/// Checks `key` on the server, runs the action, answers with the server as it is now.
async fn act(ctx: &Context<'_>, id: &ID, key: Key, action: Action) -> GqlResult<GameServer> {
    let (s, me) = (services(ctx)?, caller(ctx)?);
    let id = parse_arg("id", id).gql()?;
    access::require(s.db.conn(), me, id, key).await.gql()?;
    action(s.supervisor.clone(), id, asker(ctx)?).await.gql()?;
    let row = access::require(s.db.conn(), me, id, Key::ServerRead).await.gql()?;
    Ok(GameServer(row))
}

#[derive(Default)]
pub struct ServerSubscription;

#[Subscription]
impl ServerSubscription {
    /// Each change of state of one server, or of every server the caller may see (serverId
    /// null). Ends when the caller loses access.
    #[graphql(guard = "SignedIn")]
    async fn server_state(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server to follow; null: every server the caller may see.")] server_id: Option<ID>,
    ) -> async_graphql::Result<BoxStream<'static, GqlResult<ServerStateEvent>>> {
        let (s, me) = (services(ctx)?.clone(), caller(ctx)?.clone());
        let only = server_id.map(|id| parse_arg("serverId", &id)).transpose().gql()?;
        if let Some(id) = only
            && let Err(e) = access::require(s.db.conn(), &me, id, Key::ServerRead).await
        {
            return Ok(refused(e));
        }
        let live_me = live::LiveCaller::new(&me);
        let (s2, me2) = (s.clone(), live_me.clone());
        let events = s
            .bus
            .subscribe(Topic::ServerState)
            .filter_map(move |e| {
                let (s, me) = (s2.clone(), me2.get());
                async move {
                    let HubEvent::ServerState(ev) = e else { return None };
                    if only.is_some_and(|id| id != ev.server_id) {
                        return None;
                    }
                    access::require(s.db.conn(), &me, ev.server_id, Key::ServerRead).await.ok()?;
                    Some(ServerStateEvent {
                        server_id: ID(ev.server_id.to_string()),
                        state: ev.state,
                        at: ev.at,
                        message: ev.message.clone(),
                    })
                }
            })
            .boxed();
        let check: live::Check = Box::new(move |s, me| {
            Box::pin(async move {
                match only {
                    Some(id) => access::require(s.db.conn(), &me, id, Key::ServerRead).await.map(|_| ()),
                    None => Ok(()),
                }
            })
        });
        Ok(live::while_allowed(&s, live_me, check, events).boxed())
    }

    /// A server's console lines as they come. Needs `server.read` on it; ends when access goes.
    #[graphql(guard = "SignedIn")]
    async fn server_console(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] server_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, GqlResult<ConsoleLine>>> {
        let (s, me) = (services(ctx)?.clone(), caller(ctx)?.clone());
        let id = parse_arg("serverId", &server_id).gql()?;
        if let Err(e) = access::require(s.db.conn(), &me, id, Key::ServerRead).await {
            return Ok(refused(e));
        }
        let lines = s
            .bus
            .subscribe(Topic::Console(id))
            .filter_map(move |e| {
                futures_util::future::ready(match e {
                    HubEvent::Console(l) if l.server_id == id => Some(ConsoleLine(l)),
                    _ => None,
                })
            })
            .boxed();
        let check: live::Check = Box::new(move |s, me| {
            Box::pin(async move { access::require(s.db.conn(), &me, id, Key::ServerRead).await.map(|_| ()) })
        });
        Ok(live::while_allowed(&s, live::LiveCaller::new(&me), check, lines).boxed())
    }
}

/// A subscription refused after its guard: one error, then the end (an `Err` from the resolver
/// itself would end the stream without saying why).
fn refused<T: Send + 'static>(e: ApiError) -> BoxStream<'static, GqlResult<T>> {
    futures_util::stream::once(futures_util::future::ready(Err(e.extend()))).boxed()
}

#[derive(Default)]
pub struct ServerMutation;

#[Object]
impl ServerMutation {
    /// Creates a server from a template and prepares its folder. Needs `server.create`.
    #[graphql(guard = "SignedIn")]
    async fn create_server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server to create.")] input: CreateServerInput,
    ) -> GqlResult<GameServer> {
        let template_id = parse_arg("templateId", &input.template_id).gql()?;
        let new = server_service::NewServer {
            name: input.name,
            template_id,
            variables: pairs(input.variables.unwrap_or_default()),
            auto_restart: input.auto_restart,
            start_with_hub: input.start_with_hub,
            memory_limit_mb: input.memory_limit_mb,
        };
        server_service::create(services(ctx)?, caller(ctx)?, new, client(ctx)).await.map(GameServer).gql()
    }

    /// Changes a server (variables only while it is stopped). Needs `server.update` on it.
    #[graphql(guard = "SignedIn")]
    async fn update_server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateServerInput,
    ) -> GqlResult<GameServer> {
        let id = parse_arg("id", &id).gql()?;
        let change = server_service::ServerChange {
            name: input.name,
            variables: input.variables.map(pairs),
            auto_restart: input.auto_restart,
            start_with_hub: input.start_with_hub,
            memory_limit_mb: input.memory_limit_mb,
        };
        server_service::update(services(ctx)?, caller(ctx)?, id, change, client(ctx)).await.map(GameServer).gql()
    }

    /// Starts a stopped or crashed server (STARTING until its ready line). Needs `server.start`.
    #[graphql(guard = "SignedIn")]
    async fn start_server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
    ) -> GqlResult<GameServer> {
        act(ctx, &id, Key::ServerStart, |sup, id, asker| Box::pin(async move { sup.start(id, asker).await })).await
    }

    /// Stops a server: its console command, then its signal, then SIGKILL after the timeouts.
    /// Answers at once with STOPPING. Needs `server.stop`.
    #[graphql(guard = "SignedIn")]
    async fn stop_server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
    ) -> GqlResult<GameServer> {
        act(ctx, &id, Key::ServerStop, |sup, id, asker| Box::pin(async move { sup.stop(id, asker).await })).await
    }

    /// Stops and starts a server (or starts it when stopped). Needs `server.start`.
    #[graphql(guard = "SignedIn")]
    async fn restart_server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
    ) -> GqlResult<GameServer> {
        act(ctx, &id, Key::ServerStart, |sup, id, asker| Box::pin(async move { sup.restart(id, asker).await })).await
    }

    /// Kills a server at once (SIGKILL to its process group). Needs `server.stop`.
    #[graphql(guard = "SignedIn")]
    async fn kill_server(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
    ) -> GqlResult<GameServer> {
        act(ctx, &id, Key::ServerStop, |sup, id, asker| Box::pin(async move { sup.kill(id, asker).await })).await
    }

    /// Writes a line to a running server's console (stdin). Needs `server.console`.
    #[graphql(guard = "SignedIn")]
    async fn send_server_command(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] id: ID,
        #[graphql(desc = "One line of 1 to 1024 characters (at most 4,095 bytes), no control characters.")]
        command: String,
    ) -> GqlResult<bool> {
        let (s, me) = (services(ctx)?, caller(ctx)?);
        let id = parse_arg("id", &id).gql()?;
        access::require(s.db.conn(), me, id, Key::ServerConsole).await.gql()?;
        s.supervisor.send(id, &command, asker(ctx)?).await.gql()?;
        Ok(true)
    }

    /// Deletes a stopped server with its folder. Needs `server.delete` on it.
    #[graphql(guard = "SignedIn")]
    async fn delete_server(&self, ctx: &Context<'_>, #[graphql(desc = "The server's id.")] id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        server_service::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }

    /// Gives a user exactly these per-server keys on one server (`server.read` comes with any).
    /// Needs `server.grant` on the server and every key given.
    #[graphql(guard = "SignedIn")]
    async fn grant_server_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] server_id: ID,
        #[graphql(desc = "The user's id.")] user_id: ID,
        #[graphql(desc = "The `server.*` keys to give (at least one); they replace what the user held there.")]
        permissions: Vec<String>,
    ) -> GqlResult<bool> {
        let server_id = parse_arg("serverId", &server_id).gql()?;
        let user_id = parse_arg("userId", &user_id).gql()?;
        access::grant(services(ctx)?, caller(ctx)?, server_id, user_id, &permissions, client(ctx)).await.gql()
    }

    /// Takes all of a user's keys on one server away. Needs `server.grant` on the server.
    #[graphql(guard = "SignedIn")]
    async fn revoke_server_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The server's id.")] server_id: ID,
        #[graphql(desc = "The user's id.")] user_id: ID,
    ) -> GqlResult<bool> {
        let server_id = parse_arg("serverId", &server_id).gql()?;
        let user_id = parse_arg("userId", &user_id).gql()?;
        access::revoke(services(ctx)?, caller(ctx)?, server_id, user_id, client(ctx)).await.gql()
    }
}
