//! User accounts: registration, creation, changes, deletion, role assignment.
//!
//! Two rules hold after every change, checked inside its transaction:
//! a caller never hands out a permission key they do not hold themselves, and every key of the
//! Admin role stays held by at least one enabled account (see [`ensure_admin_keys_held`]).

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use entity::{invitation, role, role_permission, user, user_role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
};
use shared::Permission;

use crate::{
    app::Services,
    audit::{Actor, AuditBatch, Entry},
    auth::{Caller, ClientInfo, digest, password, random_secret, reset::replace_password, sessions},
    config::Registration,
    error::ApiError,
};

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
    /// Role names, e.g. `["Admin"]`.
    pub roles: Vec<String>,
}

/// How a change was asked for, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// None: the hub itself (seeding, the CLI).
    pub actor: Option<Actor>,
    pub ip: Option<String>,
    /// A word on the channel, such as "command line".
    pub via: Option<&'static str>,
}

impl Origin {
    pub fn of(caller: &Caller, client: &ClientInfo) -> Self {
        Self { actor: Some(caller.actor()), ip: client.ip.clone(), via: None }
    }
}

/// The longest page of `users`.
pub const MAX_PAGE: u64 = 200;

/// Creates an account with the named roles, as the hub (first admin, CLI) or for a caller who
/// holds every key of those roles. The password must pass the policy.
pub async fn create(
    s: &Services,
    origin: &Origin,
    new: NewUser,
    caller: Option<&Caller>,
) -> Result<user::Model, ApiError> {
    let email = shared::validation::normalize_email(&new.email)?;
    let display_name = match new.display_name.as_deref() {
        Some(name) => shared::validation::display_name(name)?,
        None => default_display_name(&email),
    };
    s.password_policy.check("password", &new.password, &[&email, &display_name]).await?;
    let hash = password::hash(new.password).await?;

    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let mut role_ids = Vec::new();
    for name in &new.roles {
        let found = role::Entity::find()
            .filter(role::Column::Name.eq(name.as_str()))
            .one(&*txn)
            .await?
            .ok_or_else(|| ApiError::bad_input("roleIds", format!("there is no role named `{name}`")))?;
        role_ids.push(found.id);
    }
    if let Some(caller) = caller {
        ensure_caller_holds(&*txn, caller, &role_ids).await?;
    }
    let account = insert_user(&*txn, email, display_name, hash).await?;
    link_roles(&*txn, account.id, &role_ids).await?;
    let detail = format!("{} with roles [{}]{}", account.email, new.roles.join(", "), via(origin));
    audit
        .record(
            &*txn,
            Entry::new("user.create", origin.actor.clone())
                .target("user", account.id)
                .detail(detail)
                .ip(origin.ip.clone()),
        )
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(account)
}

/// Self-registration, as the configured mode allows; returns the new session's tokens.
pub async fn register(
    s: &Services,
    email: &str,
    new_password: String,
    display_name: Option<String>,
    invitation_token: Option<String>,
    client: &ClientInfo,
) -> Result<sessions::Tokens, ApiError> {
    let mode = s.settings.registration;
    if mode == Registration::Closed {
        return Err(ApiError::Forbidden("registration is closed: ask an admin for an account".into()));
    }
    let email = shared::validation::normalize_email(email)?;
    s.limits.attempt(&email, client.ip.as_deref())?;
    let display_name = match display_name.as_deref() {
        Some(name) => shared::validation::display_name(name)?,
        None => default_display_name(&email),
    };
    s.password_policy.check("password", &new_password, &[&email, &display_name]).await?;
    // The invitation is checked before the costly hash (and again in the transaction).
    match (mode, &invitation_token) {
        (Registration::Invite, None) => {
            return Err(ApiError::bad_input("invitation", "registration needs an invitation"));
        }
        (_, Some(token)) => {
            usable_invitation(s.db.conn(), token, &email).await?;
        }
        (_, None) => {}
    }
    let hash = password::hash(new_password).await?;

    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let now = Utc::now();
    let invite = match &invitation_token {
        Some(token) => Some(usable_invitation(&*txn, token, &email).await?),
        None => None,
    };
    let role_id = match invite.as_ref().and_then(|i| i.role_id) {
        Some(id) => id,
        None => migration::seed::role_id(&*txn, shared::permission::USER.name)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the User role is missing")))?,
    };
    let account = insert_user(&*txn, email, display_name, hash).await?;
    link_roles(&*txn, account.id, &[role_id]).await?;
    if let Some(invite) = invite {
        let mut active = invite.into_active_model();
        active.used_at = Set(Some(now));
        active.used_by = Set(Some(account.id));
        active.update(&*txn).await?;
    }
    let (session, refresh_token) = sessions::open_session(&*txn, s, account.id, client).await?;
    audit
        .record(
            &*txn,
            Entry::new("user.register", Some(sessions::actor(&account)))
                .target("user", account.id)
                .ip(client.ip.clone()),
        )
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    sessions::tokens(s, account, session.id, refresh_token)
}

