//! The `kutanga` binary: help, bad configuration, the first start, and the admin rescue commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::{Backend, Store, TestHub, process::free_port};
use serde_json::json;

/// A command with a clean KUTANGA_* environment.
fn kutanga(args: &[&str]) -> Command {
    let mut cmd = common::process::kutanga_command();
    cmd.args(args);
    cmd
}

#[test]
fn help_documents_every_variable() {
    let out = kutanga(&["--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "KUTANGA_BIND",
        "KUTANGA_DATA_DIR",
        "KUTANGA_DATABASE_URL",
        "KUTANGA_MODE",
        "KUTANGA_JWT_SECRET",
        "KUTANGA_ADMIN_EMAIL",
        "KUTANGA_ADMIN_PASSWORD",
        "KUTANGA_CONFIG",
        "KUTANGA_LOG",
    ] {
        assert!(help.contains(var), "--help names {var}");
    }
    for sub in ["serve", "migrate", "schema", "admin"] {
        assert!(help.contains(sub), "--help lists {sub}");
    }
}

#[test]
fn a_bad_value_stops_the_start_and_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("KUTANGA_BIND", "nowhere"),
        ("KUTANGA_MODE", "staging"),
        ("KUTANGA_DATABASE_URL", "mysql://localhost/x"),
        ("KUTANGA_JWT_SECRET", "short"),
        ("KUTANGA_GRAPHQL_MAX_DEPTH", "0"),
        ("KUTANGA_TLS_CERT", "/etc/ssl/hub.pem"),
    ] {
        let out = kutanga(&["migrate", "--data-dir", dir.path().to_str().unwrap()]).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(var), "{var}={value}: {err}");
    }
    assert!(!dir.path().join("kutanga.db").exists(), "nothing was created");
}

