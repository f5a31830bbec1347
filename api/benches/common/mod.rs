//! What the benchmarks share: a PostgreSQL database of their own, and the release hub run as a
//! process of its own (`KUTANGA_BENCH_HUB`, built by `cargo xtask bench`), so that the client's
//! work never counts as the hub's.
#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

pub const ADMIN_EMAIL: &str = "admin@bench.test";
pub const ADMIN_PASSWORD: &str = "a long benchmark passphrase";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The PostgreSQL server of the tests (KUTANGA_TEST_DATABASE_URL).
pub fn postgres_server() -> String {
    std::env::var("KUTANGA_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A uniquely named database on the tests' PostgreSQL server, dropped by [`Self::drop_now`].
pub struct PgDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let server = postgres_server();
        let name = format!("kutanga_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server).await.expect("PostgreSQL at KUTANGA_TEST_DATABASE_URL");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        admin.close().await.ok();
        let url = format!("{}/{name}", server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base));
        Self { server, name, url }
    }

    pub async fn drop_now(mut self) {
        drop_database(&self.server, &self.name).await;
        self.name.clear();
    }
}

async fn drop_database(server: &str, name: &str) {
    if let Ok(mut admin) = PgConnection::connect(server).await {
        let _ = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
        admin.close().await.ok();
    }
}

/// A benchmark that failed midway leaves no database behind.
impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let (server, name) = (self.server.clone(), std::mem::take(&mut self.name));
        // Drop runs outside async: a private runtime on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(drop_database(&server, &name));
            }
        })
        .join();
    }
}

/// CPU time (user + system) of a process so far.
pub fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    });
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// Resident memory of a process, in bytes.
pub fn process_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    kib * 1024
}

/// The release hub, running in a process of its own on a fresh store.
pub struct Hub {
    child: Child,
    addr: String,
    dir: Option<TempDir>,
    pg: Option<PgDatabase>,
    extra: Vec<String>,
    pub http: reqwest::Client,
    /// From the process's start to its first ready `/readyz`.
    pub ready_after: Duration,
}

impl Hub {
    /// The release hub under test (`KUTANGA_BENCH_HUB`).
    pub fn binary() -> PathBuf {
        let binary = PathBuf::from(
            std::env::var("KUTANGA_BENCH_HUB")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/kutanga").to_owned()),
        );
        assert!(binary.exists(), "no hub at {} (cargo xtask bench builds it)", binary.display());
        binary
    }

    /// Starts the hub on a fresh SQLite file or PostgreSQL database, with extra options, and
    /// waits until it is ready.
    pub async fn start(backend: Backend, extra: &[&str]) -> Self {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        Self::launch(tempfile::tempdir().unwrap(), pg, extra.iter().map(|s| s.to_string()).collect()).await
    }

    async fn launch(dir: TempDir, pg: Option<PgDatabase>, extra: Vec<String>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(Self::binary());
        for (key, _) in std::env::vars() {
            if key.starts_with("KUTANGA_") {
                cmd.env_remove(key);
            }
        }
        cmd.args(["--data-dir", &dir.path().display().to_string(), "--bind", &addr])
            .args(["--admin-email", ADMIN_EMAIL, "--admin-password", ADMIN_PASSWORD])
            .args(["--shutdown-timeout", "3"])
            .env("KUTANGA_LOG", "warn")
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(pg) = &pg {
            cmd.args(["--database-url", &pg.url]);
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("the hub starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let mut hub = Self { child, addr, dir: Some(dir), pg, extra, http, ready_after: Duration::ZERO };
        while started.elapsed() < Duration::from_secs(60) {
            if hub.http.get(hub.url("/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                hub.ready_after = started.elapsed();
                return hub;
            }
            if let Ok(Some(status)) = hub.child.try_wait() {
                panic!("the hub exited before it was ready ({status})");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the hub was not ready within 60 s");
    }

    /// Stops the hub (SIGTERM) and starts it again on the same store.
    pub async fn restart(mut self) -> Self {
        self.terminate().await;
        let (dir, pg, extra) = (self.dir.take(), self.pg.take(), std::mem::take(&mut self.extra));
        Self::launch(dir.expect("a running hub has its store"), pg, extra).await
    }

    async fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    pub fn cpu(&self) -> Duration {
        process_cpu(self.pid())
    }

    pub fn rss(&self) -> u64 {
        process_rss(self.pid())
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self.http.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    pub async fn admin_token(&self) -> String {
        let res = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
                json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
            )
            .await;
        res["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("login failed: {res}")).to_owned()
    }

    /// A template of a sleeping process; its id.
    pub async fn create_template(&self, token: &str) -> Value {
        let def = "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"600\"]\n";
        let res = self
            .gql(Some(token), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": def }))
            .await;
        let template = res["data"]["createTemplate"]["id"].clone();
        assert!(template.is_string(), "no template: {res}");
        template
    }

    /// Creates `n` servers (not started) from one template of a sleeping process; their ids.
    pub async fn create_servers(&self, token: &str, n: usize) -> Vec<String> {
        let template = self.create_template(token).await;
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let res = self
                .gql(
                    Some(token),
                    "mutation($t: ID!, $n: String!) { createServer(input: { name: $n, templateId: $t }) { id } }",
                    json!({ "t": template, "n": format!("server {i:03}") }),
                )
                .await;
            ids.push(
                res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("no server: {res}")).to_owned(),
            );
        }
        ids
    }

    /// Stops the hub with SIGTERM, as a service manager would, and drops its database.
    pub async fn stop(mut self) {
        self.terminate().await;
        if let Some(pg) = self.pg.take() {
            pg.drop_now().await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
