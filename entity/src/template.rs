//! A kind of game server, described by a TOML definition.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// A stable identifier (the file name of a built-in template).
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    /// The template file's text (TOML).
    pub definition: String,
    pub built_in: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::game_server::Entity")]
    GameServer,
}

impl Related<super::game_server::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GameServer.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
