//! The Debian package made by `cargo xtask package` (`cargo xtask test` makes it first and names
//! it in KUTANGA_TEST_DEB): installed with dpkg on this machine, its unit checked by
//! `systemd-analyze verify`, the hub started as the unit starts it (systemd does not run here:
//! its user, capabilities and environment, through setpriv), signed in to, a game started under
//! its own identity, upgraded to the next version with the game left running and taken back,
//! removed, and purged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const UNIT: &str = "/usr/lib/systemd/system/kutanga.service";
const PASSWORD: &str = "a packaged hub's first password";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

/// A line of the unit's [Service] section.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .trim()
        .to_owned()
}

/// The hub as the unit starts it: its ExecStart, as its User, with its AmbientCapabilities and
/// Environment (plus a port and a first password of the test's).
fn start_as_the_unit(port: u16, uid_base: u32) -> Child {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let user = unit_value(&unit, "User");
    let caps: Vec<String> = unit_value(&unit, "AmbientCapabilities")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let caps = caps.join(",");
    let exec = unit_value(&unit, "ExecStart");
    let (key, value) =
        unit_value(&unit, "Environment").split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", &user, "--regid", &user, "--init-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg("--")
        .args(exec.split_whitespace());
    common::process::without_hub_settings(&mut cmd);
    cmd.env(key, value)
        .env("KUTANGA_BIND", format!("127.0.0.1:{port}"))
        .env("KUTANGA_ADMIN_PASSWORD", PASSWORD)
        .env("KUTANGA_GAME_UID_BASE", uid_base.to_string())
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("KUTANGA_TEST_HUB_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
    cmd.spawn().unwrap()
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn ready(&self, hub: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = hub.try_wait().unwrap() {
                panic!("the packaged hub exited: {status} (KUTANGA_TEST_HUB_LOG=1 shows its log)");
            }
            let ready = self.http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "the packaged hub is not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request =
            self.http.post(format!("{}/graphql", self.base)).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn sign_in(&self) -> String {
        let res = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
                json!({ "e": "admin@localhost.localdomain", "p": PASSWORD }),
            )
            .await;
        res["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned()
    }

    async fn server(&self, token: &str, id: &str) -> Value {
        let res = self.gql(Some(token), "query($id: ID!) { server(id: $id) { state pid } }", json!({ "id": id })).await;
        res["data"]["server"].clone()
    }
}

fn stop(mut hub: Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(hub.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the hub did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process's capability set from /proc (`CapEff`, `CapAmb`...).
fn capabilities(pid: i64, set: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix(&format!("{set}:"))).unwrap();
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

fn uid_of(pid: i64) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

/// The same package as the next version (its control file's Version bumped), as an upgrade.
fn next_version(deb: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    ok("dpkg-deb", &["-R", deb.to_str().unwrap(), tree.to_str().unwrap()]);
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let version = text.lines().find_map(|l| l.strip_prefix("Version: ")).unwrap().to_owned();
    std::fs::write(&control, text.replace(&format!("Version: {version}"), &format!("Version: {version}+next1")))
        .unwrap();
    let next = dir.join("next.deb");
    ok("dpkg-deb", &["-b", "--root-owner-group", tree.to_str().unwrap(), next.to_str().unwrap()]);
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_installs_runs_upgrades_and_purges() {
    let Some(deb) = std::env::var_os("KUTANGA_TEST_DEB").map(PathBuf::from) else {
        eprintln!("skipped: set KUTANGA_TEST_DEB to a package made by `cargo xtask package` (cargo xtask test does)");
        return;
    };
    assert!(rustix::process::geteuid().is_root(), "installing a package takes root");
    let _ = run("dpkg", &["--purge", "kutanga"]);
    let _ = std::fs::remove_dir_all("/var/lib/kutanga");

    // Installed twice: the maintainer scripts are safe to run again.
    ok("dpkg", &["-i", deb.to_str().unwrap()]);
    ok("dpkg", &["-i", deb.to_str().unwrap()]);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert!(Path::new("/usr/bin/kutanga").is_file());
    for shipped in [
        "/usr/share/kutanga/grafana/kutanga-hub.json",
        "/usr/share/doc/kutanga/docs/admin-guide.md",
        "/usr/share/doc/kutanga/docs/security.md",
    ] {
        assert!(Path::new(shipped).is_file(), "the package ships {shipped}");
    }
    let kutanga = ok("getent", &["passwd", "kutanga"]);
    let kutanga_uid: u32 = kutanga.split(':').nth(2).unwrap().parse().unwrap();
    let data = std::fs::metadata("/var/lib/kutanga").unwrap();
    assert_eq!((data.uid(), data.permissions().mode() & 0o777), (kutanga_uid, 0o711), "the data dir");
    let settings = std::fs::metadata("/etc/kutanga/kutanga.toml").unwrap();
    assert_eq!(settings.permissions().mode() & 0o777, 0o640, "the settings may hold secrets");
    let verify = run("systemd-analyze", &["verify", UNIT]);
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(unit_value(&unit, "KillMode"), "process", "the games outlive a restart of the hub");

    // Started as the unit starts it; a game runs under its own identity, with no capability.
    let port = common::process::free_port();
    let uid_base = 1_000_000_000 + (uuid::Uuid::new_v4().as_u128() % 900) as u32 * 1_000_000;
    let client = Client { http: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}") };
    let mut hub = start_as_the_unit(port, uid_base);
    client.ready(&mut hub).await;
    let token = client.sign_in().await;
    let template = client
        .gql(
            Some(&token),
            "mutation($d: String!) { createTemplate(definition: $d) { id } }",
            json!({ "d": "name = \"Packaged sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"600\"]\n" }),
        )
        .await;
    let template = template["data"]["createTemplate"]["id"].clone();
    assert!(template.is_string(), "{template}");
    let created = client
        .gql(
            Some(&token),
            "mutation($t: ID!) { createServer(input: { name: \"kept\", templateId: $t }) { id } }",
            json!({ "t": template }),
        )
        .await;
    let id = created["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let started =
        client.gql(Some(&token), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
    assert!(started["errors"].is_null(), "{started}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let server = client.server(&token, &id).await;
        if server["state"] == "RUNNING"
            && let Some(pid) = server["pid"].as_i64()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the game never ran: {server}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let game_uid = uid_of(pid);
    assert_ne!(game_uid, kutanga_uid, "a game runs as a user of its own");
    assert!(game_uid >= uid_base, "{game_uid}");
    let caps = ["CapPrm", "CapEff", "CapInh", "CapAmb"].map(|set| capabilities(pid, set));
    assert_eq!(caps, [0; 4], "a game inherits no capability (permitted, effective, inheritable, ambient)");
    let hub_pid = i64::from(hub.id());
    assert_eq!(uid_of(hub_pid), kutanga_uid, "the hub runs as kutanga");

    // An upgrade: the hub stopped (as systemd would), the next version installed, the hub
    // started again; the game ran on through it and is taken back.
    stop(hub);
    let dir = tempfile::tempdir().unwrap();
    let next = next_version(&deb, dir.path());
    ok("dpkg", &["-i", next.to_str().unwrap()]);
    assert!(ok("dpkg-query", &["-W", "-f=${Version}", "kutanga"]).ends_with("+next1"));
    // (Without systemd nothing here would stop it; what would is KillMode=process, checked above.)
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "the game outlived the hub's upgrade");
    let mut hub = start_as_the_unit(port, uid_base);
    client.ready(&mut hub).await;
    let token = client.sign_in().await;
    let server = client.server(&token, &id).await;
    assert_eq!((server["state"].as_str(), server["pid"].as_i64()), (Some("RUNNING"), Some(pid)), "taken back");
    let stopped =
        client.gql(Some(&token), "mutation($id: ID!) { killServer(id: $id) { state } }", json!({ "id": id })).await;
    assert!(stopped["errors"].is_null(), "{stopped}");
    stop(hub);

    // Removed: the program goes, the settings and the data stay. Purged: they go too.
    ok("dpkg", &["-r", "kutanga"]);
    assert!(!Path::new("/usr/bin/kutanga").exists());
    assert!(Path::new("/etc/kutanga/kutanga.toml").exists(), "remove keeps the settings");
    assert!(Path::new("/var/lib/kutanga/kutanga.db").exists(), "remove keeps the data");
    ok("dpkg", &["--purge", "kutanga"]);
    assert!(!Path::new("/etc/kutanga").exists() && !Path::new("/var/lib/kutanga").exists(), "purge takes both");
    assert!(run("getent", &["passwd", "kutanga"]).status.success(), "the system user stays, as Debian's do");
}
