//! Types that the hub (`api`) and the web app (`web`) share.
//!
//! This crate compiles for wasm32: it must never depend on sea-orm, axum, tokio or anything
//! else that only runs on the server. Server-only derives sit behind the `server` feature.

pub mod chart;
pub mod error;
pub mod ids;
pub mod metric;
pub mod permission;
pub mod server;
pub mod session;
pub mod template;
pub mod validation;

pub use error::ErrorCode;
pub use metric::{Metric, Suspicion};
pub use permission::Permission;
pub use server::ServerState;

/// The version of the hub, shared so that the web app can tell when it talks to another build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
