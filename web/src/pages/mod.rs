//! One module per page (or a few small pages of one kind).

pub mod access;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod profile;
pub mod resources;
pub mod roles;
pub mod server;
pub mod servers;
pub mod settings;
pub mod template_form;
pub mod templates;
pub mod users;
