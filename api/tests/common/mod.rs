//! The test harness: a whole hub in-process, on SQLite or on a fresh PostgreSQL database.
//!
//! PostgreSQL comes from KUTANGA_TEST_DATABASE_URL (a server URL such as
//! postgres://postgres@127.0.0.1:5432/postgres); each hub gets its own uniquely named database,
//! dropped when the hub stops. Without the variable, PostgreSQL tests fail and say how to set it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod process;

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use kutanga::{App, cli::Cli};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@hub.test";
pub const ADMIN_PASSWORD: &str = "a long admin passphrase";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` variants of an async test function `fn(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// A uniquely named PostgreSQL database, dropped with the value.
pub struct PgDatabase {
    server_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let server_url = std::env::var("KUTANGA_TEST_DATABASE_URL").expect(
            "KUTANGA_TEST_DATABASE_URL is not set: point it at a PostgreSQL server, e.g. \
             postgres://postgres@127.0.0.1:5432/postgres (cargo xtask test sets it)",
        );
        let name = format!("kutanga_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&server_url).await.expect("connect to KUTANGA_TEST_DATABASE_URL");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        conn.close().await.ok();
        let url = match server_url.rsplit_once('/') {
            Some((base, _)) if base.contains("://") && base.len() > "postgres://".len() => format!("{base}/{name}"),
            _ => format!("{server_url}/{name}"),
        };
        Self { server_url, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop runs outside async; use a private runtime on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&server_url).await {
                    let _ =
                        conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// The resident memory of this test process (an in-process hub runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Where a hub keeps its data: a temp dir and, on PostgreSQL, a database.
pub struct Store {
    pub backend: Backend,
    pub dir: TempDir,
    pub pg: Option<PgDatabase>,
    /// The first UID of this hub's game servers: hubs running side by side (tests in parallel)
    /// never share a server's UID, so one never sweeps another's processes.
    pub uid_base: u32,
}

impl Store {
    pub async fn new(backend: Backend) -> Self {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        let dir = tempfile::tempdir().unwrap();
        // The game user must be able to reach the servers' folders inside.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let uid_base = 1_000_000_000 + (uuid::Uuid::new_v4().as_u128() % 900) as u32 * 1_000_000;
        Self { backend, dir, pg, uid_base }
    }

    /// The command-line arguments that point a hub at this store.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_owned(),
            self.dir.path().display().to_string(),
            "--admin-email".to_owned(),
            ADMIN_EMAIL.to_owned(),
            "--admin-password".to_owned(),
            ADMIN_PASSWORD.to_owned(),
            "--bind".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--shutdown-timeout".to_owned(),
            "3".to_owned(),
            "--game-uid-base".to_owned(),
            self.uid_base.to_string(),
        ];
        if let Some(pg) = &self.pg {
            args.extend(["--database-url".to_owned(), pg.url.clone()]);
        }
        args
    }
}

/// A running hub.
pub struct TestHub {
    pub app: App,
    pub addr: SocketAddr,
    store: Option<Store>,
    pub http: reqwest::Client,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestHub {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(Store::new(backend).await, &[]).await
    }

    /// Starts a hub on `store` with extra command-line options.
    pub async fn start_with(store: Store, extra: &[&str]) -> Self {
        Self::start_at(store, extra, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts a hub listening on `addr` (a restart on the address the hub had, for clients that
    /// reconnect).
    pub async fn start_at(store: Store, extra: &[&str], addr: SocketAddr) -> Self {
        let mut args: Vec<OsString> = vec!["kutanga".into()];
        args.extend(store.args().into_iter().map(OsString::from));
        args.extend(extra.iter().map(OsString::from));
        let cli = Cli::parse_args(args).expect("test settings parse");
        let (app, _) = App::build(cli.settings).await.expect("the hub builds");
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(app.clone().serve(listener));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { app, addr, store: Some(store), http, server: Some(server) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// POSTs a GraphQL request and returns the JSON answer.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self.http.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    /// Signs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        res["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("login failed: {res}")).to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user with the given roles through the service layer (the accounts API comes
    /// with its own issue) and returns their token.
    pub async fn user_with_roles(&self, email: &str, roles: &[&str]) -> String {
        let new = kutanga::users::NewUser {
            email: email.into(),
            password: "another long passphrase".into(),
            display_name: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        kutanga::users::create(&self.app.services, &kutanga::users::Origin::default(), new, None).await.unwrap();
        self.login(email, "another long passphrase").await
    }

    /// Stops the hub (graceful shutdown) after killing the game servers it runs, and returns its
    /// store for a restart.
    pub async fn stop(self) -> Store {
        self.app.services.supervisor.kill_all_now();
        self.stop_keeping_servers().await
    }

    /// Stops the hub and leaves its game servers running, as `kutanga serve` does on SIGTERM.
    pub async fn stop_keeping_servers(mut self) -> Store {
        self.app.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the hub stops within its shutdown timeout")
                .unwrap()
                .unwrap();
        }
        self.store.take().expect("the store is taken once")
    }

    /// Creates (without starting it) a server that keeps one core busy, from a template made for
    /// it; returns its id.
    pub async fn create_burner(&self, admin: &str) -> String {
        let def = "name = \"Burner\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"while :; do :; done\"]\n";
        self.create_server_from(admin, "burn", def).await
    }

    /// Creates a template from `definition` and a server named `name` from it; returns its id.
    pub async fn create_server_from(&self, admin: &str, name: &str, definition: &str) -> String {
        let res = self
            .gql(
                Some(admin),
                "mutation($d: String!) { createTemplate(definition: $d) { id } }",
                json!({ "d": definition }),
            )
            .await;
        let tpl = res["data"]["createTemplate"]["id"].clone();
        assert!(tpl.is_string(), "no template: {res}");
        let res = self
            .gql(
                Some(admin),
                "mutation($t: ID!, $n: String!) { createServer(input: { name: $n, templateId: $t }) { id } }",
                json!({ "t": tpl, "n": name }),
            )
            .await;
        res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("no server: {res}")).to_owned()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.store.as_ref().expect("running hub has a store").dir.path().to_owned()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if self.server.is_some() {
            // A test that failed midway: leave no game running.
            self.app.services.supervisor.kill_all_now();
        }
        self.app.shutdown.cancel();
    }
}

/// The `extensions.code` of the first error.
pub fn code(res: &Value) -> &str {
    res["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {res}"))
}

/// A minimal SMTP server that accepts every message and keeps it, for mail tests.
pub struct SmtpSink {
    pub port: u16,
    pub messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ready\r\n").await.ok();
                    let mut in_data = false;
                    let mut body = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if in_data {
                            if line == "." {
                                in_data = false;
                                store.lock().unwrap().push(std::mem::take(&mut body));
                                write.write_all(b"250 queued\r\n").await.ok();
                            } else {
                                body.push_str(&line);
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok();
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        write.write_all(reply).await.ok();
                    }
                });
            }
        });
        Self { port, messages }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Waits up to 10 s for the n-th message; returns it with quoted-printable soft breaks and
    /// `=3D` undone.
    pub async fn message(&self, n: usize) -> String {
        for _ in 0..100 {
            if let Some(m) = self.messages.lock().unwrap().get(n) {
                return m.replace("=\n", "").replace("=3D", "=");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail #{n} arrived");
    }
}

/// Runs SQL on the hub's database directly (for setting up what the API cannot, yet).
pub async fn sql(hub: &TestHub, statement: &str) {
    use sea_orm::ConnectionTrait;
    let db = &hub.app.services.db;
    db.conn().execute_unprepared(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// A WebSocket to the hub.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection, initialised with the token (its ack read).
pub async fn ws_as(hub: &TestHub, token: &str) -> Ws {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let mut req = hub.ws_url().into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws
}
