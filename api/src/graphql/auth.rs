//! Signing in and asking who one is.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    guard::{SignedIn, caller, client},
    users::{User, user_by_id},
};
use crate::{
    app::Services,
    auth::service,
    error::{ApiError, GqlResult, IntoGql},
};

/// The tokens of a new session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A short-lived JWT for the Authorization header and the WebSocket's connection_init.
    access_token: String,
    /// Opaque, single use; only its hash is stored.
    refresh_token: String,
    access_token_expires_at: DateTime<Utc>,
    user: User,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user.
    #[graphql(guard = "SignedIn")]
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<User> {
        let me = caller(ctx)?;
        user_by_id(ctx, me.user_id).await?.ok_or(ApiError::Unauthenticated("this account no longer exists")).gql()
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in with an email and password. Public. Unknown emails and wrong passwords get the
    /// same UNAUTHENTICATED answer.
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> GqlResult<AuthPayload> {
        let s = ctx.data::<Services>()?;
        let tokens = service::login(&s.db, s.bus.as_ref(), &s.keys, s.session_policy, &email, password, client(ctx))
            .await
            .gql()?;
        Ok(AuthPayload {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_token_expires_at: tokens.access_token_expires_at,
            user: tokens.user.into(),
        })
    }
}
