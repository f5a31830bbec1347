//! Compact metric history: a `metric_series` table names each series once (its scope, 0 for the
//! host or the server's id, and its metric), and the samples and rollups are keyed by
//! (series, time) as their primary key, clustered on SQLite (WITHOUT ROWID). The first version
//! repeated the metric's name and a row id in every row and two indexes besides: about 100 bytes
//! a row, three times what this layout takes. Existing history is carried over.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let sqlite = m.get_database_backend() == DbBackend::Sqlite;
        let (id, clustered) = if sqlite {
            ("INTEGER PRIMARY KEY AUTOINCREMENT", " WITHOUT ROWID")
        } else {
            ("BIGSERIAL PRIMARY KEY", "")
        };
        let db = m.get_connection();
        for sql in [
            format!("CREATE TABLE metric_series (id {id}, scope_id BIGINT NOT NULL, metric VARCHAR(64) NOT NULL)"),
            "CREATE UNIQUE INDEX idx_metric_series_key ON metric_series (scope_id, metric)".to_owned(),
            format!(
                "CREATE TABLE metric_points (series_id BIGINT NOT NULL, at_ms BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL,
                 PRIMARY KEY (series_id, at_ms)){clustered}"
            ),
            format!(
                r#"CREATE TABLE metric_buckets (step_seconds INTEGER NOT NULL, series_id BIGINT NOT NULL, bucket_ms BIGINT NOT NULL,
                 "avg" DOUBLE PRECISION NOT NULL, "min" DOUBLE PRECISION NOT NULL, "max" DOUBLE PRECISION NOT NULL,
                 "count" INTEGER NOT NULL, PRIMARY KEY (step_seconds, series_id, bucket_ms)){clustered}"#
            ),
            // Carry the history over.
            "INSERT INTO metric_series (scope_id, metric)
             SELECT COALESCE(server_id, 0), metric FROM metric_samples
             UNION SELECT COALESCE(server_id, 0), metric FROM metric_rollups"
                .to_owned(),
            "INSERT INTO metric_points (series_id, at_ms, value)
             SELECT s.id, m.at_ms, MAX(m.value) FROM metric_samples m
             JOIN metric_series s ON s.scope_id = COALESCE(m.server_id, 0) AND s.metric = m.metric
             GROUP BY s.id, m.at_ms"
                .to_owned(),
            r#"INSERT INTO metric_buckets (step_seconds, series_id, bucket_ms, "avg", "min", "max", "count")
             SELECT r.step_seconds, s.id, r.bucket_ms, MAX(r."avg"), MIN(r."min"), MAX(r."max"), MAX(r."count") FROM metric_rollups r
             JOIN metric_series s ON s.scope_id = COALESCE(r.server_id, 0) AND s.metric = r.metric
             GROUP BY r.step_seconds, s.id, r.bucket_ms"#
                .to_owned(),
            "DROP TABLE metric_samples".to_owned(),
            "DROP TABLE metric_rollups".to_owned(),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }
}
