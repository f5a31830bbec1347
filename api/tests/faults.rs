//! Faults from outside, each on the real binary: the hub killed with -9 in a burst of writes,
//! PostgreSQL restarted under it, the data dir's disk full.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Backend, Store, process::HubProcess};
use serde_json::{Value, json};

const CREATE_ROLE: &str = "mutation($n: String!) { createRole(name: $n, permissions: [\"server.read\"]) { id } }";
const CREATE_SERVER: &str =
    "mutation($n: String!, $t: ID!) { createServer(input: { name: $n, templateId: $t }) { id } }";
/// A game that needs nothing: a shell that waits.
const IDLE_GAME: &str = "name = \"Idle\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"echo up; exec sleep 3600\"]\n";

/// Makes a template of `definition`; returns its id.
async fn template(hub: &HubProcess, token: &str, definition: &str) -> String {
    let res = hub
        .gql(Some(token), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": definition }))
        .await;
    res["data"]["createTemplate"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned()
}

/// Every audit entry with `action`, newest first, across pages.
async fn audit(hub: &HubProcess, token: &str, action: &str) -> Vec<Value> {
    let q = "query($a: String!, $after: String) { auditLog(first: 500, after: $after, filter: { action: $a }) { id targetId outcome } }";
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map(|e| e["id"].clone());
        let res = hub.gql(Some(token), q, json!({ "a": action, "after": after })).await;
        let page = res["data"]["auditLog"].as_array().unwrap_or_else(|| panic!("{res}")).clone();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// id -> name of what a list query returns.
async fn names(hub: &HubProcess, token: &str, list: &str) -> BTreeMap<String, String> {
    let res = hub.gql(Some(token), &format!("{{ {list} {{ id name }} }}"), json!({})).await;
    res["data"][list]
        .as_array()
        .unwrap_or_else(|| panic!("{res}"))
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["name"].as_str().unwrap().to_owned()))
        .collect()
}

/// A write the hub answered: (list, id, name).
type Acked = (&'static str, String, String);

/// Writers create roles and servers as fast as the hub answers; the hub is killed with -9 in the
/// middle. After a restart every acknowledged write is there, whole (a server has its folder),
/// and the audit log holds exactly one entry for each thing that exists.
async fn acknowledged_writes_survive_a_kill_9(backend: Backend) {
    let store = Store::new(backend).await;
    let hub = HubProcess::start(&store, &[]).await;
    let token = hub.admin_token().await;
    let template = template(&hub, &token, IDLE_GAME).await;
    let (roles_before, servers_before) = (names(&hub, &token, "roles").await, names(&hub, &token, "servers").await);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let hub = Arc::new(hub);
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (hub, token, template, acked) = (hub.clone(), token.clone(), template.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("w{w}-{i}");
                    let (kind, res) = if i % 2 == 0 {
                        ("roles", hub.try_gql(Some(&token), CREATE_ROLE, json!({ "n": name })).await)
                    } else {
                        ("servers", hub.try_gql(Some(&token), CREATE_SERVER, json!({ "n": name, "t": template })).await)
                    };
                    // The hub is gone: whatever was in flight was not acknowledged.
                    let Ok(res) = res else { return };
                    let created =
                        if kind == "roles" { &res["data"]["createRole"] } else { &res["data"]["createServer"] };
                    match created["id"].as_str() {
                        Some(id) => acked.lock().unwrap().push((kind, id.to_owned(), name)),
                        None => panic!("{name}: {res}"),
                    }
                }
            })
        })
        .collect();
    // Kill it once a fair number of writes went through.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 60 {
        assert!(Instant::now() < deadline, "the writers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(Command::new("kill").args(["-KILL", &hub.child.id().to_string()]).status().unwrap().success());
    for w in writers {
        w.await.unwrap();
    }
    drop(hub);
    let acked = acked.lock().unwrap().clone();

    let hub = HubProcess::start(&store, &[]).await;
    let token = hub.admin_token().await;
    let (roles, servers) = (names(&hub, &token, "roles").await, names(&hub, &token, "servers").await);
    for (kind, id, name) in &acked {
        let found = if *kind == "roles" { &roles } else { &servers };
        assert_eq!(found.get(id), Some(name), "the acknowledged {kind} {name} ({id}) is there");
    }
    for (list, before, action) in
        [("roles", &roles_before, "role.create"), ("servers", &servers_before, "server.create")]
    {
        let now = if list == "roles" { &roles } else { &servers };
        let made: BTreeSet<&String> = now.keys().filter(|id| !before.contains_key(*id)).collect();
        let entries = audit(&hub, &token, action).await;
        let audited: Vec<&str> =
            entries.iter().filter(|e| e["outcome"] == "success").filter_map(|e| e["targetId"].as_str()).collect();
        let unique: BTreeSet<&str> = audited.iter().copied().collect();
        assert_eq!(unique.len(), audited.len(), "one {action} entry per {list} item");
        let made: BTreeSet<&str> = made.into_iter().map(String::as_str).collect();
        assert_eq!(made, unique, "the audit log matches the {list} that exist");
    }
    for id in servers.keys().filter(|id| !servers_before.contains_key(*id)) {
        assert!(store.dir.path().join("servers").join(id).is_dir(), "server {id} has its folder");
    }
    eprintln!(
        "kill -9 after {} acknowledged writes: all there, {} roles and {} servers in all",
        acked.len(),
        roles.len(),
        servers.len()
    );
}