/// The unused, unexpired invitation with this token, for this email (or for anyone).
async fn usable_invitation<C: ConnectionTrait>(
    db: &C,
    token: &str,
    email: &str,
) -> Result<invitation::Model, ApiError> {
    invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(digest(token)))
        .filter(invitation::Column::UsedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
        .filter(|i| i.email.as_deref().is_none_or(|e| e == email))
        .ok_or_else(|| ApiError::bad_input("invitation", "this invitation is invalid, used or expired"))
}

/// An invitation to register: the token is shown once.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub token: String,
    pub model: invitation::Model,
}

/// Makes an invitation (for one address when `email` is set) giving `role_id` (default: User).
pub async fn invite(
    s: &Services,
    caller: &Caller,
    email: Option<&str>,
    role_id: Option<i64>,
    client: &ClientInfo,
) -> Result<NewInvitation, ApiError> {
    caller.require(Permission::UserManage)?;
    let email = email.map(shared::validation::normalize_email).transpose()?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    if let Some(id) = role_id {
        role::Entity::find_by_id(id).one(&*txn).await?.ok_or_else(|| ApiError::bad_input("roleId", "no such role"))?;
        ensure_caller_holds(&*txn, caller, &[id]).await?;
    }
    let token = random_secret();
    let now = Utc::now();
    let model = invitation::ActiveModel {
        email: Set(email.clone()),
        token_hash: Set(digest(&token)),
        role_id: Set(role_id),
        created_by: Set(Some(caller.user_id)),
        created_at: Set(now),
        expires_at: Set(now + Duration::days(7)),
        used_at: Set(None),
        used_by: Set(None),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    audit
        .record(
            &*txn,
            caller
                .audit("user.invite", client)
                .target("invitation", model.id)
                .detail(email.unwrap_or_else(|| "any address".into())),
        )
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(NewInvitation { token, model })
}

/// The invitations worth showing (unused and unexpired, or used), newest first, each with the
/// name of the role it gives.
pub async fn invitations<C: ConnectionTrait>(db: &C) -> Result<Vec<(invitation::Model, Option<String>)>, ApiError> {
    let rows = invitation::Entity::find()
        .filter(
            Condition::any()
                .add(invitation::Column::UsedAt.is_not_null())
                .add(invitation::Column::ExpiresAt.gt(Utc::now())),
        )
        .order_by_desc(invitation::Column::Id)
        .limit(500)
        .all(db)
        .await?;
    let roles: std::collections::HashMap<i64, String> =
        role::Entity::find().all(db).await?.into_iter().map(|r| (r.id, r.name)).collect();
    Ok(rows
        .into_iter()
        .map(|m| {
            let name = m.role_id.and_then(|id| roles.get(&id).cloned());
            (m, name)
        })
        .collect())
}

/// Withdraws an unused invitation: its token stops working at once. CONFLICT once used.
pub async fn revoke_invitation(s: &Services, caller: &Caller, id: i64, client: &ClientInfo) -> Result<bool, ApiError> {
    caller.require(Permission::UserManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let found = invitation::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("invitation"))?;
    if let Some(role) = found.role_id {
        // As for making one: only who could give its role.
        ensure_caller_holds(&*txn, caller, &[role]).await?;
    }
    if found.used_at.is_some() {
        return Err(ApiError::Conflict { field: None, message: "this invitation was used already".into() });
    }
    invitation::Entity::delete_by_id(id).exec(&*txn).await?;
    audit
        .record(
            &*txn,
            caller
                .audit("user.invite_revoke", client)
                .target("invitation", id)
                .detail(found.email.unwrap_or_else(|| "any address".into())),
        )
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(true)
}

/// Users whose email or display name contains `search`, by id; `after` is the last id seen.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    search: Option<&str>,
    first: u64,
    after: Option<i64>,
) -> Result<Vec<user::Model>, ApiError> {
    let mut q = user::Entity::find();
    if let Some(term) = search.map(str::trim).filter(|t| !t.is_empty()) {
        // `%` and `_` in a search are the characters themselves, not LIKE's wildcards.
        let escaped = term.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\');
        q = q.filter(
            Condition::any()
                .add(user::Column::Email.like(pattern.clone()))
                .add(user::Column::DisplayName.like(pattern)),
        );
    }
    if let Some(after) = after {
        q = q.filter(user::Column::Id.gt(after));
    }
    Ok(q.order_by_asc(user::Column::Id).limit(first).all(db).await?)
}

