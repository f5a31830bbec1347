//! Kutanga Hub: the `kutanga` binary's library.
//!
//! `main.rs` only parses the command line and calls in here; tests build the whole hub in-process
//! with [`App::build`] and serve it with [`App::serve`].

pub mod alerts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod mail;
pub mod memory;
pub mod monitor;
pub mod roles;
pub mod run;
pub mod servers;
pub mod stats;
pub mod supervisor;
pub mod telemetry;
pub mod templates;
pub mod users;

pub use app::App;
pub use graphql::sdl;
