//! Permission guards and the per-request data they read.

use async_graphql::{Context, ErrorExtensions, Guard};
use shared::Permission;

use crate::{
    app::Services,
    auth::{Caller, ClientInfo},
    error::{ApiError, GqlResult},
};

/// What the transport learned about a request: its caller (if signed in) and its origin.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub caller: Option<Caller>,
    pub client: ClientInfo,
}

/// The signed-in caller, or UNAUTHENTICATED.
pub fn caller<'a>(ctx: &'a Context<'_>) -> GqlResult<&'a Caller> {
    ctx.data_opt::<RequestInfo>()
        .and_then(|r| r.caller.as_ref())
        .ok_or_else(|| ApiError::Unauthenticated("sign in first").extend())
}

/// The hub's services.
pub fn services<'a>(ctx: &'a Context<'_>) -> GqlResult<&'a Services> {
    ctx.data::<Services>()
}

/// Where the request came from.
pub fn client<'a>(ctx: &'a Context<'_>) -> &'a ClientInfo {
    static NONE: ClientInfo = ClientInfo { ip: None, user_agent: None };
    ctx.data_opt::<RequestInfo>().map(|r| &r.client).unwrap_or(&NONE)
}

/// Passes any signed-in caller.
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> GqlResult<()> {
        caller(ctx).map(|_| ())
    }
}

/// Passes a caller who holds the global permission.
pub struct Need(pub Permission);

impl Guard for Need {
    async fn check(&self, ctx: &Context<'_>) -> GqlResult<()> {
        caller(ctx)?.require(self.0).map_err(|e| e.extend())
    }
}
