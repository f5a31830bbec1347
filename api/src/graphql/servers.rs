//! Game servers and templates as far as access goes: what the caller may see, and grants.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{game_server, server_variable, template};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use shared::ServerState;

use super::{
    guard::{SignedIn, caller, client, services},
    users::parse_arg,
};
use crate::{
    error::{ApiError, GqlResult, IntoGql},
    servers::{access, service as server_service},
    templates::service::{self as template_service, definition_of},
};

/// A kind of game server.
pub struct Template(template::Model);

impl From<template::Model> for Template {
    fn from(t: template::Model) -> Self {
        Self(t)
    }
}

#[Object]
impl Template {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// e.g. "Luanti (Minetest)", "Custom command".
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The variables a server of this template sets.
    async fn variables(&self) -> GqlResult<Vec<TemplateVariable>> {
        let def = definition_of(&self.0).gql()?;
        Ok(def
            .variables
            .into_iter()
            .map(|v| TemplateVariable {
                rule: v.rule.as_ref().map(|r| r.describe()),
                key: v.key,
                description: v.description,
                default: v.default,
                required: v.required,
                editable: v.editable,
                privileged: v.privileged,
            })
            .collect())
    }
    /// The template file's text (TOML).
    async fn definition(&self) -> &str {
        &self.0.definition
    }
    /// Shipped with the hub; read-only.
    async fn built_in(&self) -> bool {
        self.0.built_in
    }
}

/// A variable of a template.
#[derive(SimpleObject)]
pub struct TemplateVariable {
    /// e.g. PORT
    key: String,
    description: Option<String>,
    default: Option<String>,
    required: bool,
    /// Whether server owners may change it.
    editable: bool,
    /// Only holders of `template.manage` may set it.
    privileged: bool,
    /// The validation rule in words, e.g. "port (1024-65535)".
    rule: Option<String>,
}

/// A variable value given when creating or changing a server.
#[derive(InputObject)]
pub struct ServerVariableInput {
    key: String,
    value: String,
}

fn pairs(vars: Vec<ServerVariableInput>) -> Vec<(String, String)> {
    vars.into_iter().map(|v| (v.key, v.value)).collect()
}

/// A new server.
#[derive(InputObject)]
pub struct CreateServerInput {
    name: String,
    template_id: ID,
    variables: Option<Vec<ServerVariableInput>>,
    auto_restart: Option<bool>,
    memory_limit_mb: Option<i32>,
}

/// Changes to a server; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateServerInput {
    name: Option<String>,
    variables: Option<Vec<ServerVariableInput>>,
    auto_restart: Option<bool>,
    memory_limit_mb: Option<i32>,
}

/// A variable's value on one server.
#[derive(SimpleObject)]
pub struct ServerVariable {
    key: String,
    value: String,
}

/// A game server instance.
pub struct GameServer(game_server::Model);

