//! A template variable's value on one server.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_variables")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub server_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub value: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::game_server::Entity",
        from = "Column::ServerId",
        to = "super::game_server::Column::Id"
    )]
    GameServer,
}

impl Related<super::game_server::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GameServer.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