on_both!(acknowledged_writes_survive_a_kill_9);

/// A PostgreSQL cluster of the test's own (initdb, pg_ctl), so that it can be stopped and
/// started again under a running hub without touching the machine's server.
struct OwnPostgres {
    _root: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn init() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions.filter_map(|v| v.ok()).map(|v| v.path().join("bin")).find(|b| b.join("initdb").exists())
            })
            .expect("PostgreSQL's server programs (initdb, pg_ctl: Debian package postgresql)");
        let root = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = root.path().join("cluster");
        std::fs::create_dir(&data).unwrap();
        assert!(Command::new("chown").args(["postgres:postgres", data.to_str().unwrap()]).status().unwrap().success());
        let pg = Self { _root: root, data, bin, port: common::process::free_port() };
        pg.run("initdb", &["-D", pg.data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg
    }

    /// Runs a PostgreSQL program as the postgres user.
    fn run(&self, program: &str, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.data.display());
        let log = self.data.join("log");
        self.run(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"],
        );
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", self.data.to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// PostgreSQL stopped and started again under a hub that is being read from: while it is down
/// every request fails within seconds with a clear error and /readyz says 503; when it is back
/// the hub serves again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_rides_out_a_postgresql_restart() {
    let pg = OwnPostgres::init();
    pg.start();
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_on(dir.path(), Some(&pg.url()), 1_950_000_000, &[]).await;
    let token = hub.admin_token().await;
    assert!(hub.gql(Some(&token), "{ servers { id } }", json!({})).await["errors"].is_null());

    pg.stop();
    let down = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut answer = Value::Null;
    for i in 0..5 {
        let asked = Instant::now();
        // A new document each time: the same one asked again within 2 s may be answered from
        // what the hub kept (it was right then); this asks the store.
        answer = hub.gql(Some(&token), &format!("{{ servers {{ id }} n{i}: __typename }}"), json!({})).await;
        slowest = slowest.max(asked.elapsed());
        assert!(answer["data"].is_null() || answer["data"]["servers"].is_null(), "{answer}");
    }
    eprintln!("PostgreSQL down: the slowest answer took {slowest:?}: {answer}");
    // The pool's acquire timeout is 5 s; the rest is slack for a loaded machine.
    assert!(slowest < Duration::from_secs(10), "requests fail fast while the database is down: {slowest:?}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "INTERNAL", "{answer}");
    assert!(
        answer["errors"][0]["message"].as_str().unwrap().contains("database is unavailable"),
        "the error says what is wrong: {answer}"
    );
    let readyz = reqwest::get(hub.url("/readyz")).await.unwrap();
    assert_eq!(readyz.status(), 503);
    assert!(down.elapsed() < Duration::from_secs(40));

    pg.start();
    hub.wait_ready(Duration::from_secs(30)).await;
    let res = hub.gql(Some(&token), CREATE_ROLE, json!({ "n": "after the restart" })).await;
    assert!(res["data"]["createRole"]["id"].is_string(), "writes work again: {res}");
    let roles = hub.gql(Some(&token), "{ roles { name } }", json!({})).await;
    assert!(roles.to_string().contains("after the restart"), "{roles}");
}

/// A tmpfs of `size` mounted at a new folder, unmounted with the value.
struct SmallDisk {
    root: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0711"), "tmpfs", root.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "mount a tmpfs (needs root): {}", String::from_utf8_lossy(&out.stderr));
        Self { root }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    /// Fills what is left with one file; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l", self.root.path().to_str().unwrap()]).status();
    }
}

