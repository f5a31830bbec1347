//! Sessions: sign-in, refresh-token rotation with theft detection, sign-out.
//!
//! A session is one refresh-token family. Each refresh replaces the token; the old one is kept
//! (hashed) in `rotated_tokens`, and presenting it again revokes the whole session: whoever holds
//! it stole it, or the owner did and the thief is using the new one.

use chrono::{DateTime, Duration, Utc};
use entity::{rotated_token, session, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    Set,
    sea_query::{Expr, IntoCondition},
};
use shared::Suspicion;

use super::{digest, password, random_secret};
use crate::{
    app::Services,
    audit::{Actor, AuditBatch, Entry, Outcome},
    error::ApiError,
};

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A new access token with the refresh token of its session.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    /// Opaque; only its SHA-256 is stored.
    pub refresh_token: String,
    pub user: user::Model,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// The absolute end, however the session is used.
    pub lifetime: Duration,
    /// A session unused this long ends.
    pub idle: Duration,
    /// After a rotation, the replaced refresh token is answered this long (a retry whose answer
    /// was lost) instead of revoking the session as stolen.
    pub reuse_grace: Duration,
}

const BAD_CREDENTIALS: ApiError = ApiError::Unauthenticated("invalid email or password");
const BAD_REFRESH: ApiError = ApiError::Unauthenticated("the refresh token is invalid or expired; sign in again");

pub fn actor(u: &user::Model) -> Actor {
    Actor { id: u.id, email: u.email.clone() }
}

/// Checks an email and password; on success opens a session and returns its tokens.
/// Unknown emails and wrong passwords give the same answer in about the same time, and every
/// failure counts against the address's and the account's limits (see `auth::limits`).
pub async fn login(
    s: &Services,
    email: &str,
    password_attempt: String,
    client: &ClientInfo,
) -> Result<Tokens, ApiError> {
    let email = shared::validation::normalize_email(email)?;
    if password_attempt.chars().count() > shared::validation::PASSWORD_MAX_CHARS {
        return Err(ApiError::bad_input("password", "a password has at most 256 characters"));
    }
    let ip = client.ip.as_deref();
    if let Err(refused) = s.limits.before(&email, ip) {
        s.alerts.suspicious(Suspicion::LoginFailures, ip);
        return Err(refused);
    }
    let checked = async {
        let account = user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(s.db.conn()).await?;
        let ok = password::verify(password_attempt, account.as_ref().map(|u| u.password_hash.clone())).await?;
        Ok::<_, ApiError>((account, ok))
    }
    .await;
    let (account, ok) = match checked {
        Ok(found) => found,
        Err(e) => {
            s.limits.succeeded(&email, ip); // not a failed guess: the hub could not check it
            return Err(e);
        }
    };
    if ok && account.as_ref().is_some_and(|a| !a.disabled) {
        s.limits.succeeded(&email, ip);
    }

    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let result = match account {
        Some(account) if ok && !account.disabled => {
            let mut active = account.into_active_model();
            active.last_login_at = Set(Some(Utc::now()));
            let account = active.update(&*txn).await?;
            let (session, refresh_token) = open_session(&*txn, s, account.id, client).await?;
            audit
                .record(
                    &*txn,
                    Entry::new("auth.login", Some(actor(&account))).target("session", session.id).ip(client.ip.clone()),
                )
                .await?;
            tokens(s, account, session.id, refresh_token)
        }
        other => {
            let why = match &other {
                None => "unknown email",
                Some(u) if u.disabled && ok => "account disabled",
                Some(_) => "wrong password",
            };
            // Counted before the entry is written: a failing database must not make guesses free.
            let refusal = s.limits.failed(&email).unwrap_or(BAD_CREDENTIALS);
            s.alerts.suspicious(Suspicion::LoginFailures, ip);
            let entry = Entry::new("auth.login_failed", other.as_ref().map(actor))
                .outcome(Outcome::Failure)
                .detail(format!("{why} for {email}"))
                .ip(client.ip.clone());
            audit.record(&*txn, entry).await?;
            Err(refusal)
        }
    };
    audit.finish(txn, s.bus.as_ref()).await?;
    result
}

/// Opens a session for a user inside the caller's transaction; returns it with its refresh token.
pub async fn open_session<C: ConnectionTrait>(
    txn: &C,
    s: &Services,
    user_id: i64,
    client: &ClientInfo,
) -> Result<(session::Model, String), ApiError> {
    let now = Utc::now();
    let refresh_token = random_secret();
    let session = session::ActiveModel {
        user_id: Set(user_id),
        refresh_token_hash: Set(digest(&refresh_token)),
        previous_token_hash: Set(None),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now + s.session_policy.lifetime),
        revoked_at: Set(None),
        ip: Set(client.ip.clone()),
        user_agent: Set(client.user_agent.as_ref().map(|ua| ua.chars().take(512).collect())),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok((session, refresh_token))
}

