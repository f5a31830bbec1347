//! A raw sample of one series at one instant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_points")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub series_id: i64,
    /// Unix time in milliseconds.
    #[sea_orm(primary_key, auto_increment = false)]
    pub at_ms: i64,
    pub value: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
