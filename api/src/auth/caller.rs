//! The authenticated caller of a request or subscription, and how it is found from a token.

use std::{collections::BTreeSet, ops::Deref, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{role_permission, session, user, user_role};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use shared::Permission;

use crate::{
    app::Services,
    audit::{Actor, Entry},
    error::ApiError,
};

/// A signed-in user, as resolved for one request or one WebSocket connection. One `Arc`: the
/// requests and sockets of a session, and every subscription of a socket, share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(Arc<Who>);

/// What a [`Caller`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub user_id: i64,
    pub session_id: i64,
    pub email: String,
    /// The union of the keys of the user's roles.
    pub permissions: BTreeSet<Permission>,
    /// When the session ends at the latest (its absolute lifetime).
    pub session_expires_at: DateTime<Utc>,
}

impl Deref for Caller {
    type Target = Who;
    fn deref(&self) -> &Who {
        &self.0
    }
}

impl From<Who> for Caller {
    fn from(who: Who) -> Self {
        Self(Arc::new(who))
    }
}

impl Caller {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// Fails with FORBIDDEN unless the caller holds the key.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.has(permission) { Ok(()) } else { Err(ApiError::Forbidden(permission.key().to_owned())) }
    }

    /// The caller as an audit actor.
    pub fn actor(&self) -> Actor {
        Actor { id: self.user_id, email: self.email.clone() }
    }

    /// An audit entry of `action` done by the caller from `client`.
    pub fn audit(&self, action: &'static str, client: &super::ClientInfo) -> Entry {
        Entry::new(action, Some(self.actor())).ip(client.ip.clone())
    }
}

const INVALID: ApiError = ApiError::Unauthenticated("the access token is invalid or expired");

/// Resolves a bearer token into a caller: the signature and claims, then the session (not
/// revoked, not expired) and the account (exists, enabled), then its permissions. The last three
/// come from a cache that every change of access invalidates.
pub async fn authenticate(s: &Services, token: &str) -> Result<Caller, ApiError> {
    authenticate_until(s, token).await.map(|(caller, _)| caller)
}

/// Like [`authenticate`], with the moment the token expires.
pub async fn authenticate_until(s: &Services, token: &str) -> Result<(Caller, DateTime<Utc>), ApiError> {
    let claims = s.keys.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "access token refused");
        INVALID
    })?;
    let user_id: i64 = claims.sub.parse().map_err(|_| INVALID)?;
    let expires = i64::try_from(claims.exp).ok().and_then(|t| DateTime::from_timestamp(t, 0)).ok_or(INVALID)?;
    Ok((current(s, user_id, claims.sid).await?, expires))
}

/// The caller of a session as it is now (from the cache, or loaded and cached): fails once the
/// session has ended or the account is disabled.
pub async fn current(s: &Services, user_id: i64, session_id: i64) -> Result<Caller, ApiError> {
    let cached = move |s: &Services| {
        s.cache.get(session_id).filter(|caller| caller.user_id == user_id && caller.session_expires_at > Utc::now())
    };
    if let Some(caller) = cached(s) {
        return Ok(caller);
    }
    // A task of its own waits for the session's turn and loads: the turn is never held by a
    // request that nobody polls (a socket busy writing to a slow client, say).
    let s = s.clone();
    let loading = tokio::spawn(async move {
        let _turn = s.cache.turn(session_id).await;
        // Loaded meanwhile by whoever had the turn before.
        if let Some(caller) = cached(&s) {
            return Ok(caller);
        }
        let epoch = s.cache.epoch();
        let caller = Box::pin(load(s.db.conn(), user_id, session_id)).await?;
        s.cache.insert(epoch, caller.clone());
        Ok(caller)
    });
    loading.await.map_err(ApiError::internal)?
}

/// Loads a caller from the store: the live session, the enabled account, its permissions.
pub async fn load<C: ConnectionTrait>(db: &C, user_id: i64, session_id: i64) -> Result<Caller, ApiError> {
    let now = Utc::now();
    let live_session = session::Entity::find_by_id(session_id)
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .one(db)
        .await?;
    let Some(live_session) = live_session else {
        return Err(INVALID);
    };
    let account = user::Entity::find_by_id(user_id).one(db).await?.ok_or(INVALID)?;
    if account.disabled {
        return Err(ApiError::Unauthenticated("this account is disabled"));
    }
    Ok(Caller::from(Who {
        user_id,
        session_id,
        email: account.email,
        permissions: permissions_of(db, user_id).await?,
        session_expires_at: live_session.expires_at,
    }))
}

/// The union of the permission keys of a user's roles.
pub async fn permissions_of<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<BTreeSet<Permission>, ApiError> {
    let role_ids: Vec<i64> = user_role::Entity::find()
        .select_only()
        .column(user_role::Column::RoleId)
        .filter(user_role::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    if role_ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let keys: Vec<String> = role_permission::Entity::find()
        .select_only()
        .column(role_permission::Column::PermissionKey)
        .filter(role_permission::Column::RoleId.is_in(role_ids))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    Ok(keys.iter().filter_map(|k| Permission::from_key(k)).collect())
}