/// Changes a user's display name or enabled state. Disabling ends every session at once.
pub async fn update(
    s: &Services,
    caller: &Caller,
    id: i64,
    display_name: Option<String>,
    disabled: Option<bool>,
    client: &ClientInfo,
) -> Result<user::Model, ApiError> {
    let is_self = caller.user_id == id;
    // Anyone may rename themselves; everything else needs user.manage.
    if !(is_self && disabled.is_none()) {
        caller.require(Permission::UserManage)?;
    }
    let display_name = display_name.as_deref().map(shared::validation::display_name).transpose()?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let account = user::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("user"))?;
    if !is_self {
        ensure_outranks(&*txn, caller, id).await?;
    }
    let mut changes = Vec::new();
    let mut active = account.clone().into_active_model();
    if let Some(name) = display_name
        && name != account.display_name
    {
        changes.push(format!("display name `{}` -> `{name}`", account.display_name));
        active.display_name = Set(name);
    }
    if let Some(disabled) = disabled
        && disabled != account.disabled
    {
        changes.push(if disabled { "disabled".into() } else { "enabled".into() });
        active.disabled = Set(disabled);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(&*txn).await?;
    if updated.disabled && !account.disabled {
        sessions::revoke(&*txn, entity::session::Column::UserId.eq(id)).await?;
    }
    ensure_admin_keys_held(&*txn).await?;
    if !changes.is_empty() {
        audit.record(&*txn, caller.audit("user.update", client).target("user", id).detail(changes.join("; "))).await?;
    }
    s.commit_access_change(txn, audit, Some(id)).await?;
    Ok(updated)
}

/// Deletes an account; its audit entries stay (their actor shows as a deleted user).
pub async fn delete(s: &Services, caller: &Caller, id: i64, client: &ClientInfo) -> Result<bool, ApiError> {
    caller.require(Permission::UserManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let account = user::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("user"))?;
    ensure_outranks(&*txn, caller, id).await?;
    user::Entity::delete_by_id(id).exec(&*txn).await?;
    ensure_admin_keys_held(&*txn).await?;
    audit.record(&*txn, caller.audit("user.delete", client).target("user", id).detail(account.email)).await?;
    s.commit_access_change(txn, audit, Some(id)).await?;
    Ok(true)
}