#[Object]
impl GameServer {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
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
    async fn state(&self) -> GqlResult<ServerState> {
        self.0.state.parse::<ServerState>().map_err(|e| ApiError::internal(anyhow::anyhow!(e))).gql()
    }
    async fn pid(&self) -> Option<i64> {
        self.0.pid
    }
    async fn port(&self) -> Option<i32> {
        self.0.port
    }
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
    async fn auto_restart(&self) -> bool {
        self.0.auto_restart
    }
    async fn memory_limit_mb(&self) -> Option<i32> {
        self.0.memory_limit_mb
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn last_exit_code(&self) -> Option<i32> {
        self.0.last_exit_code
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
    /// The game server templates (any signed-in user may read them).
    #[graphql(guard = "SignedIn")]
    async fn templates(&self, ctx: &Context<'_>) -> GqlResult<Vec<Template>> {
        let s = services(ctx)?;
        let rows = template::Entity::find().order_by_asc(template::Column::Name).all(s.db.conn()).await.gql()?;
        Ok(rows.into_iter().map(Template::from).collect())
    }

    /// The servers the caller may see: all with `server.read`, else those granted to them.
    #[graphql(guard = "SignedIn")]
    async fn servers(&self, ctx: &Context<'_>) -> GqlResult<Vec<GameServer>> {
        let s = services(ctx)?;
        Ok(access::visible(s.db.conn(), caller(ctx)?).await.gql()?.into_iter().map(GameServer).collect())
    }

    /// One server, or null when it does not exist or the caller may not see it.
    #[graphql(guard = "SignedIn")]
    async fn server(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<GameServer>> {
        let s = services(ctx)?;
        let id = parse_arg("id", &id).gql()?;
        match access::require(s.db.conn(), caller(ctx)?, id, shared::Permission::ServerRead).await {
            Ok(server) => Ok(Some(GameServer(server))),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e).gql(),
        }
    }
}

#[derive(Default)]
pub struct ServerMutation;

#[Object]
impl ServerMutation {
    /// Adds a template from its file's text (TOML). Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn create_template(&self, ctx: &Context<'_>, definition: String) -> GqlResult<Template> {
        template_service::create(services(ctx)?, caller(ctx)?, &definition, client(ctx)).await.map(Template).gql()
    }

    /// Replaces a custom template's text (built-in ones are read-only). Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn update_template(&self, ctx: &Context<'_>, id: ID, definition: String) -> GqlResult<Template> {
        let id = parse_arg("id", &id).gql()?;
        template_service::update(services(ctx)?, caller(ctx)?, id, &definition, client(ctx)).await.map(Template).gql()
    }

    /// Deletes a custom template; CONFLICT while a server uses it. Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn delete_template(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        template_service::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }

    /// Creates a server from a template and prepares its folder. Needs `server.create`.
    #[graphql(guard = "SignedIn")]
    async fn create_server(&self, ctx: &Context<'_>, input: CreateServerInput) -> GqlResult<GameServer> {
        let template_id = parse_arg("templateId", &input.template_id).gql()?;
        let new = server_service::NewServer {
            name: input.name,
            template_id,
            variables: pairs(input.variables.unwrap_or_default()),
            auto_restart: input.auto_restart,
            memory_limit_mb: input.memory_limit_mb,
        };
        server_service::create(services(ctx)?, caller(ctx)?, new, client(ctx)).await.map(GameServer).gql()
    }

    /// Changes a server (variables only while it is stopped). Needs `server.update` on it.
    #[graphql(guard = "SignedIn")]
    async fn update_server(&self, ctx: &Context<'_>, id: ID, input: UpdateServerInput) -> GqlResult<GameServer> {
        let id = parse_arg("id", &id).gql()?;
        let change = server_service::ServerChange {
            name: input.name,
            variables: input.variables.map(pairs),
            auto_restart: input.auto_restart,
            memory_limit_mb: input.memory_limit_mb,
        };
        server_service::update(services(ctx)?, caller(ctx)?, id, change, client(ctx)).await.map(GameServer).gql()
    }

    /// Deletes a stopped server with its folder. Needs `server.delete` on it.
    #[graphql(guard = "SignedIn")]
    async fn delete_server(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        server_service::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }

    /// Gives a user exactly these per-server keys on one server (`server.read` comes with any).
    /// Needs `server.grant` on the server and every key given.
    #[graphql(guard = "SignedIn")]
    async fn grant_server_access(
        &self,
        ctx: &Context<'_>,
        server_id: ID,
        user_id: ID,
        permissions: Vec<String>,
    ) -> GqlResult<bool> {
        let server_id = parse_arg("serverId", &server_id).gql()?;
        let user_id = parse_arg("userId", &user_id).gql()?;
        access::grant(services(ctx)?, caller(ctx)?, server_id, user_id, &permissions, client(ctx)).await.gql()
    }

    /// Takes all of a user's keys on one server away. Needs `server.grant` on the server.
    #[graphql(guard = "SignedIn")]
    async fn revoke_server_access(&self, ctx: &Context<'_>, server_id: ID, user_id: ID) -> GqlResult<bool> {
        let server_id = parse_arg("serverId", &server_id).gql()?;
        let user_id = parse_arg("userId", &user_id).gql()?;
        access::revoke(services(ctx)?, caller(ctx)?, server_id, user_id, client(ctx)).await.gql()
    }
}
