//! Who may do what on which game server: a global key, or a per-server grant (like a panel's
//! subusers). Every server operation asks [`require`]; lists show only [`visible`] servers.

use std::collections::BTreeSet;

use chrono::Utc;
use entity::{game_server, server_grant, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use shared::Permission;

use crate::{
    app::Services,
    audit::AuditBatch,
    auth::{Caller, ClientInfo, Who},
    error::ApiError,
    users::ensure_superset,
};

/// The server-scoped keys the caller holds on a server: their global ones and their grants.
pub async fn keys_on<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    server_id: i64,
) -> Result<BTreeSet<Permission>, ApiError> {
    let mut keys: BTreeSet<Permission> = caller.permissions.iter().copied().filter(|p| p.is_server_scoped()).collect();
    let granted: Vec<String> = server_grant::Entity::find()
        .select_only()
        .column(server_grant::Column::PermissionKey)
        .filter(server_grant::Column::ServerId.eq(server_id))
        .filter(server_grant::Column::UserId.eq(caller.user_id))
        .into_tuple()
        .all(db)
        .await?;
    keys.extend(granted.iter().filter_map(|k| Permission::from_key(k)));
    Ok(keys)
}

/// Loads a server the caller may act on with `key`. A server the caller cannot even see is
/// NOT_FOUND (its existence is not revealed); one they see but may not act on is FORBIDDEN.
pub async fn require<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    server_id: i64,
    key: Permission,
) -> Result<game_server::Model, ApiError> {
    let keys = keys_on(db, caller, server_id).await?;
    if !keys.contains(&Permission::ServerRead) {
        return Err(ApiError::NotFound("server"));
    }
    let server = game_server::Entity::find_by_id(server_id).one(db).await?.ok_or(ApiError::NotFound("server"))?;
    if !keys.contains(&key) {
        return Err(ApiError::Forbidden(key.key().to_owned()));
    }
    Ok(server)
}

/// The servers the caller may see: all with global `server.read`, else those granted to them.
pub async fn visible<C: ConnectionTrait>(db: &C, caller: &Caller) -> Result<Vec<game_server::Model>, ApiError> {
    let mut q = game_server::Entity::find();
    if !caller.has(Permission::ServerRead) {
        let ids: Vec<i64> = server_grant::Entity::find()
            .select_only()
            .column(server_grant::Column::ServerId)
            .filter(server_grant::Column::UserId.eq(caller.user_id))
            .filter(server_grant::Column::PermissionKey.eq(Permission::ServerRead.key()))
            .into_tuple()
            .all(db)
            .await?;
        q = q.filter(game_server::Column::Id.is_in(ids));
    }
    Ok(q.order_by_asc(game_server::Column::Name).all(db).await?)
}

/// Every server the caller may see with the server keys they hold on it (global and granted),
/// by id: what a client needs to know that its lists and buttons are out of date.
pub async fn everything_of<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
) -> Result<Vec<(i64, BTreeSet<Permission>)>, ApiError> {
    let global: BTreeSet<Permission> = caller.permissions.iter().copied().filter(|p| p.is_server_scoped()).collect();
    let granted: Vec<(i64, String)> = server_grant::Entity::find()
        .select_only()
        .column(server_grant::Column::ServerId)
        .column(server_grant::Column::PermissionKey)
        .filter(server_grant::Column::UserId.eq(caller.user_id))
        .into_tuple()
        .all(db)
        .await?;
    let mut out: Vec<(i64, BTreeSet<Permission>)> =
        visible(db, caller).await?.into_iter().map(|server| (server.id, global.clone())).collect();
    out.sort_by_key(|(id, _)| *id);
    for (server_id, key) in granted {
        if let (Ok(i), Some(key)) = (out.binary_search_by_key(&server_id, |(id, _)| *id), Permission::from_key(&key)) {
            out[i].1.insert(key);
        }
    }
    Ok(out)
}

