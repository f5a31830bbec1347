//! Game server templates: a TOML file describes a kind of game server (see `templates/` at the
//! repository root and the README's "Templates" section).
//!
//! [`Definition::parse`] checks a file completely (unknown keys, placeholders, rules, paths), so a
//! template in the database is always one the supervisor can run. [`render`] turns it and a
//! server's variables into an argv, an environment and files, one value per argument.

pub mod builtin;
pub mod definition;
mod render;
pub mod service;

pub use definition::{
    CrashPolicy, Definition, FileDef, MAX_TEMPLATE_BYTES, ProbeDef, ProbeKind, Problem, ReadyDef, Rule, StopDef,
    VariableDef,
};
pub use render::{Launch, ServerContext, Values, render, resolve_values};
