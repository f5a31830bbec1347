//! The container image made by `cargo xtask image` (`cargo xtask test` makes it first and names it
//! in KUTANGA_TEST_IMAGE): run with podman as its unprivileged user, healthy by its own
//! HEALTHCHECK, serving the web app and the API through the published port, signed in to, and
//! stopped with SIGTERM within its timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const PASSWORD: &str = "a contained hub's first password";

fn podman(args: &[&str]) -> Output {
    let mut cmd = Command::new("podman");
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        cmd.env("CONTAINERS_CONF", concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/container/containers.conf"));
    }
    cmd.args(args).output().expect("podman")
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Removes the container (and its anonymous volume) however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-v", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_serves_and_stops() {
    let Ok(image) = std::env::var("KUTANGA_TEST_IMAGE") else {
        eprintln!("skipped: set KUTANGA_TEST_IMAGE to an image made by `cargo xtask image` (cargo xtask test does)");
        return;
    };
    let port = common::process::free_port();
    let name = format!("kutanga-test-{}", uuid::Uuid::new_v4().simple());
    let published = format!("127.0.0.1:{port}:8080");
    let password = format!("KUTANGA_ADMIN_PASSWORD={PASSWORD}");
    let out = podman(&["run", "-d", "--name", &name, "-p", &published, "-e", &password, &image]);
    assert!(out.status.success(), "{}", said(&out));
    let container = Container(name);

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(
            Instant::now() < deadline,
            "the contained hub never answered: {}",
            said(&podman(&["logs", &container.0]))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = podman(&["healthcheck", "run", &container.0]);
    assert!(health.status.success(), "its HEALTHCHECK (kutanga health): {}", said(&health));
    let user = podman(&["top", &container.0, "huser"]);
    let users = String::from_utf8_lossy(&user.stdout).into_owned();
    assert!(users.lines().skip(1).all(|u| u.trim() == "10001") && users.lines().count() > 1, "not root: {users}");

    let page = http.get(&base).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("kutanga-web"), "the web app, built in: {page}");
    let graphql = |token: Option<String>, body: Value| {
        let mut request = http.post(format!("{base}/graphql")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let res =
        graphql(None, json!({ "query": login, "variables": { "e": "admin@localhost.localdomain", "p": PASSWORD } }))
            .await;
    let token = res["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned();
    let me = graphql(Some(token), json!({ "query": "{ me { email } }" })).await;
    assert_eq!(me["data"]["me"]["email"], "admin@localhost.localdomain", "{me}");

    let stopping = Instant::now();
    let out = podman(&["stop", "-t", "10", &container.0]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(stopping.elapsed() < Duration::from_secs(10), "it stopped on SIGTERM, not by the timeout's SIGKILL");
    let code = podman(&["inspect", "--format", "{{.State.ExitCode}}", &container.0]);
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "0", "a clean exit");
}
