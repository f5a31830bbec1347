//! Alerts: the webhook body format of a rule, and the server an alert is about (a "server
//! crashed" rule may cover every server, so the server is the alert's, not only the rule's).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        m.alter_table(
            Table::alter().table(AlertRules::Table).add_column(string_len_null(AlertRules::WebhookFormat, 16)).take(),
        )
        .await?;
        m.alter_table(Table::alter().table(Alerts::Table).add_column(big_integer_null(Alerts::ServerId)).take())
            .await?;
        m.create_index(Index::create().name("idx_alerts_state").table(Alerts::Table).col(Alerts::State).take()).await
    }
}

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    WebhookFormat,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    ServerId,
    State,
}
