//! The public `hubInfo` query.

use async_graphql::{Context, Object, SimpleObject};

use crate::{app::Services, error::GqlResult};

/// What anyone may know about this hub.
#[derive(SimpleObject)]
pub struct HubInfo {
    /// The hub's display name from config.
    name: String,
    /// The hub's version.
    version: String,
    /// Whether `register` works without an invitation.
    registration_open: bool,
}

#[derive(Default)]
pub struct HubQuery;

#[Object]
impl HubQuery {
    /// The hub's name and version. Public: the only query that needs no token.
    async fn hub_info(&self, ctx: &Context<'_>) -> GqlResult<HubInfo> {
        let services = ctx.data::<Services>()?;
        Ok(HubInfo {
            name: services.settings.hub_name.clone(),
            version: shared::VERSION.to_owned(),
            registration_open: services.settings.registration == crate::config::Registration::Open,
        })
    }
}
