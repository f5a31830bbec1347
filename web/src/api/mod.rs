//! Talking to the hub: typed operations, the session that authorises them, errors in words.

pub mod client;
pub mod error;
pub mod flight;
pub mod ops;
pub mod session;

pub use client::{run, run_json};
pub use error::ApiError;
