//! Passwords: forgotten (a single-use reset token, mailed or logged) and changed.

use chrono::{Duration, Utc};
use entity::{password_reset, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set, sea_query::Expr};

use super::{Caller, ClientInfo, digest, password, random_secret, sessions};
use crate::{
    app::Services,
    audit::{AuditBatch, Entry, Outcome},
    error::ApiError,
};

/// How long a reset token works.
pub const RESET_TTL: Duration = Duration::minutes(30);

const BAD_TOKEN: &str = "this reset link is invalid, used or expired; ask for a new one";

/// Starts a password reset. Answers the same whether or not the address is known: the work
/// (token, mail) happens in the background, so the answer takes the same time too.
pub async fn request(s: &Services, email: &str, client: &ClientInfo) -> Result<bool, ApiError> {
    let email = shared::validation::normalize_email(email)?;
    s.limits.attempt(&email, client.ip.as_deref())?;
    let s2 = s.clone();
    let client = client.clone();
    s.tasks.spawn(async move {
        if let Err(e) = issue(&s2, &email, &client).await {
            tracing::error!(error = %e, "a password reset could not be issued");
        }
    });
    Ok(true)
}

async fn issue(s: &Services, email: &str, client: &ClientInfo) -> Result<(), ApiError> {
    let account = user::Entity::find().filter(user::Column::Email.eq(email)).one(s.db.conn()).await?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let Some(account) = account.filter(|u| !u.disabled) else {
        audit
            .record(
                &*txn,
                Entry::new("auth.password_reset_requested", None)
                    .outcome(Outcome::Failure)
                    .detail(format!("no enabled account for {email}"))
                    .ip(client.ip.clone()),
            )
            .await?;
        audit.finish(txn, s.bus.as_ref()).await?;
        return Ok(());
    };
    let token = random_secret();
    let now = Utc::now();
    password_reset::ActiveModel {
        user_id: Set(account.id),
        token_hash: Set(digest(&token)),
        created_at: Set(now),
        expires_at: Set(now + RESET_TTL),
        used_at: Set(None),
        ip: Set(client.ip.clone()),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    audit
        .record(
            &*txn,
            Entry::new("auth.password_reset_requested", Some(sessions::actor(&account)))
                .target("user", account.id)
                .ip(client.ip.clone()),
        )
        .await?;
    audit.finish(txn, s.bus.as_ref()).await?;

    let link = format!("{}/reset-password?token={token}", s.settings.public_url());
    let body = format!(
        "Someone asked to reset the password of your account on {hub}.\n\n\
         To choose a new password, open this link within 30 minutes:\n\n{link}\n\n\
         Or use this token: {token}\n\n\
         If it was not you, ignore this message: your password stays as it is.\n",
        hub = s.settings.hub_name
    );
    s.mailer
        .send(&account.email, &format!("Reset your {} password", s.settings.hub_name), &body)
        .await
        .map_err(ApiError::internal)
}

/// Sets a new password with a reset token; ends every session of the account.
pub async fn reset(s: &Services, token: &str, new_password: String, client: &ClientInfo) -> Result<bool, ApiError> {
    if token.len() > 256 {
        return Err(ApiError::bad_input("token", BAD_TOKEN));
    }
    let now = Utc::now();
    let found = password_reset::Entity::find()
        .filter(password_reset::Column::TokenHash.eq(digest(token)))
        .filter(password_reset::Column::UsedAt.is_null())
        .filter(password_reset::Column::ExpiresAt.gt(now))
        .one(s.db.conn())
        .await?;
    let account = match found {
        Some(reset) => user::Entity::find_by_id(reset.user_id).one(s.db.conn()).await?,
        None => None,
    };
    let Some(account) = account.filter(|u| !u.disabled) else {
        return Err(ApiError::bad_input("token", BAD_TOKEN));
    };
    s.password_policy.check("newPassword", &new_password, &[&account.email, &account.display_name]).await?;
    let hash = password::hash(new_password).await?;

    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    // Spend the token (and any other open one of the account) in the same transaction.
    let spent = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::UserId.eq(account.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(&*txn)
        .await?;
    if spent.rows_affected == 0 {
        return Err(ApiError::bad_input("token", BAD_TOKEN));
    }
    let (account, ended) = replace_password(&*txn, account, hash).await?;
    audit
        .record(
            &*txn,
            Entry::new("user.password_reset", Some(sessions::actor(&account)))
                .target("user", account.id)
                .detail(format!("with a reset token; {ended} session(s) ended"))
                .ip(client.ip.clone()),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(account.id)).await?;
    Ok(true)
}

/// Changes the caller's password after checking the current one; ends all their sessions.
pub async fn change(
    s: &Services,
    caller: &Caller,
    current: String,
    new_password: String,
    client: &ClientInfo,
) -> Result<bool, ApiError> {
    let ip = client.ip.as_deref();
    s.limits.before(&caller.email, ip)?;
    let checked = async {
        let account =
            user::Entity::find_by_id(caller.user_id).one(s.db.conn()).await?.ok_or(ApiError::NotFound("user"))?;
        let right = current.chars().count() <= shared::validation::PASSWORD_MAX_CHARS
            && password::verify(current, Some(account.password_hash.clone())).await?;
        Ok::<_, ApiError>((account, right))
    }
    .await;
    let account = match checked {
        Ok((account, true)) => {
            s.limits.succeeded(&caller.email, ip);
            account
        }
        Ok((_, false)) => {
            let wrong = ApiError::bad_input("currentPassword", "the current password is wrong");
            return Err(s.limits.failed(&caller.email).unwrap_or(wrong));
        }
        Err(e) => {
            s.limits.succeeded(&caller.email, ip);
            return Err(e);
        }
    };
    s.password_policy.check("newPassword", &new_password, &[&account.email, &account.display_name]).await?;
    let hash = password::hash(new_password).await?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let (account, ended) = replace_password(&*txn, account, hash).await?;
    audit
        .record(
            &*txn,
            caller
                .audit("user.password_change", client)
                .target("user", account.id)
                .detail(format!("{ended} session(s) ended")),
        )
        .await?;
    s.commit_access_change(txn, audit, Some(account.id)).await?;
    Ok(true)
}

/// Stores a new password hash and ends every session of the account; returns the account and how
/// many sessions ended.
pub async fn replace_password<C: sea_orm::ConnectionTrait>(
    db: &C,
    account: user::Model,
    hash: String,
) -> Result<(user::Model, u64), ApiError> {
    let now = Utc::now();
    let mut active = account.into_active_model();
    active.password_hash = Set(hash);
    active.password_changed_at = Set(now);
    active.updated_at = Set(now);
    let account = active.update(db).await?;
    let ended = sessions::revoke(db, entity::session::Column::UserId.eq(account.id)).await?;
    Ok((account, ended))
}
