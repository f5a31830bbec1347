//! Roles and the permission catalogue.

use async_graphql::{Context, ID, Object, SimpleObject};
use shared::Permission as Key;

use super::{
    guard::{Need, caller, client, services},
    users::{Role, parse_arg, roles_with_permissions},
};
use crate::{
    app::Services,
    error::{GqlResult, IntoGql},
    roles,
};

/// A key of the permission catalogue.
#[derive(SimpleObject)]
pub struct Permission {
    /// The key, such as `server.start`.
    key: String,
    /// What it allows.
    description: String,
}

#[derive(Default)]
pub struct RoleQuery;

#[Object]
impl RoleQuery {
    /// Every role with its permission keys, built-in roles first. Needs `role.read`.
    #[graphql(guard = "Need(Key::RoleRead)")]
    async fn roles(&self, ctx: &Context<'_>) -> GqlResult<Vec<Role>> {
        let services = ctx.data::<Services>()?;
        let mut roles = roles_with_permissions(&services.db, None).await.gql()?;
        let order = |r: &Role| shared::permission::BUILT_IN_ROLES.iter().position(|b| b.name == r.name);
        roles.sort_by(|a, b| (order(a).unwrap_or(usize::MAX), &a.name).cmp(&(order(b).unwrap_or(usize::MAX), &b.name)));
        Ok(roles)
    }

    /// The permission catalogue. Needs `role.read`.
    #[graphql(guard = "Need(Key::RoleRead)")]
    async fn permissions(&self) -> Vec<Permission> {
        Key::ALL
            .iter()
            .map(|p| Permission { key: p.key().to_owned(), description: p.description().to_owned() })
            .collect()
    }
}

async fn one_role(s: &Services, id: i64) -> GqlResult<Role> {
    roles_with_permissions(&s.db, Some(vec![id]))
        .await
        .gql()?
        .into_iter()
        .next()
        .ok_or(crate::error::ApiError::NotFound("role"))
        .gql()
}

#[derive(Default)]
pub struct RoleMutation;

#[Object]
impl RoleMutation {
    /// Makes a custom role. Needs `role.manage` and every key it is given.
    #[graphql(guard = "Need(Key::RoleManage)")]
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role's name: 1 to 64 characters, no control or invisible characters; unique.")]
        name: String,
        #[graphql(desc = "What the role is for, at most 500 characters.")] description: Option<String>,
        #[graphql(desc = "The permission keys it gives, such as `server.start`.")] permissions: Vec<String>,
    ) -> GqlResult<Role> {
        let s = services(ctx)?;
        let created = roles::create(s, caller(ctx)?, &name, description, &permissions, client(ctx)).await.gql()?;
        one_role(s, created.id).await
    }

    /// Changes a role. Built-in roles keep their names and the Admin role keeps every key.
    /// Needs `role.manage` and every key added or removed.
    #[graphql(guard = "Need(Key::RoleManage)")]
    async fn update_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role's id.")] id: ID,
        #[graphql(desc = "The new name; absent: unchanged.")] name: Option<String>,
        #[graphql(desc = "New description, at most 500 characters; absent: unchanged.")] description: Option<String>,
        #[graphql(desc = "The keys it gives from now on, replacing the old ones; absent: unchanged.")]
        permissions: Option<Vec<String>>,
    ) -> GqlResult<Role> {
        let s = services(ctx)?;
        let id = parse_arg("id", &id).gql()?;
        roles::update(s, caller(ctx)?, id, name, description, permissions, client(ctx)).await.gql()?;
        one_role(s, id).await
    }

    /// Deletes a custom role (built-in roles cannot be deleted). Needs `role.manage`.
    #[graphql(guard = "Need(Key::RoleManage)")]
    async fn delete_role(&self, ctx: &Context<'_>, #[graphql(desc = "The role's id.")] id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        roles::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }
}
