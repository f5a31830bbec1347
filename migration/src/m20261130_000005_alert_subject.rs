//! What a security alert is about beyond a server: the client address whose failed sign-ins,
//! reused refresh tokens or refused requests raised it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Alerts::Table).add_column(string_len_null(Alerts::Subject, 64)).take()).await
    }
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Subject,
}
