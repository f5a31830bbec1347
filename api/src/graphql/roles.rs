//! Roles and the permission catalogue.

use async_graphql::{Context, Object, SimpleObject};
use shared::Permission as Key;

use super::{
    guard::Need,
    users::{Role, roles_with_permissions},
};
use crate::{
    app::Services,
    error::{GqlResult, IntoGql},
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
