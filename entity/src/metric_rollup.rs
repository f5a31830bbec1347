//! An aggregate of raw samples over one bucket (1 minute or 1 hour).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_rollups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The bucket width in seconds: 60 or 3600.
    pub step_seconds: i32,
    /// null: the host.
    pub server_id: Option<i64>,
    pub metric: String,
    /// Unix time in milliseconds of the bucket's start.
    pub bucket_ms: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
