//! Game servers. The supervisor that runs them arrives with its own work; what is here is who
//! may see and act on which server.

pub mod access;
pub mod service;
