//! The GraphQL schema, split by domain and merged here.
//!
//! Resolvers stay thin: read the caller from the context, check the permission with a guard,
//! call one service function, map the error with [`IntoGql`](crate::error::IntoGql).

mod alerts;
mod answers;
mod audit;
mod auth;
mod engine;
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

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

pub use engine::{Answer, Engine, ran};
pub use guard::RequestInfo;

/// What can be read: the hub, accounts and roles, servers, templates, metrics, alerts and the
/// audit log.
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

/// What can be changed: sessions and passwords, accounts and roles, servers, templates and alert
/// rules.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    users::UserMutation,
    roles::RoleMutation,
    servers::ServerMutation,
    templates::TemplateMutation,
    alerts::AlertMutation,
);

/// What can be followed live, over the WebSocket: one's access, servers' states and consoles,
/// metrics, alerts and audit entries.
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

/// The schema without its data and limits: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
