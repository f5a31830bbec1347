//! Accounts of one's own: sign in and out, refresh, register, passwords.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream::BoxStream};

use super::{
    guard::{SignedIn, caller, client, services},
    users::{User, user_by_id},
};
use crate::{
    app::Services,
    auth::{Caller, caller as callers, reset, sessions},
    error::{ApiError, GqlResult, IntoGql},
    servers::access,
    users,
};

/// The tokens of a session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A short-lived JWT for the Authorization header and the WebSocket's connection_init.
    access_token: String,
    /// Opaque, single use: trade it for new tokens with `refreshSession`.
    refresh_token: String,
    /// When the access token stops working: trade the refresh token for new tokens before then.
    access_token_expires_at: DateTime<Utc>,
    /// The signed-in account.
    user: User,
}

impl From<sessions::Tokens> for AuthPayload {
    fn from(t: sessions::Tokens) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            access_token_expires_at: t.access_token_expires_at,
            user: t.user.into(),
        }
    }
}

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// The address to sign in with (stored trimmed and lower-cased); one account per address.
    email: String,
    /// It must pass the hub's password policy.
    password: String,
    /// The name shown for the account: 1 to 64 characters, no control characters. Default: the
    /// email's part before the @.
    display_name: Option<String>,
    /// The invitation token, when registration is by invitation.
    invitation: Option<String>,
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

    /// Why the password policy would refuse this as the caller's new password, or null when it
    /// passes: the very check of `changePassword`, for feedback while typing. Costly (complexity
    /// 100): a request holds only a few.
    #[graphql(guard = "SignedIn", complexity = 100)]
    async fn password_problem(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password to check.")] password: String,
    ) -> GqlResult<Option<String>> {
        let s = services(ctx)?;
        let me = caller(ctx)?;
        let account = user_by_id(ctx, me.user_id).await?.ok_or(ApiError::NotFound("user")).gql()?;
        match s.password_policy.check("password", &password, &[&account.email, &account.display_name]).await {
            Ok(()) => Ok(None),
            Err(ApiError::BadInput { message, .. }) => Ok(Some(message)),
            Err(e) => Err(e).gql(),
        }
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs it in, when registration is open or by invitation. Public.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account.")] input: RegisterInput,
    ) -> GqlResult<AuthPayload> {
        let s = services(ctx)?;
        users::register(s, &input.email, input.password, input.display_name, input.invitation, client(ctx))
            .await
            .map(AuthPayload::from)
            .gql()
    }

    /// Signs in with an email and password. Public. Unknown emails and wrong passwords get the
    /// same UNAUTHENTICATED answer; too many attempts get RATE_LIMITED.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email.")] email: String,
        #[graphql(desc = "The account's password.")] password: String,
    ) -> GqlResult<AuthPayload> {
        sessions::login(services(ctx)?, &email, password, client(ctx)).await.map(AuthPayload::from).gql()
    }

    /// Trades a refresh token for new tokens; the old one stops working, and presenting it again
    /// ends the session. Public.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's latest refresh token.")] refresh_token: String,
    ) -> GqlResult<AuthPayload> {
        sessions::refresh(services(ctx)?, &refresh_token, client(ctx)).await.map(AuthPayload::from).gql()
    }

    /// Ends the caller's session that this refresh token belongs to.
    #[graphql(guard = "SignedIn")]
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the session to end.")] refresh_token: String,
    ) -> GqlResult<bool> {
        sessions::logout(services(ctx)?, caller(ctx)?, &refresh_token, client(ctx)).await.gql()
    }

    /// Ends every session of the caller.
    #[graphql(guard = "SignedIn")]
    async fn logout_all(&self, ctx: &Context<'_>) -> GqlResult<bool> {
        sessions::logout_all(services(ctx)?, caller(ctx)?, client(ctx)).await.gql()
    }

    /// Changes the caller's password; every session ends, this one too.
    #[graphql(guard = "SignedIn")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The caller's password now.")] current_password: String,
        #[graphql(desc = "The new password; it must pass the hub's password policy.")] new_password: String,
    ) -> GqlResult<bool> {
        reset::change(services(ctx)?, caller(ctx)?, current_password, new_password, client(ctx)).await.gql()
    }

    /// Sends a reset link to the address when it has an account. Public; true either way.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The email of the account to reset.")] email: String,
    ) -> GqlResult<bool> {
        reset::request(services(ctx)?, &email, client(ctx)).await.gql()
    }

    /// Sets a new password with a reset token; every session of the account ends. Public.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token from the reset link; it works once, for 30 minutes.")] token: String,
        #[graphql(desc = "The new password; it must pass the hub's password policy.")] new_password: String,
    ) -> GqlResult<bool> {
        reset::reset(services(ctx)?, &token, new_password, client(ctx)).await.gql()
    }
}

/// What the caller may do now.
#[derive(SimpleObject, Clone, PartialEq, Debug)]
pub struct MyAccess {
    /// The caller's global permission keys.
    pub permissions: Vec<String>,
    /// Every server the caller may see, with the server keys they hold on it.
    pub servers: Vec<MyServerAccess>,
}

/// A server the caller may see, with the per-server keys they hold on it.
#[derive(SimpleObject, Clone, PartialEq, Debug)]
pub struct MyServerAccess {
    /// The server's id.
    pub server_id: ID,
    /// The `server.*` keys the caller holds on it (global or granted).
    pub permissions: Vec<String>,
}

async fn access_of(s: &Services, me: &Caller) -> Result<MyAccess, ApiError> {
    let servers = access::everything_of(s.db.conn(), me).await?;
    let sorted = |keys: &mut dyn Iterator<Item = &shared::Permission>| {
        let mut keys: Vec<String> = keys.map(|p| p.key().to_owned()).collect();
        keys.sort();
        keys
    };
    Ok(MyAccess {
        permissions: sorted(&mut me.permissions.iter()),
        servers: servers
            .into_iter()
            .map(|(id, keys)| MyServerAccess { server_id: ID(id.to_string()), permissions: sorted(&mut keys.iter()) })
            .collect(),
    })
}

#[derive(Default)]
pub struct AuthSubscription;

#[Subscription]
impl AuthSubscription {
    /// What the caller may do: sent at once, then each time it changes (a role given or taken,
    /// a grant, a server made or deleted), so that an open app updates its navigation and lists
    /// without a reload. Ends with UNAUTHENTICATED when the session does.
    #[graphql(guard = "SignedIn")]
    async fn my_access(&self, ctx: &Context<'_>) -> async_graphql::Result<BoxStream<'static, GqlResult<MyAccess>>> {
        let (s, me) = (services(ctx)?.clone(), caller(ctx)?.clone());
        let mut generation = s.bus.access_generation();
        generation.mark_changed();
        let state = (s, me.user_id, me.session_id, generation, None::<MyAccess>, false);
        let stream = futures_util::stream::unfold(state, |(s, user, session, mut rx, last, ended)| async move {
            if ended {
                return None;
            }
            loop {
                // Every change anywhere bumps the generation: answer only when this caller's
                // own access differs from what was sent.
                rx.changed().await.ok()?;
                let now = match callers::current(&s, user, session).await {
                    Ok(me) => access_of(&s, &me).await,
                    Err(e) => Err(e),
                };
                match now {
                    Ok(now) if last.as_ref() == Some(&now) => continue,
                    Ok(now) => return Some((Ok(now.clone()), (s, user, session, rx, Some(now), false))),
                    Err(e) => return Some((Err(e).gql(), (s, user, session, rx, last, true))),
                }
            }
        });
        Ok(stream.boxed())
    }
}