#[test]
fn log_files_rotate_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = kutanga(&[
        "migrate",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--log-files",
        "true",
        "--log-format",
        "json",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let name = logs[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("kutanga.") && name.ends_with(".log"), "{name}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["level"].is_string() && first["fields"]["message"].is_string(), "{first}");
    // The console got JSON too.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{stderr}");
}

/// Reads a child's stdout lines on a thread.
fn lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hub did not become ready");
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("the hub did not stop within 10 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_prints_the_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let start = || {
        kutanga(&["serve", "--data-dir", dir.path().to_str().unwrap(), "--bind", &bind, "--web-dir", "/nonexistent"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut hub = start();
    let out = lines(&mut hub);
    wait_ready(port).await;
    let printed: Vec<String> = out.try_iter().collect();
    let password = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("password:").map(|p| p.trim().to_owned()))
        .unwrap_or_else(|| panic!("no password in {printed:?}"));
    assert!(password.len() >= 16);

    let client = reqwest::Client::new();
    let gql = |token: Option<String>, query: String| {
        let mut req = client.post(format!("http://{bind}/graphql")).json(&json!({ "query": query }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let login = gql(
        None,
        format!(
            "mutation {{ login(email: \"admin@localhost.localdomain\", password: \"{password}\") {{ accessToken }} }}"
        ),
    )
    .await;
    let token = login["data"]["login"]["accessToken"].as_str().unwrap().to_owned();
    let roles = gql(Some(token), "{ roles { name permissions } }".into()).await;
    let names: Vec<&str> =
        roles["data"]["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Admin", "Moderator", "User"]);
    assert!(terminate(&mut hub).success(), "SIGTERM is a clean stop");

    // The second start prints no password and keeps the first one.
    let mut hub = start();
    let out = lines(&mut hub);
    wait_ready(port).await;
    let printed: Vec<String> = out.try_iter().collect();
    assert!(printed.iter().all(|l| !l.contains("password")), "{printed:?}");
    let again = gql(
        None,
        format!(
            "mutation {{ login(email: \"admin@localhost.localdomain\", password: \"{password}\") {{ accessToken }} }}"
        ),
    )
    .await;
    assert!(again["data"]["login"]["accessToken"].is_string(), "{again}");
    assert!(terminate(&mut hub).success());
}

async fn admin_commands_rescue_accounts(backend: Backend) {
    let store = Store::new(backend).await;
    let mut base: Vec<String> = store.args();
    // The CLI does not bind; drop --bind and its value so nothing else interferes.
    let i = base.iter().position(|a| a == "--bind").unwrap();
    base.drain(i..i + 2);
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        kutanga(&args).output().unwrap()
    };
    let out = run(&["admin", "create-user", "--email", "Ops@Hub.Test", "--role", "Moderator"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("created user ops@hub.test"), "{stdout}");
    let generated = stdout.lines().find_map(|l| l.strip_prefix("password: ")).unwrap().to_owned();

    let out = run(&["admin", "create-user", "--email", "ops@hub.test", "--password", "a brand new passphrase"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already taken"));

    let out = run(&["admin", "create-user", "--email", "x@hub.test", "--password", "short"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));

    let out = run(&["admin", "reset-password", "--email", "ops@hub.test", "--password", "a brand new passphrase"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["admin", "reset-password", "--email", "ghost@hub.test", "--password", "a brand new passphrase"]);
    assert_eq!(out.status.code(), Some(1));

    let hub = TestHub::start_with(store, &[]).await;
    let res = hub
        .gql(
            None,
            "mutation($p: String!) { login(email: \"ops@hub.test\", password: $p) { accessToken } }",
            json!({ "p": generated }),
        )
        .await;
    assert_eq!(common::code(&res), "UNAUTHENTICATED", "the old password stopped working");
    let token = hub.login("ops@hub.test", "a brand new passphrase").await;
    let me = hub.gql(Some(&token), "{ me { roles { name } } }", json!({})).await;
    assert_eq!(me["data"]["me"]["roles"][0]["name"], "Moderator");
    let admin = hub.admin_token().await;
    let log = hub.gql(Some(&admin), "{ auditLog(first: 50) { action detail actor { id } } }", json!({})).await;
    let entries = log["data"]["auditLog"].as_array().unwrap_or_else(|| panic!("{log}"));
    let by_cli: Vec<&str> = entries
        .iter()
        .filter(|e| e["detail"].as_str().is_some_and(|d| d.contains("via command line")))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_cli, ["user.password_reset", "user.create"]);
    hub.stop().await;
}

on_both!(admin_commands_rescue_accounts);

/// A certificate authority of its own and a leaf for 127.0.0.1 signed by it, made with openssl
/// as an admin would: returns (the CA's PEM, the leaf's chain file, the leaf's key file).
fn certificate(dir: &std::path::Path, name: &str) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let path = |ext: &str| dir.join(format!("{name}.{ext}"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl (Debian package openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let p = |ext: &str| path(ext).to_str().unwrap().to_owned();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", &p("ca.key"), "-out", &p("ca.pem"), "-days", "2", "-subj", &format!("/CN={name} test CA")],
        ]
        .concat(),
    );
    openssl(&[&["req"][..], &ec, &["-keyout", &p("key"), "-out", &p("csr"), "-subj", "/CN=localhost"]].concat());
    std::fs::write(path("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("pem"),
        "-days",
        "2",
        "-extfile",
        &p("ext"),
    ]);
    (std::fs::read(path("ca.pem")).unwrap(), path("pem"), path("key"))
}

/// A hub process killed when the test ends, however it ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client that trusts only `ca` and opens a new connection for every request.
fn trusting(ca: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn ready_over(client: &reqwest::Client, port: u16) -> Option<reqwest::Response> {
    client.get(format!("https://127.0.0.1:{port}/readyz")).send().await.ok().filter(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_https_and_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_one, cert_one, key_one) = certificate(dir.path(), "one");
    let (ca_two, cert_two, key_two) = certificate(dir.path(), "two");
    let (cert, key) = (dir.path().join("hub.pem"), dir.path().join("hub.key"));
    let data = dir.path().join("data");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let start = || {
        kutanga(&["serve", "--data-dir", data.to_str().unwrap(), "--bind", &bind, "--web-dir", "/nonexistent"])
            .env("KUTANGA_TLS_CERT", &cert)
            .env("KUTANGA_TLS_KEY", &key)
            .env("KUTANGA_ADMIN_PASSWORD", "an admin passphrase")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // A key that is not the certificate's stops the start and says so.
    std::fs::copy(&cert_one, &cert).unwrap();
    std::fs::copy(&key_two, &key).unwrap();
    let out = start().wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("KUTANGA_TLS_KEY") && err.contains("does not fit"), "{err}");

    std::fs::copy(&key_one, &key).unwrap();
    let mut hub = Stopped(start());
    let hub = &mut hub.0;
    let (one, two) = (trusting(&ca_one), trusting(&ca_two));
    let mut answer = None;
    for _ in 0..100 {
        answer = ready_over(&one, port).await;
        if answer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the hub answers over HTTPS with the first certificate");
    assert_eq!(answer.headers()["strict-transport-security"], "max-age=31536000");
    assert!(ready_over(&two, port).await.is_none(), "the second CA is not trusted yet");
    let plain = reqwest::Client::new().get(format!("http://{bind}/readyz")).send().await;
    assert!(plain.is_err(), "no plain HTTP on a TLS port: {plain:?}");
    let login = one
        .post(format!("https://{bind}/graphql"))
        .json(&json!({ "query": "mutation { login(email: \"admin@localhost.localdomain\", password: \"an admin passphrase\") { accessToken } }" }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(login["data"]["login"]["accessToken"].is_string(), "{login}");

    let hangup = || Command::new("kill").args(["-HUP", &hub.id().to_string()]).status().unwrap();
    // A broken pair on SIGHUP leaves the certificate in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(hangup().success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ready_over(&one, port).await.is_some(), "a bad reload keeps the certificate in use");

    // The second pair is taken for new connections.
    std::fs::copy(&cert_two, &cert).unwrap();
    std::fs::copy(&key_two, &key).unwrap();
    assert!(hangup().success());
    let mut reloaded = false;
    for _ in 0..50 {
        if ready_over(&two, port).await.is_some() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "SIGHUP reloaded the certificate");
    assert!(ready_over(&one, port).await.is_none(), "the first certificate is no longer served");
    let status = terminate(hub);
    assert!(status.success(), "SIGTERM is a clean stop");
    let mut log = String::new();
    std::io::Read::read_to_string(hub.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("kept the TLS certificate in use") && log.contains("reloaded the TLS certificate"), "{log}");
}

/// The binary carries the web app: with no folder beside it, `/` is the app, its files come
/// with ETags (304 when the browser has them), compressed as the browser asks (release builds),
/// and any other page of the app is answered with `index.html`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_its_built_in_web_app() {
    let dist = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist/index.html");
    assert!(std::path::Path::new(dist).is_file(), "the web app is not built: run `cargo xtask web` first");
    let store = Store::new(Backend::Sqlite).await;
    let cwd = tempfile::tempdir().unwrap();
    let hub = common::process::HubProcess::start_in(&store, cwd.path(), &[]).await;
    let http = reqwest::Client::new();

    let index = http.get(hub.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    };
    assert_eq!(header(&index, "content-type"), "text/html");
    assert_eq!(header(&index, "cache-control"), "no-cache", "a new hub's app is seen on the next load");
    let policy = header(&index, "content-security-policy");
    let html = index.text().await.unwrap();
    assert!(policy.contains("'sha256-"), "{policy}");
    assert_eq!(policy, kutanga::http::content_security_policy(&html), "the policy allows this page's own script");
    let wasm = html
        .split(['"', '\''])
        .find(|s| s.starts_with("/kutanga-web-") && s.ends_with(".wasm"))
        .unwrap_or_else(|| panic!("no wasm named in {html}"))
        .to_owned();

    let file = http.get(hub.url(&wasm)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(header(&file, "content-type"), "application/wasm");
    assert!(header(&file, "cache-control").contains("immutable"), "its name changes with its content");
    let etag = header(&file, "etag");
    assert!(etag.len() > 10, "an ETag: {etag:?}");
    assert!(file.bytes().await.unwrap().starts_with(b"\0asm"));
    let again = http.get(hub.url(&wasm)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);

    let packed = http.get(hub.url(&wasm)).header("accept-encoding", "gzip").send().await.unwrap();
    if cfg!(debug_assertions) {
        // Debug builds embed the files as they are and send them so.
        assert_eq!(header(&packed, "content-encoding"), "");
    } else {
        assert_eq!(header(&packed, "content-encoding"), "gzip");
        assert_eq!(header(&packed, "vary"), "accept-encoding");
    }

    // A page of the app opened from its address (a reload, a bookmark).
    let page = http.get(hub.url("/servers/42")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), html);
    let post = http.post(hub.url("/servers/42")).send().await.unwrap();
    assert_eq!(post.status(), 405, "pages are read, never written to");
}

/// `check-config` shows what the hub would run with, secrets hidden, and what production mode
/// refuses; `serve` in production refuses the same and names the setting.
#[test]
fn check_config_shows_the_settings_and_what_production_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let data = dir.path().to_str().unwrap();
    let secret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let out = kutanga(&["check-config", "--data-dir", data, "--jwt-secret", secret, "--bind", "0.0.0.0:8080"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "development mode starts: {text}");
    assert!(!text.contains(secret), "a secret is shown: {text}");
    assert!(text.contains("jwt_secret") && text.contains("set"), "{text}");
    assert!(text.contains("0.0.0.0:8080  (command line)"), "{text}");
    assert!(text.contains("warning (refused in production): KUTANGA_BIND"), "{text}");

    let production = ["--mode", "production", "--data-dir", data, "--bind", "0.0.0.0:8080"];
    let out = kutanga(&[&["check-config"][..], &production].concat()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error: KUTANGA_BIND"), "{text}");
    assert!(text.contains("the hub would refuse to start"), "{text}");

    let out = kutanga(&[&["serve"][..], &production].concat()).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("KUTANGA_BIND") && said.contains("in clear"), "{said}");
}
