//! A raw resource sample: one metric of the host or of one server at one instant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_samples")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// null: the host.
    pub server_id: Option<i64>,
    pub metric: String,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    pub value: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
