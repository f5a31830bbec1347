//! Signing in: checks credentials, opens a session, issues the tokens, records the attempt.

use chrono::{DateTime, Duration, Utc};
use entity::{session, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};

use super::{TokenKeys, digest, password, random_secret};
use crate::{
    audit::{Actor, AuditBatch, Entry, Outcome},
    db::Db,
    error::ApiError,
    events::EventBus,
};

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    /// Opaque; only its SHA-256 is stored.
    pub refresh_token: String,
    pub user: user::Model,
}

/// Settings that shape sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub lifetime: Duration,
}

const BAD_CREDENTIALS: ApiError = ApiError::Unauthenticated("invalid email or password");

/// Checks an email and password; on success opens a session and returns its tokens.
/// Unknown emails and wrong passwords give the same answer in about the same time.
pub async fn login(
    db: &Db,
    bus: &dyn EventBus,
    keys: &TokenKeys,
    policy: SessionPolicy,
    email: &str,
    password_attempt: String,
    client: &ClientInfo,
) -> Result<Tokens, ApiError> {
    let email = shared::validation::normalize_email(email)?;
    if password_attempt.chars().count() > shared::validation::PASSWORD_MAX_CHARS {
        return Err(ApiError::bad_input("password", "a password has at most 256 characters"));
    }
    let account = user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(db.conn()).await?;
    let ok = password::verify(password_attempt, account.as_ref().map(|u| u.password_hash.clone())).await?;

    let mut audit = AuditBatch::default();
    let txn = db.write().await?;
    let result = match account {
        Some(account) if ok && !account.disabled => {
            let now = Utc::now();
            let refresh_token = random_secret();
            let session = session::ActiveModel {
                user_id: Set(account.id),
                refresh_token_hash: Set(digest(&refresh_token)),
                previous_token_hash: Set(None),
                created_at: Set(now),
                last_used_at: Set(now),
                expires_at: Set(now + policy.lifetime),
                revoked_at: Set(None),
                ip: Set(client.ip.clone()),
                user_agent: Set(client.user_agent.as_ref().map(|ua| ua.chars().take(512).collect())),
                ..Default::default()
            }
            .insert(&*txn)
            .await?;
            let mut active = account.clone().into_active_model();
            active.last_login_at = Set(Some(now));
            let account = active.update(&*txn).await?;
            audit
                .record(
                    &*txn,
                    Entry::new("auth.login", Some(actor(&account))).target("session", session.id).ip(client.ip.clone()),
                )
                .await?;
            let (access_token, expires) = keys.issue(account.id, session.id).map_err(ApiError::internal)?;
            Ok(Tokens { access_token, access_token_expires_at: expires, refresh_token, user: account })
        }
        other => {
            let why = match &other {
                None => "unknown email",
                Some(u) if u.disabled && ok => "account disabled",
                Some(_) => "wrong password",
            };
            let entry = Entry::new("auth.login_failed", other.as_ref().map(actor))
                .outcome(Outcome::Failure)
                .detail(format!("{why} for {email}"))
                .ip(client.ip.clone());
            audit.record(&*txn, entry).await?;
            Err(BAD_CREDENTIALS)
        }
    };
    txn.commit().await?;
    audit.publish(bus);
    result
}

fn actor(u: &user::Model) -> Actor {
    Actor { id: u.id, email: u.email.clone() }
}