/// Signs an access token for a session.
pub fn tokens(s: &Services, user: user::Model, session_id: i64, refresh_token: String) -> Result<Tokens, ApiError> {
    let (access_token, expires) = s.keys.issue(user.id, session_id).map_err(ApiError::internal)?;
    Ok(Tokens { access_token, access_token_expires_at: expires, refresh_token, user })
}

/// Trades a refresh token for new tokens. The old refresh token stops working; presenting it
/// again revokes the session, unless it is the token the session's current one replaced and that
/// rotation is younger than the policy's `reuse_grace`: then it is a retry whose answer was lost
/// (a browser reloaded or closed mid-refresh keeps the old cookie), and it is answered like the
/// first time (a new token; the lost one is retired).
pub async fn refresh(s: &Services, refresh_token: &str, client: &ClientInfo) -> Result<Tokens, ApiError> {
    if refresh_token.len() > 256 {
        return Err(BAD_REFRESH);
    }
    let hash = digest(refresh_token);
    let now = Utc::now();
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let current = match live_session(&*txn, &hash).await? {
        Some(current) => current,
        None => {
            let rotated = rotated_token::Entity::find_by_id(hash.as_str()).one(&*txn).await?;
            let Some(rotated) = rotated else {
                return Err(BAD_REFRESH);
            };
            let retried = match session::Entity::find_by_id(rotated.session_id).one(&*txn).await? {
                Some(sess)
                    if sess.revoked_at.is_none()
                        && sess.previous_token_hash.as_deref() == Some(hash.as_str())
                        && now - rotated.rotated_at < s.session_policy.reuse_grace =>
                {
                    Some(sess)
                }
                _ => None,
            };
            match retried {
                Some(sess) => sess,
                None => {
                    // A rotated token presented again: theft.
                    let revoked = revoke(&*txn, session::Column::Id.eq(rotated.session_id)).await?;
                    let owner = match session::Entity::find_by_id(rotated.session_id).one(&*txn).await? {
                        Some(sess) => user::Entity::find_by_id(sess.user_id).one(&*txn).await?,
                        None => None,
                    };
                    audit
                        .record(
                            &*txn,
                            Entry::new("auth.refresh_reuse", owner.as_ref().map(actor))
                                .target("session", rotated.session_id)
                                .outcome(Outcome::Denied)
                                .detail(if revoked > 0 {
                                    "a rotated refresh token was presented again; the session is revoked"
                                } else {
                                    "a rotated refresh token of an ended session was presented again"
                                })
                                .ip(client.ip.clone()),
                        )
                        .await?;
                    audit.finish(txn, s.bus.as_ref()).await?;
                    s.alerts.suspicious(Suspicion::RefreshReuse, client.ip.as_deref());
                    // Only a session that just ended changes anyone's access (a replay of a
                    // token of an ended session must not make every open subscription check
                    // again).
                    if revoked > 0 {
                        s.access_changed(owner.map(|u| u.id));
                    }
                    return Err(BAD_REFRESH);
                }
            }
        }
    };
    let account = user::Entity::find_by_id(current.user_id).one(&*txn).await?.ok_or(BAD_REFRESH)?;
    let idle_end = current.last_used_at + s.session_policy.idle;
    if current.expires_at <= now || idle_end <= now || account.disabled {
        revoke(&*txn, session::Column::Id.eq(current.id)).await?;
        txn.commit().await?;
        s.access_changed(Some(account.id));
        return Err(BAD_REFRESH);
    }
    // The token retired now: the one presented, or on a retry the one whose answer was lost
    // (the presented one stays the session's previous token, so a retry of a retry within the
    // grace still counts from the first rotation).
    let retired = current.refresh_token_hash.clone();
    let previous = if retired == hash { hash } else { current.previous_token_hash.clone().unwrap_or(hash) };
    rotated_token::ActiveModel { token_hash: Set(retired), session_id: Set(current.id), rotated_at: Set(now) }
        .insert(&*txn)
        .await?;
    let new_token = random_secret();
    let session_id = current.id;
    let mut active = current.into_active_model();
    active.refresh_token_hash = Set(digest(&new_token));
    active.previous_token_hash = Set(Some(previous));
    active.last_used_at = Set(now);
    active.update(&*txn).await?;
    txn.commit().await?;
    tokens(s, account, session_id, new_token)
}

