//! One series of the metric history: a metric of the host (scope 0) or of one server.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_series")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// 0: the host; otherwise the server's id.
    pub scope_id: i64,
    pub metric: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
