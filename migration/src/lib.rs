//! The hub's database schema as forward-only migrations, and the seed data.
//!
//! Migrations run on start (`kutanga serve`) and with `kutanga migrate`, on SQLite and
//! PostgreSQL alike. A migration is never edited once released: change the schema with a new one.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_initial;
mod m20261128_000002_accounts;
mod m20261129_000003_alerts;
mod m20261129_000004_metric_series;
mod m20261130_000005_alert_subject;
pub mod seed;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial::Migration),
            Box::new(m20261128_000002_accounts::Migration),
            Box::new(m20261129_000003_alerts::Migration),
            Box::new(m20261129_000004_metric_series::Migration),
            Box::new(m20261130_000005_alert_subject::Migration),
        ]
    }
}
