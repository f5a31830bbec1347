//! The database: migrations, idempotent seeding, SQLite's settings and concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, Backend, Store, TestHub};
use kutanga::{config::DatabaseTarget, db::Db, events::LocalBus};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};
use serde_json::json;

fn target(store: &Store) -> DatabaseTarget {
    match &store.pg {
        Some(pg) => DatabaseTarget::Postgres(pg.url.clone()),
        None => DatabaseTarget::Sqlite(store.dir.path().join("kutanga.db")),
    }
}

async fn migrations_apply_once_and_are_audited(backend: Backend) {
    let store = Store::new(backend).await;
    let db = Db::connect(&target(&store)).await.unwrap();
    let bus = LocalBus::default();
    let applied = kutanga::bootstrap::migrate(&db, &bus).await.unwrap();
    assert_eq!(
        applied,
        [
            "m20261128_000001_initial",
            "m20261128_000002_accounts",
            "m20261129_000003_alerts",
            "m20261129_000004_metric_series",
            "m20261130_000005_alert_subject"
        ]
    );
    assert!(kutanga::bootstrap::migrate(&db, &bus).await.unwrap().is_empty(), "a second run applies nothing");
    let entries = entity::audit_log::Entity::find().all(db.conn()).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "hub.migrate");
    assert!(entries[0].detail.as_deref().unwrap().contains(
        "m20261128_000001_initial, m20261128_000002_accounts, m20261129_000003_alerts, m20261129_000004_metric_series, \
         m20261130_000005_alert_subject"
    ));
    // Every table of the design exists.
    for table in [
        "users",
        "roles",
        "permissions",
        "role_permissions",
        "user_roles",
        "sessions",
        "templates",
        "game_servers",
        "server_variables",
        "server_grants",
        "audit_log",
        "metric_series",
        "metric_points",
        "metric_buckets",
        "alert_rules",
        "alerts",
        "invitations",
        "password_resets",
        "rotated_tokens",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        db.conn()
            .query_one_raw(Statement::from_string(db.backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    db.close().await;
}

async fn a_second_start_changes_nothing(backend: Backend) {
    let hub = TestHub::start(backend).await;
    // The admin changes their password (through the service layer until the accounts API lands).
    let s = &hub.app.services;
    kutanga::users::reset_password(s, &Default::default(), ADMIN_EMAIL, "a changed passphrase".into()).await.unwrap();
    let audit_before = entity::audit_log::Entity::find().count(s.db.conn()).await.unwrap();
    let users_before = entity::user::Entity::find().count(s.db.conn()).await.unwrap();
    let store = hub.stop().await;

    let hub = TestHub::start_with(store, &[]).await;
    let s = &hub.app.services;
    assert_eq!(entity::audit_log::Entity::find().count(s.db.conn()).await.unwrap(), audit_before);
    assert_eq!(entity::user::Entity::find().count(s.db.conn()).await.unwrap(), users_before);
    assert_eq!(entity::role::Entity::find().count(s.db.conn()).await.unwrap(), 3);
    assert_eq!(
        entity::permission::Entity::find().count(s.db.conn()).await.unwrap(),
        shared::Permission::ALL.len() as u64
    );
    // The changed password still works; the configured one does not come back.
    hub.login(ADMIN_EMAIL, "a changed passphrase").await;
    let res = hub
        .gql(
            None,
            "mutation { login(email: \"admin@hub.test\", password: \"a long admin passphrase\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(common::code(&res), "UNAUTHENTICATED");
    hub.stop().await;
}

async fn a_password_reset_ends_sessions_at_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    assert!(hub.gql(Some(&token), "{ me { id } }", json!({})).await["errors"].is_null());
    let s = &hub.app.services;
    kutanga::users::reset_password(s, &Default::default(), ADMIN_EMAIL, "a changed passphrase".into()).await.unwrap();
    let res = hub.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(common::code(&res), "UNAUTHENTICATED", "a still-valid JWT of an ended session is refused");
    hub.stop().await;
}

on_both!(migrations_apply_once_and_are_audited, a_second_start_changes_nothing, a_password_reset_ends_sessions_at_once);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_in_wal_mode_with_foreign_keys() {
    let store = Store::new(Backend::Sqlite).await;
    let db = Db::connect(&target(&store)).await.unwrap();
    let pragma = |name: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .conn()
                .query_one_raw(Statement::from_string(db.backend(), format!("PRAGMA {name}")))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
                .unwrap()
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("busy_timeout").await, "30000");
    db.close().await;
}

/// Many writers that read before they write: with deferred transactions SQLite fails some of
/// them with SQLITE_BUSY (a read lock cannot be upgraded); `Db::write` must let all commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sqlite_writers_never_hit_busy() {
    let store = Store::new(Backend::Sqlite).await;
    let db = Db::connect(&target(&store)).await.unwrap();
    db.migrate().await.unwrap();
    // A second pool on the same file stands for a second process (the CLI beside the server).
    let other = Db::connect(&target(&store)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let db = if i % 2 == 0 { db.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let txn = db.write().await?;
            let count = entity::audit_log::Entity::find().count(&*txn).await?;
            let mut batch = kutanga::audit::AuditBatch::default();
            batch.record(&*txn, kutanga::audit::Entry::new("test.write", None).detail(format!("saw {count}"))).await?;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            txn.commit().await?;
            drop(batch);
            Ok::<_, sea_orm::DbErr>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("no writer fails");
    }
    assert_eq!(entity::audit_log::Entity::find().count(db.conn()).await.unwrap(), 64);
    // Each writer saw the rows committed before it: counts are 0..63, each once.
    let mut seen: Vec<u64> = entity::audit_log::Entity::find()
        .all(db.conn())
        .await
        .unwrap()
        .iter()
        .map(|e| e.detail.as_deref().unwrap().trim_start_matches("saw ").parse().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..64).collect::<Vec<u64>>());
}
