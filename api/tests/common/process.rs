//! The `kutanga` binary as a process of its own, for what an in-process hub cannot take: kill -9,
//! signals, a database that goes away under it.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, Store};

/// The `kutanga` binary under test, with none of the test's own `KUTANGA_*` variables (a
/// developer's settings would change what it does).
pub fn kutanga_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kutanga"));
    without_hub_settings(&mut cmd);
    cmd
}

/// Removes the test's own `KUTANGA_*` variables from what a command inherits.
pub fn without_hub_settings(cmd: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("KUTANGA_") {
            cmd.env_remove(key);
        }
    }
}

/// A free port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `kutanga serve` on the store's data dir (and database, on PostgreSQL).
pub struct HubProcess {
    pub child: Child,
    pub bind: String,
    http: reqwest::Client,
}

impl HubProcess {
    /// Starts the hub with extra options, waiting until it answers `/readyz`.
    pub async fn start(store: &Store, extra: &[&str]) -> Self {
        let database = store.pg.as_ref().map(|p| p.url.clone());
        Self::start_on(store.dir.path(), database.as_deref(), store.uid_base, extra).await
    }

    /// Starts the hub with `cwd` as its working folder.
    pub async fn start_in(store: &Store, cwd: &Path, extra: &[&str]) -> Self {
        let database = store.pg.as_ref().map(|p| p.url.clone());
        Self::start_with(store.dir.path(), database.as_deref(), store.uid_base, extra, Some(cwd)).await
    }

    /// Starts the hub on a data dir and an optional database URL.
    pub async fn start_on(dir: &Path, database: Option<&str>, uid_base: u32, extra: &[&str]) -> Self {
        Self::start_with(dir, database, uid_base, extra, None).await
    }

    async fn start_with(dir: &Path, database: Option<&str>, uid_base: u32, extra: &[&str], cwd: Option<&Path>) -> Self {
        let bind = format!("127.0.0.1:{}", free_port());
        let mut cmd = kutanga_command();
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        cmd.args(["serve", "--data-dir", dir.to_str().unwrap(), "--bind", &bind])
            .args(["--admin-email", ADMIN_EMAIL, "--admin-password", ADMIN_PASSWORD])
            .args(["--game-uid-base", &uid_base.to_string(), "--shutdown-timeout", "3"])
            .args(extra)
            .stdout(Stdio::null())
            // KUTANGA_TEST_HUB_LOG=1 shows the hub's log among the test's output.
            .stderr(if std::env::var_os("KUTANGA_TEST_HUB_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
        if let Some(url) = database {
            cmd.args(["--database-url", url]);
        }
        let hub = Self {
            child: cmd.spawn().unwrap(),
            bind,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        };
        hub.wait_ready(Duration::from_secs(60)).await;
        hub
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.bind)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.ready().await {
            assert!(Instant::now() < deadline, "the hub at {} is not ready after {within:?}", self.bind);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether `/readyz` answers 200 now.
    pub async fn ready(&self) -> bool {
        self.http.get(self.url("/readyz")).send().await.is_ok_and(|r| r.status().is_success())
    }

    /// POSTs a GraphQL request; an answer that did not come (the hub went away) is an `Err`.
    pub async fn try_gql(&self, token: Option<&str>, query: &str, variables: Value) -> reqwest::Result<Value> {
        let mut req = self.http.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await?.json().await
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.try_gql(token, query, variables).await.unwrap_or_else(|e| panic!("the hub at {} answers: {e}", self.bind))
    }

    pub async fn admin_token(&self) -> String {
        let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
        let res = self.gql(None, login, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
        res["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("login failed: {res}")).to_owned()
    }

    /// SIGKILL: nothing of the hub's runs after this.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
