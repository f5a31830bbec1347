//! A rollup of one series over one bucket (1 minute or 1 hour): average, extremes, count.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_buckets")]
pub struct Model {
    /// The bucket width in seconds: 60 or 3600.
    #[sea_orm(primary_key, auto_increment = false)]
    pub step_seconds: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub series_id: i64,
    /// Unix time in milliseconds of the bucket's start.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket_ms: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
