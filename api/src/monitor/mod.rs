//! Resources: one collector samples the host and each running game server and publishes every
//! sample on the bus for the live subscriptions. History, alerts and /metrics build on it.

pub mod collector;

pub use collector::{Collector, DiskUsage, HostSample, ServerSample};