/// Replaces a user's roles. The caller must hold every key of each role added or removed.
pub async fn set_roles(
    s: &Services,
    caller: &Caller,
    user_id: i64,
    role_ids: Vec<i64>,
    client: &ClientInfo,
) -> Result<user::Model, ApiError> {
    caller.require(Permission::RoleManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let account = user::Entity::find_by_id(user_id).one(&*txn).await?.ok_or(ApiError::NotFound("user"))?;
    let wanted: BTreeSet<i64> = role_ids.into_iter().collect();
    let found = role::Entity::find().filter(role::Column::Id.is_in(wanted.iter().copied())).all(&*txn).await?;
    if found.len() != wanted.len() {
        return Err(ApiError::bad_input("roleIds", "one of these roles does not exist"));
    }
    let current: BTreeSet<i64> = user_role::Entity::find()
        .filter(user_role::Column::UserId.eq(user_id))
        .all(&*txn)
        .await?
        .into_iter()
        .map(|l| l.role_id)
        .collect();
    let changed: Vec<i64> = wanted.symmetric_difference(&current).copied().collect();
    ensure_caller_holds(&*txn, caller, &changed).await?;
    user_role::Entity::delete_many().filter(user_role::Column::UserId.eq(user_id)).exec(&*txn).await?;
    link_roles(&*txn, user_id, &wanted.iter().copied().collect::<Vec<_>>()).await?;
    ensure_admin_keys_held(&*txn).await?;
    let names: Vec<&str> = found.iter().map(|r| r.name.as_str()).collect();
    audit
        .record(
            &*txn,
            caller.audit("user.set_roles", client).target("user", user_id).detail(format!(
                "{}: [{}]",
                account.email,
                names.join(", ")
            )),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(user_id)).await?;
    Ok(account)
}

/// Sets a new password for the account with this email and ends all its sessions (the CLI).
pub async fn reset_password(
    s: &Services,
    origin: &Origin,
    email: &str,
    new_password: String,
) -> Result<user::Model, ApiError> {
    let email = shared::validation::normalize_email(email)?;
    let account = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(s.db.conn())
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    s.password_policy.check("password", &new_password, &[&account.email, &account.display_name]).await?;
    let hash = password::hash(new_password).await?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let (account, _) = replace_password(&*txn, account, hash).await?;
    audit
        .record(
            &*txn,
            Entry::new("user.password_reset", origin.actor.clone())
                .target("user", account.id)
                .detail(format!("{}{}", account.email, via(origin)))
                .ip(origin.ip.clone()),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(account.id)).await?;
    Ok(account)
}

/// How many accounts hold the role with this name.
pub async fn count_with_role<C: ConnectionTrait>(db: &C, role_name: &str) -> Result<u64, ApiError> {
    let Some(role) = role::Entity::find().filter(role::Column::Name.eq(role_name)).one(db).await? else {
        return Ok(0);
    };
    Ok(user_role::Entity::find().filter(user_role::Column::RoleId.eq(role.id)).count(db).await?)
}

/// Fails with FORBIDDEN unless the caller holds every key of the given roles.
pub async fn ensure_caller_holds<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    role_ids: &[i64],
) -> Result<(), ApiError> {
    if role_ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = role_permission::Entity::find()
        .select_only()
        .column(role_permission::Column::PermissionKey)
        .filter(role_permission::Column::RoleId.is_in(role_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let keys: BTreeSet<Permission> = keys.iter().filter_map(|k| Permission::from_key(k)).collect();
    ensure_superset(caller, &keys)
}

/// Fails with FORBIDDEN unless the caller holds every key the account `user_id` holds: nobody
/// acts on (disables, deletes, signs out, looks at the sessions of) an account above them.
pub async fn ensure_outranks<C: ConnectionTrait>(db: &C, caller: &Caller, user_id: i64) -> Result<(), ApiError> {
    ensure_superset(caller, &crate::auth::caller::permissions_of(db, user_id).await?)
}

/// Fails with FORBIDDEN naming the first key in `keys` that the caller lacks.
pub fn ensure_superset(caller: &Caller, keys: &BTreeSet<Permission>) -> Result<(), ApiError> {
    match keys.iter().find(|k| !caller.has(**k)) {
        Some(missing) => Err(ApiError::Forbidden(missing.key().to_owned())),
        None => Ok(()),
    }
}

/// Fails with CONFLICT when some key of the Admin role is no longer held by an enabled account:
/// the last holder of a key can never be disabled, deleted or demoted.
///
/// On PostgreSQL the check first takes a transaction-wide advisory lock, so that two such checks
/// never run at once: two admins demoting each other at the same moment would otherwise each see
/// the other still holding the keys (READ COMMITTED) and both succeed. The second check waits for
/// the first transaction to end, then reads what it committed. SQLite's writers already take turns.
pub async fn ensure_admin_keys_held<C: ConnectionTrait>(db: &C) -> Result<(), ApiError> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({ADMIN_KEYS_LOCK})")).await?;
    }
    let held: Vec<String> = role_permission::Entity::find()
        .select_only()
        .column(role_permission::Column::PermissionKey)
        .join(sea_orm::JoinType::InnerJoin, role_permission::Relation::Role.def())
        .join(sea_orm::JoinType::InnerJoin, entity::role::Relation::UserRole.def())
        .join(sea_orm::JoinType::InnerJoin, entity::user_role::Relation::User.def())
        .filter(user::Column::Disabled.eq(false))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let missing: Vec<&str> = shared::permission::ADMIN
        .permissions
        .iter()
        .map(|p| p.key())
        .filter(|k| !held.iter().any(|h| h == k))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Conflict {
            field: None,
            message: format!(
                "no enabled account would hold {} any more; give it to another account first",
                missing.join(", ")
            ),
        })
    }
}

/// The advisory lock key of the last-holder check ("KUTA" in ASCII).
const ADMIN_KEYS_LOCK: i64 = 0x4B55_5441;

async fn insert_user<C: ConnectionTrait>(
    db: &C,
    email: String,
    display_name: String,
    hash: String,
) -> Result<user::Model, ApiError> {
    let now = Utc::now();
    user::ActiveModel {
        email: Set(email),
        display_name: Set(display_name),
        password_hash: Set(hash),
        disabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
        password_changed_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| ApiError::from_db(e, "email"))
}

async fn link_roles<C: ConnectionTrait>(db: &C, user_id: i64, role_ids: &[i64]) -> Result<(), ApiError> {
    for role_id in role_ids {
        user_role::ActiveModel { user_id: Set(user_id), role_id: Set(*role_id) }.insert(db).await?;
    }
    Ok(())
}

fn default_display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    shared::validation::display_name(local).unwrap_or_else(|_| "user".into())
}

fn via(origin: &Origin) -> String {
    origin.via.map(|v| format!(" (via {v})")).unwrap_or_default()
}
