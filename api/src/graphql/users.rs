//! The `User` type and the loader that fetches users and their roles in batches.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{ComplexObject, Context, ID, SimpleObject, dataloader::DataLoader};
use chrono::{DateTime, Utc};
use entity::{role, role_permission, user, user_role};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    db::Db,
    error::{ApiError, GqlResult, IntoGql},
};

/// A role with its permission keys.
#[derive(SimpleObject, Clone, Debug)]
pub struct Role {
    pub id: ID,
    /// Admin, Moderator and User are seeded; more can be made.
    pub name: String,
    pub description: Option<String>,
    /// Permission keys, such as `server.start`.
    pub permissions: Vec<String>,
    /// Seeded by the hub; cannot be deleted.
    pub built_in: bool,
}

/// A user account.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct User {
    #[graphql(skip)]
    pub raw_id: i64,
    pub id: ID,
    pub email: String,
    pub display_name: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            raw_id: m.id,
            id: ID(m.id.to_string()),
            email: m.email,
            display_name: m.display_name,
            disabled: m.disabled,
            created_at: m.created_at,
            last_login_at: m.last_login_at,
        }
    }
}

#[ComplexObject]
impl User {
    /// The roles the user holds.
    async fn roles(&self, ctx: &Context<'_>) -> GqlResult<Vec<Role>> {
        roles_of(ctx, self.raw_id).await
    }

    /// The union of the user's roles' permission keys.
    async fn permissions(&self, ctx: &Context<'_>) -> GqlResult<Vec<String>> {
        let mut keys: Vec<String> = roles_of(ctx, self.raw_id).await?.into_iter().flat_map(|r| r.permissions).collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

async fn roles_of(ctx: &Context<'_>, user_id: i64) -> GqlResult<Vec<Role>> {
    let loader = ctx.data::<DataLoader<Loader>>()?;
    let roles =
        loader.load_one(RolesOf(user_id)).await.map_err(|e| ApiError::internal(anyhow::anyhow!("{e}"))).gql()?;
    Ok(roles.unwrap_or_default())
}

/// Loads a user by id (None when deleted).
pub async fn user_by_id(ctx: &Context<'_>, id: i64) -> GqlResult<Option<User>> {
    let loader = ctx.data::<DataLoader<Loader>>()?;
    loader.load_one(UserKey(id)).await.map_err(|e| ApiError::internal(anyhow::anyhow!("{e}"))).gql()
}

/// Batches user and role look-ups across the fields of a request.
pub struct Loader(pub Db);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RolesOf(pub i64);

type LoadError = Arc<sea_orm::DbErr>;

impl async_graphql::dataloader::Loader<UserKey> for Loader {
    type Value = User;
    type Error = LoadError;

    async fn load(&self, keys: &[UserKey]) -> Result<HashMap<UserKey, User>, LoadError> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let users = user::Entity::find().filter(user::Column::Id.is_in(ids)).all(self.0.conn()).await?;
        Ok(users.into_iter().map(|u| (UserKey(u.id), User::from(u))).collect())
    }
}

impl async_graphql::dataloader::Loader<RolesOf> for Loader {
    type Value = Vec<Role>;
    type Error = LoadError;

    async fn load(&self, keys: &[RolesOf]) -> Result<HashMap<RolesOf, Vec<Role>>, LoadError> {
        let db = self.0.conn();
        let user_ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let links = user_role::Entity::find().filter(user_role::Column::UserId.is_in(user_ids)).all(db).await?;
        let role_ids: Vec<i64> = links.iter().map(|l| l.role_id).collect();
        let roles = roles_with_permissions(&self.0, Some(role_ids)).await?;
        let by_id: HashMap<i64, &Role> = roles.iter().map(|r| (parse_id(&r.id), r)).collect();
        let mut out: HashMap<RolesOf, Vec<Role>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for link in links {
            if let (Some(list), Some(role)) = (out.get_mut(&RolesOf(link.user_id)), by_id.get(&link.role_id)) {
                list.push((*role).clone());
            }
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }
}

fn parse_id(id: &ID) -> i64 {
    id.parse().unwrap_or_default()
}

/// Roles (all, or those with the given ids) with their keys, in two queries.
pub async fn roles_with_permissions(db: &Db, ids: Option<Vec<i64>>) -> Result<Vec<Role>, sea_orm::DbErr> {
    let mut roles_q = role::Entity::find();
    let mut perms_q = role_permission::Entity::find();
    if let Some(ids) = ids {
        roles_q = roles_q.filter(role::Column::Id.is_in(ids.clone()));
        perms_q = perms_q.filter(role_permission::Column::RoleId.is_in(ids));
    }
    let roles = roles_q.all(db.conn()).await?;
    let mut keys: HashMap<i64, Vec<String>> = HashMap::new();
    for rp in perms_q.all(db.conn()).await? {
        keys.entry(rp.role_id).or_default().push(rp.permission_key);
    }
    Ok(roles
        .into_iter()
        .map(|r| {
            let mut permissions = keys.remove(&r.id).unwrap_or_default();
            permissions.sort_by_key(|k| shared::Permission::from_key(k).map_or(usize::MAX, |p| p as usize));
            Role {
                id: ID(r.id.to_string()),
                name: r.name,
                description: r.description,
                permissions,
                built_in: r.built_in,
            }
        })
        .collect())
}
