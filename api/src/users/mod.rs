//! User accounts: creating them and setting their passwords.
//!
//! The GraphQL mutations for users arrive with the accounts work; the first admin and the CLI's
//! `admin` commands use these functions now.

use chrono::Utc;
use entity::{role, session, user, user_role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
    sea_query::Expr,
};

use crate::{
    audit::{Actor, AuditBatch, Entry},
    auth::password,
    db::Db,
    error::ApiError,
    events::{EventBus, HubEvent},
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

/// Creates an account with the given roles; the email must be free.
pub async fn create(db: &Db, bus: &dyn EventBus, origin: &Origin, new: NewUser) -> Result<user::Model, ApiError> {
    let email = shared::validation::normalize_email(&new.email)?;
    shared::validation::password_length("password", &new.password, shared::validation::PASSWORD_MIN_CHARS)?;
    let display_name = match new.display_name.as_deref() {
        Some(name) => shared::validation::display_name(name)?,
        None => default_display_name(&email),
    };
    let hash = password::hash(new.password).await?;

    let mut audit = AuditBatch::default();
    let txn = db.write().await?;
    let mut role_ids = Vec::new();
    for name in &new.roles {
        let found = role::Entity::find()
            .filter(role::Column::Name.eq(name.as_str()))
            .one(&*txn)
            .await?
            .ok_or_else(|| ApiError::bad_input("roles", format!("there is no role named `{name}`")))?;
        role_ids.push(found.id);
    }
    let now = Utc::now();
    let account = user::ActiveModel {
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
    .insert(&*txn)
    .await
    .map_err(|e| ApiError::from_db(e, "email"))?;
    for role_id in role_ids {
        user_role::ActiveModel { user_id: Set(account.id), role_id: Set(role_id) }.insert(&*txn).await?;
    }
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
    txn.commit().await?;
    audit.publish(bus);
    Ok(account)
}

/// Sets a new password for the account with this email and ends all its sessions.
pub async fn reset_password(
    db: &Db,
    bus: &dyn EventBus,
    origin: &Origin,
    email: &str,
    new_password: String,
) -> Result<user::Model, ApiError> {
    let email = shared::validation::normalize_email(email)?;
    shared::validation::password_length("password", &new_password, shared::validation::PASSWORD_MIN_CHARS)?;
    let hash = password::hash(new_password).await?;

    let mut audit = AuditBatch::default();
    let txn = db.write().await?;
    let account = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&*txn)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let now = Utc::now();
    let mut active = account.into_active_model();
    active.password_hash = Set(hash);
    active.password_changed_at = Set(now);
    active.updated_at = Set(now);
    let account = active.update(&*txn).await?;
    end_sessions(&*txn, account.id).await?;
    audit
        .record(
            &*txn,
            Entry::new("user.password_reset", origin.actor.clone())
                .target("user", account.id)
                .detail(format!("{}{}", account.email, via(origin)))
                .ip(origin.ip.clone()),
        )
        .await?;
    txn.commit().await?;
    audit.publish(bus);
    bus.publish(HubEvent::AccessChanged { user_id: Some(account.id) });
    Ok(account)
}

/// Revokes every live session of a user.
pub async fn end_sessions<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<u64, ApiError> {
    let res = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// How many accounts hold the role with this name.
pub async fn count_with_role<C: ConnectionTrait>(db: &C, role_name: &str) -> Result<u64, ApiError> {
    let Some(role) = role::Entity::find().filter(role::Column::Name.eq(role_name)).one(db).await? else {
        return Ok(0);
    };
    Ok(user_role::Entity::find().filter(user_role::Column::RoleId.eq(role.id)).count(db).await?)
}

fn default_display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    shared::validation::display_name(local).unwrap_or_else(|_| "user".into())
}

fn via(origin: &Origin) -> String {
    origin.via.map(|v| format!(" (via {v})")).unwrap_or_default()
}