/// Ends the caller's session that `refresh_token` belongs to. False when it is not one of theirs.
pub async fn logout(
    s: &Services,
    caller: &super::Caller,
    refresh_token: &str,
    client: &ClientInfo,
) -> Result<bool, ApiError> {
    let hash = digest(refresh_token);
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let n = revoke(
        &*txn,
        Condition::all()
            .add(session::Column::RefreshTokenHash.eq(hash.as_str()))
            .add(session::Column::UserId.eq(caller.user_id)),
    )
    .await?;
    if n == 0 {
        return Ok(false); // nothing changed: the transaction rolls back
    }
    audit.record(&*txn, caller.audit("auth.logout", client).target("user", caller.user_id)).await?;
    s.commit_access_change(txn, audit, Some(caller.user_id)).await?;
    Ok(true)
}

/// The live (not revoked) session whose current refresh token has this hash.
async fn live_session<C: ConnectionTrait>(db: &C, hash: &str) -> Result<Option<session::Model>, ApiError> {
    Ok(session::Entity::find()
        .filter(session::Column::RefreshTokenHash.eq(hash))
        .filter(session::Column::RevokedAt.is_null())
        .one(db)
        .await?)
}

/// Ends the session that `refresh_token` belongs to: whoever holds the token may end it (the web
/// app's sign-out, whose token is in a cookie). False when it is no live session's.
pub async fn end(s: &Services, refresh_token: &str, client: &ClientInfo) -> Result<bool, ApiError> {
    let hash = digest(refresh_token);
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let current = live_session(&*txn, &hash).await?;
    let Some(current) = current else { return Ok(false) };
    revoke(&*txn, session::Column::Id.eq(current.id)).await?;
    let owner = user::Entity::find_by_id(current.user_id).one(&*txn).await?;
    audit
        .record(
            &*txn,
            Entry::new("auth.logout", owner.as_ref().map(actor)).target("user", current.user_id).ip(client.ip.clone()),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(current.user_id)).await?;
    Ok(true)
}

/// Ends every session of the caller.
pub async fn logout_all(s: &Services, caller: &super::Caller, client: &ClientInfo) -> Result<bool, ApiError> {
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let n = revoke(&*txn, session::Column::UserId.eq(caller.user_id)).await?;
    audit
        .record(
            &*txn,
            caller
                .audit("auth.logout_all", client)
                .target("user", caller.user_id)
                .detail(format!("{n} session(s) ended")),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(caller.user_id)).await?;
    Ok(true)
}

/// The sessions of a user that still work (not ended, not expired, not idle too long), the most
/// recently used first.
pub async fn live_of(s: &Services, user_id: i64) -> Result<Vec<session::Model>, ApiError> {
    let now = Utc::now();
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastUsedAt.gt(now - s.session_policy.idle))
        .order_by_desc(session::Column::LastUsedAt)
        .all(s.db.conn())
        .await?)
}

/// Ends one session: one of the caller's own, or anyone's with `user.manage`. Another user's
/// session is NOT_FOUND to a caller who may not end it (its id tells nothing).
pub async fn end_one(
    s: &Services,
    caller: &super::Caller,
    session_id: i64,
    client: &ClientInfo,
) -> Result<bool, ApiError> {
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let found = session::Entity::find_by_id(session_id)
        .filter(session::Column::RevokedAt.is_null())
        .one(&*txn)
        .await?
        .filter(|row| row.user_id == caller.user_id || caller.has(shared::Permission::UserManage))
        .ok_or(ApiError::NotFound("session"))?;
    if found.user_id != caller.user_id {
        // As for disabling: never against an account holding keys the caller lacks.
        crate::users::ensure_outranks(&*txn, caller, found.user_id).await?;
    }
    revoke(&*txn, session::Column::Id.eq(found.id)).await?;
    audit
        .record(
            &*txn,
            caller.audit("auth.session_end", client).target("user", found.user_id).detail(format!(
                "session {} ({})",
                found.id,
                found.ip.as_deref().unwrap_or("unknown address")
            )),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(found.user_id)).await?;
    Ok(true)
}

/// Ends every session of another user (needs `user.manage`; oneself: [`logout_all`]). Returns
/// how many ended.
pub async fn end_all_of(
    s: &Services,
    caller: &super::Caller,
    user_id: i64,
    client: &ClientInfo,
) -> Result<u64, ApiError> {
    if user_id != caller.user_id {
        caller.require(shared::Permission::UserManage)?;
    }
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    user::Entity::find_by_id(user_id).one(&*txn).await?.ok_or(ApiError::NotFound("user"))?;
    if user_id != caller.user_id {
        crate::users::ensure_outranks(&*txn, caller, user_id).await?;
    }
    let n = revoke(&*txn, session::Column::UserId.eq(user_id)).await?;
    audit
        .record(
            &*txn,
            caller.audit("auth.logout_all", client).target("user", user_id).detail(format!("{n} session(s) ended")),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(user_id)).await?;
    Ok(n)
}

/// Revokes the live sessions that match `which`; returns how many.
pub async fn revoke<C: ConnectionTrait>(db: &C, which: impl IntoCondition) -> Result<u64, ApiError> {
    let res = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(which)
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
