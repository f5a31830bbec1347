//! The `User` type and the loader that fetches users and their roles in batches.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{ComplexObject, Context, ID, Object, SimpleObject, dataloader::DataLoader};
use shared::Permission as Key;

use super::{
    guard::{Need, SignedIn, caller, client, services},
    servers::Grantee,
};
use chrono::{DateTime, Utc};
use entity::{invitation, role, role_permission, user, user_role};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    auth::sessions,
    db::Db,
    error::{ApiError, GqlResult, IntoGql},
    users,
};

/// A role with its permission keys.
#[derive(SimpleObject, Clone, Debug)]
pub struct Role {
    /// The role's id.
    pub id: ID,
    /// Admin, Moderator and User are seeded; more can be made.
    pub name: String,
    /// What the role is for; null when it has no description.
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
    /// The account's id.
    pub id: ID,
    /// The address the account signs in with.
    pub email: String,
    /// The name shown for the account.
    pub display_name: String,
    /// A disabled account cannot sign in, and its sessions have ended.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When it last signed in with `login`; null when it never has.
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

    /// The account's sessions that still work, the most recently used first: one's own, or
    /// with `user.manage` those of an account holding no key the caller lacks.
    async fn sessions(&self, ctx: &Context<'_>) -> GqlResult<Vec<Session>> {
        let (s, me) = (services(ctx)?, caller(ctx)?);
        if me.user_id != self.raw_id {
            me.require(Key::UserManage).gql()?;
            // Not the devices and addresses of an account holding keys the caller lacks.
            users::ensure_outranks(s.db.conn(), me, self.raw_id).await.gql()?;
        }
        let rows = sessions::live_of(s, self.raw_id).await.gql()?;
        Ok(rows
            .into_iter()
            .map(|m| Session {
                id: ID(m.id.to_string()),
                current: m.id == me.session_id,
                created_at: m.created_at,
                last_used_at: m.last_used_at,
                expires_at: m.expires_at,
                ip: m.ip,
                user_agent: m.user_agent,
            })
            .collect())
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

/// Parses an ID argument into a row id; BAD_USER_INPUT naming `field` when it is not one.
pub fn parse_arg(field: &'static str, id: &ID) -> Result<i64, ApiError> {
    id.parse::<i64>().map_err(|_| ApiError::bad_input(field, "not a valid id"))
}

/// One signed-in device: a refresh-token family.
#[derive(SimpleObject)]
pub struct Session {
    /// The session's id (see `endSession`).
    id: ID,
    /// The session of the access token that asks.
    current: bool,
    /// When it began: its sign-in.
    created_at: DateTime<Utc>,
    /// Its last sign-in or token refresh.
    last_used_at: DateTime<Utc>,
    /// It ends then, however it is used.
    expires_at: DateTime<Utc>,
    /// The client's address at sign-in; null when unknown.
    ip: Option<String>,
    /// The client's User-Agent header at sign-in (at most 512 characters); null when it sent none.
    user_agent: Option<String>,
}

/// An invitation to register.
#[derive(SimpleObject)]
pub struct Invitation {
    /// The invitation's id.
    id: ID,
    /// Give it to the person invited: `register(input: { ..., invitation: token })`. Only in
    /// `createInvitation`'s answer: the hub keeps a hash.
    token: Option<String>,
    /// Only this address may use it, when set.
    email: Option<String>,
    /// The role the new account gets (null: User, or the role was deleted).
    role_name: Option<String>,
    /// When it was made.
    created_at: DateTime<Utc>,
    /// It cannot be used after this: 7 days after it was made.
    expires_at: DateTime<Utc>,
    /// When it was used; null while unused.
    used_at: Option<DateTime<Utc>>,
    /// The account it made (null while unused, or when that account was deleted).
    used_by: Option<Grantee>,
}

impl Invitation {
    fn of(m: invitation::Model, token: Option<String>, role_name: Option<String>, used_by: Option<Grantee>) -> Self {
        Self {
            id: ID(m.id.to_string()),
            token,
            email: m.email,
            role_name,
            created_at: m.created_at,
            expires_at: m.expires_at,
            used_at: m.used_at,
            used_by,
        }
    }
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// Accounts whose email or display name contains `search`, by id. Page with `first` (1 to
    /// 200, default 50) and `after` (the last id seen). Needs `user.read`.
    #[graphql(guard = "Need(Key::UserRead)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Text the email or display name contains (at most 254 characters); null: all.")]
        search: Option<String>,
        #[graphql(desc = "How many accounts, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(desc = "The id of the last account seen; null: from the first.")] after: Option<String>,
    ) -> GqlResult<Vec<User>> {
        let s = services(ctx)?;
        let first = first.unwrap_or(50);
        if !(1..=users::MAX_PAGE as i32).contains(&first) {
            return Err(ApiError::bad_input("first", "first must be between 1 and 200")).gql();
        }
        if search.as_ref().is_some_and(|t| t.chars().count() > 254) {
            return Err(ApiError::bad_input("search", "a search has at most 254 characters")).gql();
        }
        let after = after.map(|a| parse_arg("after", &ID(a))).transpose().gql()?;
        let rows = users::list(s.db.conn(), search.as_deref(), first as u64, after).await.gql()?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// One account: one's own, or any with `user.read`.
    #[graphql(guard = "SignedIn")]
    async fn user(&self, ctx: &Context<'_>, #[graphql(desc = "The account's id.")] id: ID) -> GqlResult<Option<User>> {
        let me = caller(ctx)?;
        let id = parse_arg("id", &id).gql()?;
        if id != me.user_id {
            me.require(Key::UserRead).gql()?;
        }
        user_by_id(ctx, id).await
    }

    /// Every invitation that is unused and unexpired or was used, newest first (at most 500).
    /// Needs `user.manage`.
    #[graphql(guard = "Need(Key::UserManage)")]
    async fn invitations(&self, ctx: &Context<'_>) -> GqlResult<Vec<Invitation>> {
        let s = services(ctx)?;
        let rows = users::invitations(s.db.conn()).await.gql()?;
        let mut out = Vec::with_capacity(rows.len());
        for (m, role_name) in rows {
            let used_by = match m.used_by {
                Some(id) => user_by_id(ctx, id).await?.map(Grantee::from),
                None => None,
            };
            out.push(Invitation::of(m, None, role_name, used_by));
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates an account with the given roles (each of whose keys the caller must hold).
    /// Needs `user.manage`.
    #[graphql(guard = "Need(Key::UserManage)")]
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The address the account signs in with; one account per address.")] email: String,
        #[graphql(desc = "Its password; it must pass the hub's password policy.")] password: String,
        #[graphql(desc = "The name shown for it (1 to 64 characters); default: the email's part before the @.")]
        display_name: Option<String>,
        #[graphql(desc = "The roles it gets; null: none.")] role_ids: Option<Vec<ID>>,
    ) -> GqlResult<User> {
        let (s, me, client) = (services(ctx)?, caller(ctx)?, client(ctx));
        let ids: Vec<i64> =
            role_ids.unwrap_or_default().iter().map(|id| parse_arg("roleIds", id)).collect::<Result<_, _>>().gql()?;
        let names = role_names(s, &ids).await.gql()?;
        let new = users::NewUser { email, password, display_name, roles: names };
        let created = users::create(s, &users::Origin::of(me, client), new, Some(me)).await.gql()?;
        Ok(created.into())
    }

    /// Renames an account (anyone, themselves) or disables it (needs `user.manage`; ends its
    /// sessions at once).
    #[graphql(guard = "SignedIn")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's id.")] id: ID,
        #[graphql(desc = "The new display name (1 to 64 characters); absent: unchanged.")] display_name: Option<String>,
        #[graphql(desc = "True disables the account, false enables it; absent: unchanged.")] disabled: Option<bool>,
    ) -> GqlResult<User> {
        let id = parse_arg("id", &id).gql()?;
        users::update(services(ctx)?, caller(ctx)?, id, display_name, disabled, client(ctx)).await.map(User::from).gql()
    }

    /// Deletes an account; its audit entries stay. Needs `user.manage`.
    #[graphql(guard = "Need(Key::UserManage)")]
    async fn delete_user(&self, ctx: &Context<'_>, #[graphql(desc = "The account's id.")] id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        users::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }

    /// Replaces a user's roles. Needs `role.manage` and every key of each role added or removed.
    #[graphql(guard = "Need(Key::RoleManage)")]
    async fn set_user_roles(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's id.")] user_id: ID,
        #[graphql(desc = "Every role the account holds from now on.")] role_ids: Vec<ID>,
    ) -> GqlResult<User> {
        let user_id = parse_arg("userId", &user_id).gql()?;
        let ids: Vec<i64> = role_ids.iter().map(|id| parse_arg("roleIds", id)).collect::<Result<_, _>>().gql()?;
        users::set_roles(services(ctx)?, caller(ctx)?, user_id, ids, client(ctx)).await.map(User::from).gql()
    }

    /// Makes an invitation to register (valid 7 days), for one address when `email` is given,
    /// giving `roleId` (default: User). Needs `user.manage`.
    #[graphql(guard = "Need(Key::UserManage)")]
    async fn create_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this address may use it; null: any address.")] email: Option<String>,
        #[graphql(desc = "The role the new account gets; null: User.")] role_id: Option<ID>,
    ) -> GqlResult<Invitation> {
        let role_id = role_id.map(|id| parse_arg("roleId", &id)).transpose().gql()?;
        let s = services(ctx)?;
        let inv = users::invite(s, caller(ctx)?, email.as_deref(), role_id, client(ctx)).await.gql()?;
        let role_name = match inv.model.role_id {
            Some(id) => role_names(s, &[id]).await.gql()?.pop(),
            None => None,
        };
        Ok(Invitation::of(inv.model, Some(inv.token), role_name, None))
    }

    /// Withdraws an unused invitation (CONFLICT once used). Needs `user.manage`.
    #[graphql(guard = "Need(Key::UserManage)")]
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's id.")] id: ID,
    ) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        users::revoke_invitation(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }

    /// Ends one session: one of the caller's own, or with `user.manage` one of an account holding
    /// no key the caller lacks.
    #[graphql(guard = "SignedIn")]
    async fn end_session(&self, ctx: &Context<'_>, #[graphql(desc = "The session's id.")] id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        sessions::end_one(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }

    /// Ends every session of an account (its open pages are signed out); returns how many.
    /// Needs `user.manage` and every key the account holds (for oneself, `logoutAll`).
    #[graphql(guard = "Need(Key::UserManage)")]
    async fn end_user_sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's id.")] user_id: ID,
    ) -> GqlResult<i32> {
        let id = parse_arg("userId", &user_id).gql()?;
        let n = sessions::end_all_of(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

async fn role_names(s: &crate::app::Services, ids: &[i64]) -> Result<Vec<String>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let roles = role::Entity::find().filter(role::Column::Id.is_in(ids.iter().copied())).all(s.db.conn()).await?;
    if roles.len() != ids.len() {
        return Err(ApiError::bad_input("roleIds", "one of these roles does not exist"));
    }
    Ok(roles.into_iter().map(|r| r.name).collect())
}
