//! The GraphQL schema, split by domain and merged here.
//!
//! Resolvers stay thin: read the caller from the context, check the permission with a guard,
//! call one service function, map the error with [`IntoGql`](crate::error::IntoGql).

mod alerts;
mod audit;
mod auth;
mod errors;
mod guard;
mod hub;
pub mod limits;
mod live;
mod metrics;
mod observe;
mod roles;
mod servers;
pub mod socket;
mod templates;
mod users;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder, dataloader::DataLoader};

pub use errors::ErrorCodes;
pub use guard::RequestInfo;

use crate::app::Services;

#[derive(MergedObject, Default)]
pub struct Query(
    hub::HubQuery,
    auth::AuthQuery,
    users::UserQuery,
    roles::RoleQuery,
    servers::ServerQuery,
    templates::TemplateQuery,
    metrics::MetricsQuery,
    alerts::AlertQuery,
    audit::AuditQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    users::UserMutation,
    roles::RoleMutation,
    servers::ServerMutation,
    templates::TemplateMutation,
    alerts::AlertMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    auth::AuthSubscription,
    servers::ServerSubscription,
    metrics::MetricsSubscription,
    alerts::AlertSubscription,
    audit::AuditSubscription,
);

pub type HubSchema = Schema<Query, Mutation, Subscription>;

/// Limits on what one GraphQL document may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
    pub recursion: usize,
    pub introspection: bool,
}

/// The schema without its data: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default()).extension(ErrorCodes)
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// The schema that serves requests.
pub fn build_schema(services: Services, limits: Limits) -> HubSchema {
    let mut builder = schema_builder()
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .limit_recursive_depth(limits.recursion)
        .extension(observe::OperationStats(services.stats.clone()))
        .extension(socket::SocketAuth)
        .extension(limits::DocumentLimits { nesting: limits.recursion, fields: limits.complexity })
        .data(DataLoader::new(users::Loader(services.db.clone()), tokio::spawn))
        .data(services);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}