/// Gives `user_id` exactly these server keys on a server (server.read comes with any grant).
/// The caller needs `server.grant` there and every key they add or take away: a grant never
/// removes a key the caller does not hold.
pub async fn grant(
    s: &Services,
    caller: &Caller,
    server_id: i64,
    user_id: i64,
    keys: &[String],
    client: &ClientInfo,
) -> Result<bool, ApiError> {
    let mut wanted = crate::roles::parse_keys("permissions", keys)?;
    if let Some(bad) = wanted.iter().find(|k| !k.is_server_scoped()) {
        return Err(ApiError::bad_input("permissions", format!("`{bad}` is not a per-server key")));
    }
    if wanted.is_empty() {
        return Err(ApiError::bad_input("permissions", "give at least one key, or use revokeServerAccess"));
    }
    wanted.insert(Permission::ServerRead);
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    require(&*txn, caller, server_id, Permission::ServerGrant).await?;
    let target = user::Entity::find_by_id(user_id)
        .one(&*txn)
        .await?
        .ok_or_else(|| ApiError::bad_input("userId", "no such user"))?;
    let current = granted(&*txn, server_id, user_id).await?;
    ensure_holds_changes(&*txn, caller, server_id, wanted.symmetric_difference(&current).copied().collect()).await?;
    server_grant::Entity::delete_many()
        .filter(server_grant::Column::ServerId.eq(server_id))
        .filter(server_grant::Column::UserId.eq(user_id))
        .exec(&*txn)
        .await?;
    let now = Utc::now();
    for key in &wanted {
        server_grant::ActiveModel {
            server_id: Set(server_id),
            user_id: Set(user_id),
            permission_key: Set(key.key().to_owned()),
            granted_by: Set(Some(caller.user_id)),
            created_at: Set(now),
        }
        .insert(&*txn)
        .await?;
    }
    let listed: Vec<&str> = wanted.iter().map(|k| k.key()).collect();
    audit
        .record(
            &*txn,
            caller.audit("server.grant", client).target("server", server_id).detail(format!(
                "{}: [{}]",
                target.email,
                listed.join(", ")
            )),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(user_id)).await?;
    Ok(true)
}

/// Takes every grant of `user_id` on a server away. The caller needs `server.grant` there.
pub async fn revoke(
    s: &Services,
    caller: &Caller,
    server_id: i64,
    user_id: i64,
    client: &ClientInfo,
) -> Result<bool, ApiError> {
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    require(&*txn, caller, server_id, Permission::ServerGrant).await?;
    let current = granted(&*txn, server_id, user_id).await?;
    ensure_holds_changes(&*txn, caller, server_id, current).await?;
    let gone = server_grant::Entity::delete_many()
        .filter(server_grant::Column::ServerId.eq(server_id))
        .filter(server_grant::Column::UserId.eq(user_id))
        .exec(&*txn)
        .await?
        .rows_affected;
    audit
        .record(
            &*txn,
            caller
                .audit("server.revoke", client)
                .target("server", server_id)
                .detail(format!("user {user_id}: {gone} key(s) removed")),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(user_id)).await?;
    Ok(gone > 0)
}

/// Who holds grants on a server, with their keys, by user id. The caller needs `server.grant`
/// there: a grant list tells who else works on the server.
pub async fn grants<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    server_id: i64,
) -> Result<Vec<(user::Model, Vec<String>)>, ApiError> {
    require(db, caller, server_id, Permission::ServerGrant).await?;
    let rows = server_grant::Entity::find()
        .filter(server_grant::Column::ServerId.eq(server_id))
        .order_by_asc(server_grant::Column::UserId)
        .order_by_asc(server_grant::Column::PermissionKey)
        .find_also_related(user::Entity)
        .all(db)
        .await?;
    let mut out: Vec<(user::Model, Vec<String>)> = Vec::new();
    for (grant, holder) in rows {
        let Some(holder) = holder else { continue };
        match out.last_mut() {
            Some((last, keys)) if last.id == holder.id => keys.push(grant.permission_key),
            _ => out.push((holder, vec![grant.permission_key])),
        }
    }
    Ok(out)
}

/// The keys a user is granted on a server.
async fn granted<C: ConnectionTrait>(db: &C, server_id: i64, user_id: i64) -> Result<BTreeSet<Permission>, ApiError> {
    let keys: Vec<String> = server_grant::Entity::find()
        .select_only()
        .column(server_grant::Column::PermissionKey)
        .filter(server_grant::Column::ServerId.eq(server_id))
        .filter(server_grant::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(keys.iter().filter_map(|k| Permission::from_key(k)).collect())
}

/// Fails with FORBIDDEN unless the caller holds on the server every key it would add or remove.
async fn ensure_holds_changes<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    server_id: i64,
    changes: BTreeSet<Permission>,
) -> Result<(), ApiError> {
    let held = keys_on(db, caller, server_id).await?;
    let me = Caller::from(Who { permissions: held, ..Who::clone(caller) });
    ensure_superset(&me, &changes)
}
