//! Custom roles: create, change, delete. Built-in roles cannot be deleted or renamed, and the
//! Admin role always holds every key. A caller never grants a key they do not hold.

use std::collections::BTreeSet;

use chrono::Utc;
use entity::{role, role_permission, user_role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use shared::Permission;

use crate::{
    app::Services,
    audit::AuditBatch,
    auth::{Caller, ClientInfo},
    error::ApiError,
    users::{ensure_admin_keys_held, ensure_superset},
};

/// Checks a role name: 1 to 64 characters, no control characters.
fn valid_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 || shared::validation::has_hidden(name) {
        return Err(ApiError::bad_input(
            "name",
            "a role name has 1 to 64 characters and no control or invisible characters",
        ));
    }
    Ok(name.to_owned())
}

fn valid_description(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(d) if d.chars().count() > 500 || d.chars().any(|c| c.is_control() && c != '\n') => {
            Err(ApiError::bad_input("description", "a description has at most 500 characters"))
        }
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other.map(|d| d.trim().to_owned())),
    }
}

/// Parses permission keys, refusing unknown ones.
pub fn parse_keys(field: &'static str, keys: &[String]) -> Result<BTreeSet<Permission>, ApiError> {
    keys.iter()
        .map(|k| {
            Permission::from_key(k).ok_or_else(|| ApiError::bad_input(field, format!("unknown permission key `{k}`")))
        })
        .collect()
}

pub async fn create(
    s: &Services,
    caller: &Caller,
    name: &str,
    description: Option<String>,
    keys: &[String],
    client: &ClientInfo,
) -> Result<role::Model, ApiError> {
    caller.require(Permission::RoleManage)?;
    let name = valid_name(name)?;
    let description = valid_description(description)?;
    let keys = parse_keys("permissions", keys)?;
    ensure_superset(caller, &keys)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let created = role::ActiveModel {
        name: Set(name),
        description: Set(description),
        built_in: Set(false),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&*txn)
    .await
    .map_err(|e| ApiError::from_db(e, "name"))?;
    set_keys(&*txn, created.id, &keys).await?;
    audit
        .record(
            &*txn,
            caller.audit("role.create", client).target("role", created.id).detail(format!(
                "{}: [{}]",
                created.name,
                join(&keys)
            )),
        )
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(created)
}

pub async fn update(
    s: &Services,
    caller: &Caller,
    id: i64,
    name: Option<String>,
    description: Option<String>,
    keys: Option<Vec<String>>,
    client: &ClientInfo,
) -> Result<role::Model, ApiError> {
    caller.require(Permission::RoleManage)?;
    let name = name.as_deref().map(valid_name).transpose()?;
    let description = valid_description(description)?;
    let keys = keys.as_deref().map(|k| parse_keys("permissions", k)).transpose()?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let existing = role::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("role"))?;
    let mut changes = Vec::new();
    let mut active = existing.clone().into_active_model();
    if let Some(name) = name
        && name != existing.name
    {
        if existing.built_in {
            return Err(ApiError::Conflict {
                field: Some("name".into()),
                message: "a built-in role keeps its name".into(),
            });
        }
        changes.push(format!("name `{}` -> `{name}`", existing.name));
        active.name = Set(name);
    }
    if description.is_some() && description != existing.description {
        changes.push("description".into());
        active.description = Set(description);
    }
    let updated = active.update(&*txn).await.map_err(|e| ApiError::from_db(e, "name"))?;
    if let Some(keys) = keys {
        if existing.name == shared::permission::ADMIN.name {
            return Err(ApiError::Conflict {
                field: Some("permissions".into()),
                message: "the Admin role always holds every permission".into(),
            });
        }
        let current = keys_of(&*txn, id).await?;
        // Adding or removing a key the caller lacks would change more than they may.
        let changed: BTreeSet<Permission> = current.symmetric_difference(&keys).copied().collect();
        ensure_superset(caller, &changed)?;
        set_keys(&*txn, id, &keys).await?;
        changes.push(format!("permissions [{}]", join(&keys)));
    }
    ensure_admin_keys_held(&*txn).await?;
    if !changes.is_empty() {
        audit.record(&*txn, caller.audit("role.update", client).target("role", id).detail(changes.join("; "))).await?;
    }
    s.commit_access_change(txn, audit, None).await?;
    Ok(updated)
}

pub async fn delete(s: &Services, caller: &Caller, id: i64, client: &ClientInfo) -> Result<bool, ApiError> {
    caller.require(Permission::RoleManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let existing = role::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("role"))?;
    if existing.built_in {
        return Err(ApiError::Conflict {
            field: None,
            message: format!("{} is a built-in role and cannot be deleted", existing.name),
        });
    }
    let keys = keys_of(&*txn, id).await?;
    ensure_superset(caller, &keys)?;
    let holders = user_role::Entity::find().filter(user_role::Column::RoleId.eq(id)).count(&*txn).await?;
    user_role::Entity::delete_many().filter(user_role::Column::RoleId.eq(id)).exec(&*txn).await?;
    role::Entity::delete_by_id(id).exec(&*txn).await?;
    ensure_admin_keys_held(&*txn).await?;
    audit
        .record(
            &*txn,
            caller
                .audit("role.delete", client)
                .target("role", id)
                .detail(format!("{} (held by {holders} account(s))", existing.name)),
        )
        .await?;
    s.commit_access_change(txn, audit, None).await?;
    Ok(true)
}

async fn keys_of<C: ConnectionTrait>(db: &C, role_id: i64) -> Result<BTreeSet<Permission>, ApiError> {
    Ok(role_permission::Entity::find()
        .filter(role_permission::Column::RoleId.eq(role_id))
        .all(db)
        .await?
        .iter()
        .filter_map(|rp| Permission::from_key(&rp.permission_key))
        .collect())
}

async fn set_keys<C: ConnectionTrait>(db: &C, role_id: i64, keys: &BTreeSet<Permission>) -> Result<(), ApiError> {
    role_permission::Entity::delete_many().filter(role_permission::Column::RoleId.eq(role_id)).exec(db).await?;
    for key in keys {
        role_permission::ActiveModel { role_id: Set(role_id), permission_key: Set(key.key().to_owned()) }
            .insert(db)
            .await?;
    }
    Ok(())
}

fn join(keys: &BTreeSet<Permission>) -> String {
    keys.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ")
}
