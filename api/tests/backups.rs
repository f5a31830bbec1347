//! Backups of the hub's own database: made by `kutanga backup` while a hub serves a burst of
//! writes, restored by `kutanga restore` into an empty data dir (the restored hub serves the same
//! users, roles, servers and history), refused when damaged, when the target holds a database or
//! while a hub runs on it; made before an upgrade and on a schedule; a database from a newer hub
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    process::{Command, Output},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{Backend, Store, TestHub};
use serde_json::{Value, json};

/// `kutanga <args>` on a store's data dir and database, with a clean KUTANGA_* environment.
fn kutanga(store: &Store, args: &[&str]) -> Output {
    let mut cmd = common::process::kutanga_command();
    cmd.args(args).args(["--data-dir", store.dir.path().to_str().unwrap()]);
    if let Some(pg) = &store.pg {
        cmd.args(["--database-url", &pg.url]);
    }
    cmd.output().unwrap()
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn names(hub: &TestHub, token: &str, query: &str, field: &str, key: &str) -> Vec<String> {
    let res = hub.gql(Some(token), query, json!({})).await;
    let list = res["data"][field].as_array().unwrap_or_else(|| panic!("{res}")).clone();
    let mut names: Vec<String> = list.iter().map(|v| v[key].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

async fn a_backup_made_under_writes_restores_whole(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    hub.user_with_roles("kept@hub.test", &["Moderator"]).await;
    let res = hub
        .gql(
            Some(&admin),
            "mutation { createRole(name: \"Keepers\", permissions: [\"server.read\"]) { id } }",
            json!({}),
        )
        .await;
    assert!(res["errors"].is_null(), "{res}");
    hub.create_server_from(&admin, "kept-server", "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"60\"]\n")
        .await;
    // Samples in the history (one a second).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let templates = hub.gql(Some(&admin), "{ templates { id name } }", json!({})).await;
    let sleeper =
        templates["data"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == "Sleeper").unwrap()["id"]
            .clone();

    // A burst of writes that goes on while the backup is made.
    let stop = Arc::new(AtomicBool::new(false));
    let (writer_hub, writer_stop, writer_admin) = (hub.url("/graphql"), stop.clone(), admin.clone());
    let writer = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut made = Vec::new();
        for n in 0.. {
            if writer_stop.load(Ordering::Relaxed) {
                break;
            }
            let body = json!({
                "query": "mutation($i: CreateServerInput!) { createServer(input: $i) { name } }",
                "variables": { "i": { "name": format!("burst-{n}"), "templateId": sleeper } },
            });
            let res: Value = http
                .post(&writer_hub)
                .bearer_auth(&writer_admin)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(res["errors"].is_null(), "{res}");
            made.push(format!("burst-{n}"));
        }
        made
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("hub.tar.gz");
    let out = tokio::task::spawn_blocking({
        let (file, dir, pg) = (file.clone(), hub.data_dir(), hub_pg_url(&hub));
        move || {
            let mut cmd = common::process::kutanga_command();
            cmd.args(["backup", "--output", file.to_str().unwrap(), "--data-dir", dir.to_str().unwrap()]);
            if let Some(url) = pg {
                cmd.args(["--database-url", &url]);
            }
            cmd.output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("wrote"), "{}", said(&out));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let made = writer.await.unwrap();
    assert!(made.len() > 3, "the burst wrote while the backup was made: {made:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "it holds password hashes");
    let servers_before = names(&hub, &admin, "{ servers { name } }", "servers", "name").await;
    hub.stop().await;

    // Restored into an empty store, the hub serves what the backup holds.
    let fresh = Store::new(backend).await;
    let out = kutanga(&fresh, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", said(&out));
    let again = kutanga(&fresh, &["restore", file.to_str().unwrap()]);
    assert!(!again.status.success(), "a second restore over the first is refused");
    assert!(said(&again).contains("restore only into an empty"), "{}", said(&again));
    let restored = TestHub::start_with(fresh, &[]).await;
    let admin = restored.admin_token().await;
    let users = names(&restored, &admin, "{ users { email roles { name } } }", "users", "email").await;
    assert!(users.contains(&"kept@hub.test".to_owned()), "{users:?}");
    let roles = names(&restored, &admin, "{ roles { name } }", "roles", "name").await;
    assert!(roles.contains(&"Keepers".to_owned()), "{roles:?}");
    let servers = names(&restored, &admin, "{ servers { name } }", "servers", "name").await;
    assert!(servers.contains(&"kept-server".to_owned()), "{servers:?}");
    // The snapshot is one moment of the burst: every server in it was acknowledged, whole.
    let bursts: Vec<&String> = servers.iter().filter(|s| s.starts_with("burst-")).collect();
    assert!(!bursts.is_empty(), "the writes made before the backup are in it");
    assert!(bursts.iter().all(|b| servers_before.contains(b)), "{bursts:?}");
    // The writes came one after another: one moment holds the first k of them, no gaps.
    let mut held: Vec<usize> = bursts.iter().map(|b| b["burst-".len()..].parse().unwrap()).collect();
    held.sort_unstable();
    assert_eq!(held, (0..held.len()).collect::<Vec<_>>(), "a moment of the burst, whole");
    assert!(held.len() < made.len(), "the writes after the snapshot are not in it: {} of {}", held.len(), made.len());
    let now = chrono::Utc::now();
    let history = restored
        .gql(
            Some(&admin),
            "query($f: DateTime!, $t: DateTime!) { hostMetrics(metric: \"cpu.percent\", range: {from: $f, to: $t}) { points { at } } }",
            json!({ "f": now - chrono::Duration::minutes(10), "t": now }),
        )
        .await;
    let points = history["data"]["hostMetrics"]["points"].as_array().unwrap_or_else(|| panic!("{history}"));
    assert!(points.len() >= 2, "the history came back: {history}");
    restored.stop().await;
}

fn hub_pg_url(hub: &TestHub) -> Option<String> {
    match hub.app.services.settings.database() {
        kutanga::config::DatabaseTarget::Postgres(url) => Some(url),
        kutanga::config::DatabaseTarget::Sqlite(_) => None,
    }
}

/// A damaged backup is refused before anything is written; so is one for the other backend, and
/// a restore while a hub runs on the data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_misplaced_backups_are_refused() {
    let store = Store::new(Backend::Sqlite).await;
    let hub = common::process::HubProcess::start(&store, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.tar.gz");
    let out = kutanga(&store, &["backup", "--output", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", said(&out));
    let out = kutanga(&store, &["backup", "--output", file.to_str().unwrap()]);
    assert!(said(&out).contains("exists already"), "a backup never overwrites: {}", said(&out));
    let out = kutanga(&store, &["restore", file.to_str().unwrap()]);
    assert!(said(&out).contains("another Kutanga Hub process uses"), "{}", said(&out));
    drop(hub);

    let whole = std::fs::read(&file).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", whole[..whole.len() / 2].to_vec(), "is not a whole Kutanga Hub backup"),
        ("flipped", flipped(&whole), "is not a whole Kutanga Hub backup"),
        ("not a backup", b"hello".to_vec(), "is not a whole Kutanga Hub backup"),
    ];
    for (what, bytes, message) in cases {
        let target = Store::new(Backend::Sqlite).await;
        let damaged = dir.path().join(format!("{what}.tar.gz"));
        std::fs::write(&damaged, bytes).unwrap();
        let out = kutanga(&target, &["restore", damaged.to_str().unwrap()]);
        assert!(!out.status.success(), "{what}: {}", said(&out));
        assert!(said(&out).contains(message), "{what}: {}", said(&out));
        assert!(!target.dir.path().join("kutanga.db").exists(), "{what}: nothing written");
        assert!(!target.dir.path().join("jwt.key").exists(), "{what}: nothing written");
    }
    let postgres = Store::new(Backend::Postgres).await;
    let out = kutanga(&postgres, &["restore", file.to_str().unwrap()]);
    assert!(said(&out).contains("holds a SQLite database"), "{}", said(&out));
}

/// The byte in the middle of the database's data turned around (past the gzip header).
fn flipped(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    bytes
}

/// A SQLite database is backed up before it is migrated; a database that a newer hub migrated is
/// refused with a message that says so, before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_back_up_first_and_downgrades_are_refused() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let store = hub.stop().await;
    let db = store.dir.path().join("kutanga.db");
    let sql = |statement: &str| {
        let out = Command::new("python3")
            .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
            .arg(&db)
            .arg(statement)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", said(&out));
    };
    // The database as the previous schema left it: the newest migration (which adds one
    // column; migrations have no way down) undone by hand.
    let newest = kutanga::db::schema_version();
    assert!(newest.ends_with("_alert_subject"), "undo {newest} here instead");
    sql("ALTER TABLE alerts DROP COLUMN subject");
    sql(&format!("DELETE FROM seaql_migrations WHERE version = '{newest}'"));
    let out = kutanga(&store, &["migrate"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains(&kutanga::db::schema_version()), "it applied the newest: {}", said(&out));
    let backups: Vec<String> = std::fs::read_dir(store.dir.path().join("backups"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].starts_with("before-upgrade-") && backups[0].ends_with(".tar.gz"), "{backups:?}");
    // Taken before the upgrade: it holds the schema as it was.
    let backup = store.dir.path().join("backups").join(&backups[0]);
    let manifest = Command::new("tar").arg("-xzOf").arg(&backup).arg("manifest.json").output().unwrap();
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let known = kutanga::db::known_migrations();
    assert_eq!(manifest["schema"], known[known.len() - 2], "{manifest}");
    let again = kutanga(&store, &["migrate"]);
    assert!(said(&again).contains("up to date"), "{}", said(&again));
    assert_eq!(
        std::fs::read_dir(store.dir.path().join("backups")).unwrap().count(),
        1,
        "no backup when nothing is pending"
    );
    // A migration from the future.
    sql("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_from_the_future', 0)");
    let out = kutanga(&store, &["migrate"]);
    assert!(!out.status.success());
    assert!(said(&out).contains("upgraded by a newer Kutanga Hub"), "{}", said(&out));
    assert!(said(&out).contains("m29991231_000001_from_the_future"), "{}", said(&out));
}

/// Scheduled backups: one at once when there is none, then none until the interval has passed;
/// the oldest beyond the count are removed, other files in the folder never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_keep_a_count() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let folder = tempfile::tempdir().unwrap();
    let schedule = kutanga::backup::Schedule {
        dir: folder.path().to_owned(),
        every: Duration::from_secs(3600),
        keep: 2,
        max_age: Duration::from_secs(86_400),
    };
    let (settings, db) = (&hub.app.services.settings, &hub.app.services.db);
    std::fs::write(folder.path().join("notes.txt"), "mine").unwrap();
    let first = schedule.tick(settings, db).await.unwrap();
    assert!(first.is_some(), "none yet: one is made");
    assert!(schedule.tick(settings, db).await.unwrap().is_none(), "the newest is recent");
    // Older ones, as if made hours before; and one made by hand, whose name is not a schedule's.
    let stamp = |hours: i64| (chrono::Utc::now() - chrono::Duration::hours(hours)).format("%Y%m%dT%H%M%SZ").to_string();
    for hours in [2, 4, 6] {
        std::fs::copy(first.as_ref().unwrap(), folder.path().join(format!("kutanga-{}.tar.gz", stamp(hours)))).unwrap();
    }
    std::fs::copy(first.as_ref().unwrap(), folder.path().join("kutanga-by-hand.tar.gz")).unwrap();
    std::fs::copy(first.as_ref().unwrap(), folder.path().join(format!("kutanga-{}.tar.gz", stamp(48)))).unwrap();
    assert!(schedule.tick(settings, db).await.unwrap().is_none());
    let mut left: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = vec![
        first.unwrap().file_name().unwrap().to_string_lossy().into_owned(),
        format!("kutanga-{}.tar.gz", stamp(2)),
        "kutanga-by-hand.tar.gz".to_owned(),
        "notes.txt".to_owned(),
    ];
    expected.sort();
    assert_eq!(left, expected, "the newest two by their names' times, and the files that are not the schedule's");
    hub.stop().await;
}

on_both!(a_backup_made_under_writes_restores_whole);