/// The game UIDs of the full-disk test's hub.
const UID_BASE: u32 = 1_960_000_000;

/// Kills every process of a game's UID when dropped.
struct GameGuard(u32);

impl Drop for GameGuard {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-KILL", "-U", &self.0.to_string()]).status();
    }
}

/// The data dir's disk full (SQLite, the embedded default): writes fail with a clear error and
/// change nothing, reads and a running game go on, the metric history stops growing without
/// failing the hub, and everything works again once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_clearly_and_recovers() {
    let disk = SmallDisk::mount("24m");
    let data = disk.path().join("data");
    let hub = HubProcess::start_on(&data, None, UID_BASE, &["--metrics-interval", "1"]).await;
    let token = hub.admin_token().await;
    let res = hub.gql(Some(&token), CREATE_ROLE, json!({ "n": "before" })).await;
    assert!(res["errors"].is_null(), "{res}");
    let chatty = "name = \"Chatty\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"i=0; while :; do i=$((i+1)); echo line $i; sleep 0.05; done\"]\n";
    let tpl = template(&hub, &token, chatty).await;
    let game = hub.gql(Some(&token), CREATE_SERVER, json!({ "n": "chatty", "t": tpl })).await;
    let game = game["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{game}")).to_owned();
    // Games outlive their hub by design: whatever happens below, this one goes with the test.
    let _game = GameGuard(UID_BASE + game.parse::<u32>().unwrap());
    let started =
        hub.gql(Some(&token), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": game })).await;
    assert!(started["errors"].is_null(), "{started}");

    let filler = disk.fill();
    tokio::time::sleep(Duration::from_secs(3)).await; // samples and console lines meet the full disk
    let res = hub.gql(Some(&token), CREATE_ROLE, json!({ "n": "during" })).await;
    eprintln!("disk full: {res}");
    assert_eq!(res["errors"][0]["extensions"]["code"], "INTERNAL", "{res}");
    assert!(res["errors"][0]["message"].as_str().unwrap().contains("disk is full"), "the error says why: {res}");
    let res = hub.gql(Some(&token), CREATE_SERVER, json!({ "n": "during", "t": tpl })).await;
    assert!(res["data"].is_null() || res["data"]["createServer"].is_null(), "{res}");
    let roles = hub.gql(Some(&token), "{ roles { name } }", json!({})).await;
    assert!(roles.to_string().contains("before") && !roles.to_string().contains("during"), "{roles}");
    assert!(hub.ready().await, "the hub still answers");
    let q = "query($id: ID!) { server(id: $id) { state consoleTail(lines: 1) { line } } }";
    let first = hub.gql(Some(&token), q, json!({ "id": game })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = hub.gql(Some(&token), q, json!({ "id": game })).await;
    assert_eq!(later["data"]["server"]["state"], "RUNNING", "{later}");
    assert_ne!(first["data"]["server"]["consoleTail"], later["data"]["server"]["consoleTail"], "the console goes on");

    std::fs::remove_file(&filler).unwrap();
    let res = hub.gql(Some(&token), CREATE_ROLE, json!({ "n": "after" })).await;
    assert!(res["errors"].is_null(), "writes work again once there is room: {res}");
    let servers = hub.gql(Some(&token), "{ servers { name } }", json!({})).await;
    assert_eq!(servers["data"]["servers"].as_array().unwrap().len(), 1, "no half-made server: {servers}");
    assert!(
        !data.join("servers").read_dir().unwrap().any(|e| e.unwrap().file_name() != game.as_str()),
        "no stray folder"
    );
    let stopped =
        hub.gql(Some(&token), "mutation($id: ID!) { killServer(id: $id) { state } }", json!({ "id": game })).await;
    assert!(stopped["errors"].is_null(), "{stopped}");
    drop(hub);
    // The database is whole: a new hub opens it and finds what was acknowledged.
    let hub = HubProcess::start_on(&data, None, UID_BASE, &[]).await;
    let token = hub.admin_token().await;
    let roles = hub.gql(Some(&token), "{ roles { name } }", json!({})).await.to_string();
    assert!(roles.contains("before") && roles.contains("after") && !roles.contains("during"), "{roles}");
}
