//! The supervisor with real game servers from Debian (`minetest-server`, `teeworlds-server`,
//! `freeciv-server`; `cargo xtask test` installs them): start to RUNNING by the ready matcher,
//! console lines on the subscription, commands on stdin, stop by command, by signal, kill,
//! crashes with auto-restart, a crash loop, a start that never gets ready, and a hub restart
//! that kills nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestHub, code, ws_as};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CREATE: &str = "mutation($i: CreateServerInput!) { createServer(input: $i) { id } }";

/// A port for this test and backend, so parallel tests never collide.
fn port(base: u16, backend: Backend) -> String {
    (base + if backend == Backend::Postgres { 500 } else { 0 }).to_string()
}

async fn template_id(hub: &TestHub, token: &str, name: &str) -> String {
    let res = hub.gql(Some(token), "{ templates { id name } }", json!({})).await;
    res["data"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create(hub: &TestHub, token: &str, template: &str, name: &str, vars: Value) -> String {
    let tpl = template_id(hub, token, template).await;
    let res =
        hub.gql(Some(token), CREATE, json!({ "i": { "name": name, "templateId": tpl, "variables": vars } })).await;
    res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned()
}

async fn server(hub: &TestHub, token: &str, id: &str) -> Value {
    let q = "query($id: ID!) { server(id: $id) { state pid lastExitCode consoleTail(lines: 200) { stream line } } }";
    hub.gql(Some(token), q, json!({ "id": id })).await["data"]["server"].clone()
}

/// Waits until the server is in `state`; fails with its console after `secs`.
async fn wait_state(hub: &TestHub, token: &str, id: &str, state: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = server(hub, token, id).await;
        if s["state"] == state {
            return s;
        }
        assert!(Instant::now() < deadline, "not {state} after {secs} s: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn act(hub: &TestHub, token: &str, what: &str, id: &str) -> Value {
    let res = hub
        .gql(Some(token), &format!("mutation($id: ID!) {{ {what}(id: $id) {{ state }} }}"), json!({ "id": id }))
        .await;
    assert!(res["errors"].is_null(), "{what}: {res}");
    res["data"][what].clone()
}

fn console_has(s: &Value, needle: &str) -> bool {
    s["consoleTail"].as_array().unwrap().iter().any(|l| l["line"].as_str().unwrap().contains(needle))
}

async fn freeciv_runs_takes_commands_and_stops_by_command(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let id = create(&hub, &admin, "Freeciv", "civ", json!([{ "key": "PORT", "value": port(5600, backend) }])).await;

    // Watch the console live over the WebSocket.
    let mut ws = ws_as(&hub, &admin).await;
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": format!("subscription {{ serverConsole(serverId: \"{id}\") {{ stream line }} }}") } });
    ws.send(Message::Text(sub.to_string().into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = act(&hub, &admin, "startServer", &id).await;
    assert_eq!(started["state"], "STARTING");
    let running = wait_state(&hub, &admin, &id, "RUNNING", 60).await;
    assert!(console_has(&running, "Now accepting new client connections"), "{running}");
    let pid = running["pid"].as_i64().unwrap();
    // It runs as the unprivileged game user, never as root.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().nth(1).unwrap().to_owned();
    if rustix::process::geteuid().is_root() {
        assert_ne!(uid, "0", "a game never runs as root");
    }
    // Someone without access to this server hears nothing: the subscription is refused.
    let stranger = hub.user_with_roles("stranger@hub.test", &["User"]).await;
    let mut other = ws_as(&hub, &stranger).await;
    for (n, q) in [
        ("1", format!("subscription {{ serverConsole(serverId: \"{id}\") {{ line }} }}")),
        ("2", format!("subscription {{ serverState(serverId: \"{id}\") {{ state }} }}")),
    ] {
        let sub = json!({ "id": n, "type": "subscribe", "payload": { "query": q } });
        other.send(Message::Text(sub.to_string().into())).await.unwrap();
        // The answer for this id (the previous one's `complete` may come first).
        let msg = loop {
            let Some(Ok(Message::Text(t))) = other.next().await else { panic!("no answer") };
            let msg: Value = serde_json::from_str(t.as_str()).unwrap();
            if msg["id"] == n && msg["type"] == "next" {
                break msg;
            }
        };
        assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{msg}");
    }
    let tail = hub
        .gql(Some(&stranger), "query($id: ID!) { server(id: $id) { consoleTail { line } } }", json!({ "id": id }))
        .await;
    assert_eq!(tail["data"]["server"], Value::Null, "{tail}");
    let res = hub
        .gql(
            Some(&stranger),
            "mutation($id: ID!) { sendServerCommand(id: $id, command: \"/quit\") }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&res), "NOT_FOUND");
    let res =
        hub.gql(Some(&stranger), "mutation($id: ID!) { stopServer(id: $id) { state } }", json!({ "id": id })).await;
    assert_eq!(code(&res), "NOT_FOUND");

    // A second start is a CONFLICT.
    let res = hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
    assert_eq!(code(&res), "CONFLICT");
    let res = hub.gql(Some(&admin), "mutation($id: ID!) { deleteServer(id: $id) }", json!({ "id": id })).await;
    assert_eq!(code(&res), "CONFLICT", "a running server is not deleted");

    // A command on stdin, and its answer read back.
    let res = hub
        .gql(Some(&admin), "mutation($id: ID!) { sendServerCommand(id: $id, command: \"/list\") }", json!({ "id": id }))
        .await;
    assert_eq!(res["data"]["sendServerCommand"], true, "{res}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut saw_stdin, mut saw_answer) = (false, false);
    while !(saw_stdin && saw_answer) {
        assert!(Instant::now() < deadline, "no answer to /list on the subscription");
        let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_secs(15), ws.next()).await else {
            continue;
        };
        let msg: Value = serde_json::from_str(t.as_str()).unwrap();
        let line = &msg["payload"]["data"]["serverConsole"];
        saw_stdin |= line["stream"] == "stdin" && line["line"] == "/list";
        saw_answer |= line["line"].as_str().is_some_and(|l| l.contains("List of players"));
    }
    let bad = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { sendServerCommand(id: $id, command: \"/list\\n/quit\") }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!((code(&bad), bad["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("command")));

    // Stop: freeciv's `/quit` on stdin ends it cleanly.
    assert_eq!(act(&hub, &admin, "stopServer", &id).await["state"], "STOPPING");
    let stopped = wait_state(&hub, &admin, &id, "OFFLINE", 30).await;
    assert!(console_has(&stopped, "Goodbye"), "stopped by its command: {stopped}");
    let echoed =
        stopped["consoleTail"].as_array().unwrap().iter().any(|l| l["stream"] == "stdin" && l["line"] == "/quit");
    assert!(echoed, "the stop command shows on the console as a person's would: {stopped}");
    assert_eq!(stopped["lastExitCode"], 0);
    let log = hub.gql(Some(&admin), "{ auditLog(first: 20) { action } }", json!({})).await;
    let actions: Vec<&str> =
        log["data"]["auditLog"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["server.start", "server.ready", "server.command", "server.stop", "server.stopped"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    hub.stop().await;
}

async fn luanti_stops_by_signal_and_restarts_after_a_crash(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let id =
        create(&hub, &admin, "Luanti (Minetest)", "world", json!([{ "key": "PORT", "value": port(30200, backend) }]))
            .await;
    act(&hub, &admin, "startServer", &id).await;
    let running = wait_state(&hub, &admin, &id, "RUNNING", 60).await;
    assert!(console_has(&running, "listening on"), "{running}");
    let pid = running["pid"].as_i64().unwrap() as i32;

    // kill -9 the game: a crash, restarted with a new pid.
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let crashed = wait_state(&hub, &admin, &id, "CRASHED", 20).await;
    assert!(console_has(&crashed, "killed by signal 9"), "{crashed}");
    let again = wait_state(&hub, &admin, &id, "RUNNING", 60).await;
    assert_ne!(again["pid"].as_i64().unwrap() as i32, pid);

    // Stop by signal (Luanti has no console command).
    act(&hub, &admin, "stopServer", &id).await;
    wait_state(&hub, &admin, &id, "OFFLINE", 30).await;
    hub.stop().await;
}

async fn teeworlds_is_killed_at_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let id = create(&hub, &admin, "Teeworlds", "tee", json!([{ "key": "PORT", "value": port(8500, backend) }])).await;
    act(&hub, &admin, "startServer", &id).await;
    let running = wait_state(&hub, &admin, &id, "RUNNING", 60).await;
    assert!(console_has(&running, "server name is 'Kutanga Teeworlds'"), "{running}");
    let started = Instant::now();
    act(&hub, &admin, "killServer", &id).await;
    wait_state(&hub, &admin, &id, "OFFLINE", 10).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    hub.stop().await;
}

/// The processes whose command line holds `marker`.
fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker)))
        .count()
}

/// A custom template for the failure cases.
async fn fx_custom(
    hub: &TestHub,
    token: &str,
    name: &str,
    command: &str,
    args: &[&str],
    ready: Option<(&str, u64)>,
) -> String {
    let ready = ready.map(|(p, t)| format!("[ready]\npatterns = [\"{p}\"]\ntimeout = {t}\n")).unwrap_or_default();
    let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
    let def = format!(
        "name = \"{name}\"\nexecutable = \"{command}\"\nargs = [{}]\n{ready}[stop]\nsignal_timeout = 2\n[crash]\nmax_restarts = 2\nwindow_seconds = 60\nbackoff_seconds = 1\n",
        args.join(", ")
    );
    let res = hub
        .gql(Some(token), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": def }))
        .await;
    let tpl = res["data"]["createTemplate"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned();
    let res = hub.gql(Some(token), CREATE, json!({ "i": { "name": name, "templateId": tpl } })).await;
    res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned()
}

async fn a_crash_loop_ends_in_crashed(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let id = fx_custom(&hub, &admin, "Faller", "/bin/sh", &["-c", "echo about to fail; exit 3"], None).await;
    act(&hub, &admin, "startServer", &id).await;
    // Three crashes (the first and two restarts), then it stays down and says why.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = server(&hub, &admin, &id).await;
        if s["state"] == "CRASHED" && console_has(&s, "stays stopped") {
            assert_eq!(s["lastExitCode"], 3);
            assert!(console_has(&s, "exited with code 3"), "{s}");
            assert!(console_has(&s, "about to fail"), "the last lines are kept: {s}");
            break;
        }
        assert!(Instant::now() < deadline, "no crash-loop verdict: {s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server(&hub, &admin, &id).await["state"], "CRASHED", "no more restarts");
    let log = hub
        .gql(Some(&admin), "{ auditLog(first: 50, filter: { action: \"server.crash\" }) { outcome } }", json!({}))
        .await;
    assert_eq!(log["data"]["auditLog"].as_array().unwrap().len(), 3, "{log}");
    hub.stop().await;
}

async fn a_start_that_never_gets_ready_is_stopped(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let id = fx_custom(
        &hub,
        &admin,
        "Sleeper",
        "/bin/sh",
        &["-c", "echo warming up; exec sleep 120"],
        Some(("never printed", 2)),
    )
    .await;
    act(&hub, &admin, "startServer", &id).await;
    let s = wait_state(&hub, &admin, &id, "CRASHED", 20).await;
    assert!(console_has(&s, "did not become ready within 2 s"), "{s}");
    assert!(console_has(&s, "warming up"), "{s}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server(&hub, &admin, &id).await["state"], "CRASHED", "not restarted");
    hub.stop().await;
}

async fn a_hub_restart_kills_nothing(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let civ = create(&hub, &admin, "Freeciv", "civ", json!([{ "key": "PORT", "value": port(5700, backend) }])).await;
    let tee = create(&hub, &admin, "Teeworlds", "tee", json!([{ "key": "PORT", "value": port(8600, backend) }])).await;
    let mt = create(&hub, &admin, "Luanti (Minetest)", "mt", json!([{ "key": "PORT", "value": port(30400, backend) }]))
        .await;
    let mut pids = Vec::new();
    for id in [&civ, &tee, &mt] {
        act(&hub, &admin, "startServer", id).await;
    }
    for id in [&civ, &tee, &mt] {
        pids.push(wait_state(&hub, &admin, id, "RUNNING", 60).await["pid"].clone());
    }
    let store = hub.stop_keeping_servers().await;

    let hub = TestHub::start_with(store, &[]).await;
    let admin = hub.admin_token().await;
    for (id, pid) in [&civ, &tee, &mt].iter().zip(&pids) {
        let s = server(&hub, &admin, id).await;
        assert_eq!((&s["state"], &s["pid"]), (&json!("RUNNING"), pid), "{s}");
    }
    // Commands still reach freeciv, and its answer is captured.
    let res = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { sendServerCommand(id: $id, command: \"/list\") }",
            json!({ "id": civ }),
        )
        .await;
    assert_eq!(res["data"]["sendServerCommand"], true, "{res}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !console_has(&server(&hub, &admin, &civ).await, "List of players") {
        assert!(Instant::now() < deadline, "the console of an adopted server does not flow");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And they still stop.
    act(&hub, &admin, "stopServer", &civ).await;
    wait_state(&hub, &admin, &civ, "OFFLINE", 30).await;
    hub.stop().await;
}

async fn servers_can_start_with_the_hub_and_stop_with_it(backend: Backend) {
    let hub = TestHub::start_with(common::Store::new(backend).await, &["--stop-servers-on-shutdown", "true"]).await;
    let admin = hub.admin_token().await;
    let tpl = template_id(&hub, &admin, "Teeworlds").await;
    let vars = json!([{ "key": "PORT", "value": port(8700, backend) }]);
    let res = hub
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": "boot", "templateId": tpl, "variables": vars, "startWithHub": true } }),
        )
        .await;
    let id = res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned();
    act(&hub, &admin, "startServer", &id).await;
    let pid = wait_state(&hub, &admin, &id, "RUNNING", 60).await["pid"].as_i64().unwrap();
    // A graceful shutdown with the option stops the game and records it.
    let store = hub.stop_keeping_servers().await;
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the game was stopped with the hub");

    // The next start starts it again, as marked.
    let hub = TestHub::start_with(store, &[]).await;
    let admin = hub.admin_token().await;
    let s = wait_state(&hub, &admin, &id, "RUNNING", 60).await;
    assert_ne!(s["pid"].as_i64().unwrap(), pid);
    let log = hub
        .gql(Some(&admin), "{ auditLog(first: 100, filter: { action: \"server.stopped\" }) { id } }", json!({}))
        .await;
    assert_eq!(log["data"]["auditLog"].as_array().unwrap().len(), 1, "{log}");
    hub.stop().await;
}

on_both!(
    servers_can_start_with_the_hub_and_stop_with_it,
    freeciv_runs_takes_commands_and_stops_by_command,
    luanti_stops_by_signal_and_restarts_after_a_crash,
    teeworlds_is_killed_at_once,
    a_crash_loop_ends_in_crashed,
    a_start_that_never_gets_ready_is_stopped,
    a_hub_restart_kills_nothing,
);

mod limits {
    use super::*;

    async fn limits_and_the_quota_hold(backend: Backend) {
        let hub = TestHub::start_with(
            common::Store::new(backend).await,
            &["--disk-quota-mb", "2", "--status-interval", "1", "--game-open-files", "777"],
        )
        .await;
        let admin = hub.admin_token().await;
        // The open-files limit reaches the game.
        let id = fx_custom(&hub, &admin, "Ulimit", "/bin/sh", &["-c", "echo nofile=$(ulimit -n); exec sleep 60"], None)
            .await;
        act(&hub, &admin, "startServer", &id).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !console_has(&server(&hub, &admin, &id).await, "nofile=777") {
            assert!(Instant::now() < deadline, "{}", server(&hub, &admin, &id).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        act(&hub, &admin, "killServer", &id).await;

        // A memory limit: an allocation past it fails, and the server crashes instead of the host.
        let id = fx_custom(
            &hub,
            &admin,
            "Hog",
            "/usr/bin/python3",
            &["-c", "b = bytearray(400 * 1024 * 1024); print('allocated')"],
            None,
        )
        .await;
        let res = hub
            .gql(Some(&admin), "mutation($id: ID!) { updateServer(id: $id, input: { memoryLimitMb: 128, autoRestart: false }) { memoryLimitMb } }", json!({ "id": id }))
            .await;
        assert_eq!(res["data"]["updateServer"]["memoryLimitMb"], 128, "{res}");
        act(&hub, &admin, "startServer", &id).await;
        let s = wait_state(&hub, &admin, &id, "CRASHED", 20).await;
        // With a memory cgroup the kernel kills it and the crash says so; with RLIMIT_AS (no
        // cgroup) the allocation fails inside the game.
        if kutanga::supervisor::cgroup::Cgroups::detect(&hub.data_dir()).available() {
            assert!(console_has(&s, "out of memory"), "{s}");
        } else {
            assert!(console_has(&s, "MemoryError"), "{s}");
        }
        assert!(!console_has(&s, "allocated"), "{s}");

        // Writing past the disk quota: warned on the console, then stopped.
        let id = fx_custom(
            &hub,
            &admin,
            "Filler",
            "/bin/sh",
            &["-c", "head -c 3000000 /dev/urandom > big.bin; echo filled; exec sleep 60"],
            None,
        )
        .await;
        act(&hub, &admin, "startServer", &id).await;
        let s = wait_state(&hub, &admin, &id, "OFFLINE", 20).await;
        assert!(console_has(&s, "over its disk quota"), "{s}");
        // And it cannot start again while over.
        let res =
            hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
        assert_eq!(code(&res), "CONFLICT");
        assert!(res["errors"][0]["message"].as_str().unwrap().contains("quota"), "{res}");
        hub.stop().await;
    }

    async fn a_template_sets_the_working_folder(backend: Backend) {
        let hub = TestHub::start(backend).await;
        let admin = hub.admin_token().await;
        let def = "name = \"Where\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"echo cwd=$(pwd); exec sleep 60\"]\nworking_dir = \"game/bin\"\n";
        let res = hub
            .gql(Some(&admin), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": def }))
            .await;
        let tpl = res["data"]["createTemplate"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned();
        let res = hub.gql(Some(&admin), CREATE, json!({ "i": { "name": "where", "templateId": tpl } })).await;
        let id = res["data"]["createServer"]["id"].as_str().unwrap().to_owned();
        act(&hub, &admin, "startServer", &id).await;
        let want = format!("cwd={}", hub.data_dir().join("servers").join(&id).join("game/bin").display());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !console_has(&server(&hub, &admin, &id).await, &want) {
            assert!(Instant::now() < deadline, "{want}: {}", server(&hub, &admin, &id).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        hub.stop().await;
    }

    async fn a_server_that_stops_answering_is_restarted(backend: Backend) {
        let hub = TestHub::start_with(common::Store::new(backend).await, &["--status-interval", "1"]).await;
        let admin = hub.admin_token().await;
        // Ready at once, listening on nothing: its TCP probe fails.
        let def = format!(
            "name = \"Deaf\"\nexecutable = \"/bin/sleep\"\nargs = [\"120\"]\nport_variable = \"PORT\"\n\
             [[variables]]\nkey = \"PORT\"\ndefault = \"{}\"\nrule = \"port\"\n[probe]\nkind = \"tcp\"\n\
             [crash]\nmax_restarts = 0\n",
            port(9400, backend)
        );
        let res = hub
            .gql(Some(&admin), "mutation($d: String!) { createTemplate(definition: $d) { id } }", json!({ "d": def }))
            .await;
        let tpl = res["data"]["createTemplate"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned();
        let res = hub.gql(Some(&admin), CREATE, json!({ "i": { "name": "deaf", "templateId": tpl } })).await;
        let id = res["data"]["createServer"]["id"].as_str().unwrap().to_owned();
        act(&hub, &admin, "startServer", &id).await;
        let s = wait_state(&hub, &admin, &id, "CRASHED", 20).await;
        assert!(console_has(&s, "no answer on port") && console_has(&s, "failed its probe 3 times"), "{s}");
        // The quiet probe opens no connection: a game that stops itself (SIGSTOP) fails it; one
        // that runs passes it.
        let def = "name = \"Frozen\"\nexecutable = \"/bin/sh\"\nargs = [\"-c\", \"sleep 2; kill -STOP $$\"]\n\
                   [probe]\nkind = \"process\"\n[crash]\nmax_restarts = 0\n";
        let frozen = hub.create_server_from(&admin, "frozen", def).await;
        act(&hub, &admin, "startServer", &frozen).await;
        let s = wait_state(&hub, &admin, &frozen, "CRASHED", 20).await;
        assert!(console_has(&s, "the process is stopped or gone (3 of 3 checks)"), "{s}");
        let def = "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"60\"]\n[probe]\nkind = \"process\"\n";
        let sleeper = hub.create_server_from(&admin, "sleeper", def).await;
        act(&hub, &admin, "startServer", &sleeper).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let s = server(&hub, &admin, &sleeper).await;
        assert!(s["state"] == "RUNNING" && !console_has(&s, "stopped or gone"), "{s}");
        act(&hub, &admin, "killServer", &sleeper).await;
        // Authoring: a program missing from this host is a warning; a syntax error has its place.
        let make = "mutation($d: String!) { createTemplate(definition: $d) { warnings } }";
        let ghost = json!({ "d": "name = \"Ghost\"\nexecutable = \"/usr/games/not-installed-here\"\n" });
        let res = hub.gql(Some(&admin), make, ghost).await;
        let warnings = res["data"]["createTemplate"]["warnings"].to_string();
        assert!(warnings.contains("does not exist on this host"), "{res}");
        let broken = json!({ "d": "name = \"Broken\"\nexecutable = /bin/true\n" });
        let res = hub.gql(Some(&admin), make, broken).await;
        assert!(res["errors"][0]["message"].as_str().unwrap().contains("line 2, column 14"), "{res}");
        // Teeworlds answers its UDP probe and stays up.
        let tee =
            create(&hub, &admin, "Teeworlds", "tee", json!([{ "key": "PORT", "value": port(8800, backend) }])).await;
        act(&hub, &admin, "startServer", &tee).await;
        wait_state(&hub, &admin, &tee, "RUNNING", 60).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let s = server(&hub, &admin, &tee).await;
        assert_eq!(s["state"], "RUNNING", "{s}");
        assert!(!console_has(&s, "no answer on port"), "{s}");
        hub.stop().await;
    }

    /// An editor's loop: the text is checked without being saved, errors say where, values are
    /// tried on the rendered command line, one argument each whatever they hold.
    async fn a_template_is_checked_and_tried_before_it_is_saved(backend: Backend) {
        let hub = TestHub::start(backend).await;
        let admin = hub.admin_token().await;
        let check = "query($d: String!, $v: [ServerVariableInput!]) { checkTemplate(definition: $d, values: $v) { \
                     error warnings parts { name probe } variables { key rule } argv valuesError } }";
        let def = "name = \"Tried\"\nexecutable = \"/usr/games/tried-here\"\nargs = [\"--port\", \"{{PORT}}\", \"--dir\", \"{{SERVER_DIR}}\"]\n\
                   port_variable = \"PORT\"\n[[variables]]\nkey = \"PORT\"\ndefault = \"30000\"\nrule = \"port\"\n\
                   [probe]\nkind = \"process\"\n";
        let res = hub.gql(Some(&admin), check, json!({ "d": def })).await;
        let c = &res["data"]["checkTemplate"];
        assert!(c["error"].is_null(), "{res}");
        assert_eq!(c["parts"]["name"], "Tried");
        assert_eq!(c["parts"]["probe"], "PROCESS");
        assert_eq!(c["variables"][0]["rule"], "port (1024-65535)", "{res}");
        assert!(c["warnings"][0].as_str().unwrap().contains("does not exist on this host"), "{res}");
        let dir = format!("{}/servers/<id>", hub.data_dir().display());
        assert_eq!(c["argv"], json!(["/usr/games/tried-here", "--port", "30000", "--dir", dir]), "{res}");
        // A value that breaks its rule is named; a hostile one stays one argument.
        let res =
            hub.gql(Some(&admin), check, json!({ "d": def, "v": [{ "key": "PORT", "value": "30000 --evil" }] })).await;
        let c = &res["data"]["checkTemplate"];
        assert!(c["argv"].is_null() && c["valuesError"].as_str().unwrap().contains("PORT"), "{res}");
        // A syntax error says where; nothing was saved.
        let res = hub.gql(Some(&admin), check, json!({ "d": "name = \"T\"\nexecutable = /bin/true" })).await;
        assert!(res["data"]["checkTemplate"]["error"].as_str().unwrap().contains("line 2, column 14"), "{res}");
        let names = hub.gql(Some(&admin), "{ templates { name } }", json!({})).await.to_string();
        assert!(!names.contains("Tried"), "{names}");

        // A form's loop: the parts read from the text write a text that reads back as the same
        // parts; a mistake in the parts names its place.
        let parts = "fragment P on TemplateParts { name description executable args portVariable workingDir \
                     variables { key description default required editable privileged rule { kind min max options pattern } } \
                     env { key value } files { path content } stop { command commandTimeout signal signalTimeout } \
                     ready { patterns regex timeout } probe crash { autoRestart maxRestarts windowSeconds backoffSeconds } }";
        let by_text =
            format!("query($d: String!) {{ checkTemplate(definition: $d) {{ error parts {{ ...P }} }} }} {parts}");
        let by_parts = format!(
            "query($p: TemplatePartsInput!) {{ checkTemplate(parts: $p) {{ error errorAt definition parts {{ ...P }} }} }} {parts}"
        );
        let rich = format!(
            "{def}[[variables]]\nkey = \"SLOTS\"\nrule = {{ integer = {{ min = 1, max = 8 }} }}\n[env]\nHOME = \"{{{{SERVER_DIR}}}}\"\n\
             [[files]]\npath = \"a.cfg\"\ncontent = \"\"\"\nport {{{{PORT}}}}\n\"\"\"\n[stop]\ncommand = \"/quit\"\n[ready]\nregex = [\"^up$\"]\n"
        );
        let first = hub.gql(Some(&admin), &by_text, json!({ "d": rich })).await;
        let read = &first["data"]["checkTemplate"]["parts"];
        assert_eq!(read["variables"][1]["rule"]["max"], 8, "{first}");
        assert_eq!(read["crash"]["windowSeconds"], 300, "defaults are filled in: {first}");
        let written = hub.gql(Some(&admin), &by_parts, json!({ "p": read })).await;
        let w = &written["data"]["checkTemplate"];
        assert!(w["error"].is_null(), "{written}");
        assert_eq!(&w["parts"], read, "{written}");
        let again = hub.gql(Some(&admin), &by_text, json!({ "d": w["definition"] })).await;
        assert_eq!(&again["data"]["checkTemplate"]["parts"], read, "{again}");
        let mut wrong = read.clone();
        wrong["variables"][1]["default"] = json!("9");
        let res = hub.gql(Some(&admin), &by_parts, json!({ "p": wrong })).await;
        let w = &res["data"]["checkTemplate"];
        assert_eq!(w["errorAt"], "variables.1.default", "{res}");
        assert!(w["definition"].as_str().unwrap().contains("default = \"9\""), "the text shows it too: {res}");
        wrong["env"] = json!([{ "key": "A", "value": "1" }, { "key": "A", "value": "2" }]);
        let res = hub.gql(Some(&admin), &by_parts, json!({ "p": wrong })).await;
        assert_eq!(res["data"]["checkTemplate"]["errorAt"], "env.1.key", "{res}");
        let mut negative = read.clone();
        negative["stop"]["signalTimeout"] = json!(-1);
        let res = hub.gql(Some(&admin), &by_parts, json!({ "p": negative })).await;
        assert_eq!(res["data"]["checkTemplate"]["errorAt"], "stop.signalTimeout", "{res}");
        let mut huge = read.clone();
        huge["description"] = json!("x".repeat(70 * 1024));
        let res = hub.gql(Some(&admin), &by_parts, json!({ "p": huge })).await;
        let c = &res["data"]["checkTemplate"];
        assert!(c["error"].as_str().unwrap().contains("64 KiB") && c["definition"].is_null(), "not echoed: {res}");
        let res = hub.gql(Some(&admin), "{ checkTemplate { error } }", json!({})).await;
        assert_eq!(res["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "neither text nor parts: {res}");
        hub.stop().await;
    }

    on_both!(
        limits_and_the_quota_hold,
        a_server_that_stops_answering_is_restarted,
        a_template_sets_the_working_folder,
        a_template_is_checked_and_tried_before_it_is_saved
    );
}

mod floods_and_hard_kills {
    use common::process::HubProcess;

    use super::*;

    async fn a_flood_of_output_costs_bounded_memory_and_starves_nobody(backend: Backend) {
        let hub = TestHub::start_with(common::Store::new(backend).await, &["--console-log-bytes", "1048576"]).await;
        let admin = hub.admin_token().await;
        let civ =
            create(&hub, &admin, "Freeciv", "civ", json!([{ "key": "PORT", "value": port(5800, backend) }])).await;
        act(&hub, &admin, "startServer", &civ).await;
        wait_state(&hub, &admin, &civ, "RUNNING", 60).await;
        let before = common::rss_kib();
        // About 100k lines a second, without end.
        let flood = fx_custom(
            &hub,
            &admin,
            "Flood",
            "/bin/sh",
            &["-c", "while :; do yes a flood of console output | head -n 1000; sleep 0.01; done"],
            None,
        )
        .await;
        act(&hub, &admin, "startServer", &flood).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        // Freeciv still answers promptly.
        let asked = Instant::now();
        hub.gql(
            Some(&admin),
            "mutation($id: ID!) { sendServerCommand(id: $id, command: \"/list\") }",
            json!({ "id": civ }),
        )
        .await;
        while !console_has(&server(&hub, &admin, &civ).await, "List of players") {
            assert!(asked.elapsed() < Duration::from_secs(10), "freeciv's console starved behind the flood");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let answered = asked.elapsed();
        let grown = common::rss_kib().saturating_sub(before);
        eprintln!("flood: the hub's RSS grew by {grown} KiB; freeciv answered /list in {answered:?}");
        assert!(grown < 200 * 1024, "the hub grew by {grown} KiB during the flood");
        // The tail holds the flood's last lines; the log file is rotated, not unbounded.
        let s = server(&hub, &admin, &flood).await;
        assert!(console_has(&s, "a flood of console output"));
        let log = hub.data_dir().join("console").join(&flood).join("stdout.log");
        let size = std::fs::metadata(&log).unwrap().len();
        assert!(size < 64 * 1024 * 1024, "stdout.log is {size} bytes");
        assert!(log.with_extension("log.1").exists(), "the log was rotated");
        act(&hub, &admin, "killServer", &flood).await;
        hub.stop().await;
    }

    async fn a_hub_killed_with_sigkill_kills_nothing(backend: Backend) {
        let store = common::Store::new(backend).await;
        let mut hub = HubProcess::start(&store, &[]).await;
        let token = hub.admin_token().await;
        let templates = hub.gql(Some(&token), "{ templates { id name } }", json!({})).await;
        let tpl =
            templates["data"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == "Freeciv").unwrap()["id"]
                .clone();
        let vars = json!({ "i": { "name": "civ", "templateId": tpl, "variables": [{ "key": "PORT", "value": port(5900, backend) }] } });
        let id = hub.gql(Some(&token), CREATE, vars).await["data"]["createServer"]["id"].as_str().unwrap().to_owned();
        hub.gql(Some(&token), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
        let q = "query($id: ID!) { server(id: $id) { state pid consoleTail(lines: 300) { line } } }";
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid = loop {
            let s = hub.gql(Some(&token), q, json!({ "id": id })).await["data"]["server"].clone();
            if s["state"] == "RUNNING" {
                break s["pid"].clone();
            }
            assert!(Instant::now() < deadline, "{s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        hub.kill9();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the game outlived the hub");

        let hub = HubProcess::start(&store, &[]).await;
        let token = hub.admin_token().await;
        let s = hub.gql(Some(&token), q, json!({ "id": id })).await["data"]["server"].clone();
        assert_eq!((&s["state"], &s["pid"]), (&json!("RUNNING"), &pid), "adopted, not started again: {s}");
        hub.gql(
            Some(&token),
            "mutation($id: ID!) { sendServerCommand(id: $id, command: \"/list\") }",
            json!({ "id": id }),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = hub.gql(Some(&token), q, json!({ "id": id })).await["data"]["server"].clone();
            if s["consoleTail"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["line"].as_str().unwrap().contains("List of players"))
            {
                break;
            }
            assert!(Instant::now() < deadline, "no answer from the adopted game: {s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let res =
            hub.gql(Some(&token), "mutation($id: ID!) { killServer(id: $id) { state } }", json!({ "id": id })).await;
        assert!(res["errors"].is_null(), "{res}");
        drop(hub);
        drop(store);
    }

    /// A game that ignores SIGTERM is killed after its `signal_timeout`; one that closes its
    /// stdin gets a clear answer to a command, not a hang, and still stops.
    async fn games_that_ignore_sigterm_or_close_stdin_stay_controllable(backend: Backend) {
        let hub = TestHub::start(backend).await;
        let admin = hub.admin_token().await;
        let stubborn = fx_custom(
            &hub,
            &admin,
            "stubborn",
            "/bin/sh",
            &["-c", "trap '' TERM; echo up; while :; do sleep 1; done"],
            None,
        )
        .await;
        act(&hub, &admin, "startServer", &stubborn).await;
        wait_state(&hub, &admin, &stubborn, "RUNNING", 10).await;
        let asked = Instant::now();
        act(&hub, &admin, "stopServer", &stubborn).await;
        wait_state(&hub, &admin, &stubborn, "OFFLINE", 15).await;
        let took = asked.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(10),
            "killed after signal_timeout: {took:?}"
        );

        let deaf =
            fx_custom(&hub, &admin, "deaf", "/bin/sh", &["-c", "exec 0<&-; echo stdin closed; exec sleep 3600"], None)
                .await;
        act(&hub, &admin, "startServer", &deaf).await;
        let mut s = wait_state(&hub, &admin, &deaf, "RUNNING", 10).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !console_has(&s, "stdin closed") {
            assert!(Instant::now() < deadline, "the game never said it closed its stdin: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            s = server(&hub, &admin, &deaf).await;
        }
        let asked = Instant::now();
        let res = hub
            .gql(
                Some(&admin),
                "mutation($id: ID!) { sendServerCommand(id: $id, command: \"hello\") }",
                json!({ "id": deaf }),
            )
            .await;
        assert!(asked.elapsed() < Duration::from_secs(3), "no hang: {:?}", asked.elapsed());
        eprintln!("a command to a game without stdin: {res}");
        assert_eq!(code(&res), "CONFLICT", "{res} ({s})");
        assert!(res["errors"][0]["message"].as_str().unwrap().contains("the console does not take input"), "{res}");
        let log = hub
            .gql(
                Some(&admin),
                "{ auditLog(first: 1, filter: { action: \"server.command\" }) { outcome detail } }",
                json!({}),
            )
            .await;
        assert_eq!(log["data"]["auditLog"][0]["outcome"], "failure", "the audit log says it was not sent: {log}");
        act(&hub, &admin, "stopServer", &deaf).await;
        wait_state(&hub, &admin, &deaf, "OFFLINE", 10).await;
        hub.stop().await;
    }

    on_both!(
        a_flood_of_output_costs_bounded_memory_and_starves_nobody,
        a_hub_killed_with_sigkill_kills_nothing,
        games_that_ignore_sigterm_or_close_stdin_stay_controllable
    );
}

/// Power actions on one server never interleave (roadmap: two starts never make two processes).
mod power_actions {
    use super::*;

    async fn try_act(hub: &TestHub, token: &str, what: &str, id: &str) -> Value {
        hub.gql(Some(token), &format!("mutation($id: ID!) {{ {what}(id: $id) {{ state }} }}"), json!({ "id": id }))
            .await
    }

    /// Waits until no transition is in flight; returns the state.
    async fn settled(hub: &TestHub, token: &str, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = server(hub, token, id).await["state"].as_str().unwrap().to_owned();
            if state == "OFFLINE" || state == "RUNNING" {
                return state;
            }
            assert!(Instant::now() < deadline, "still {state}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn the_processes_match_the_state(hub: &TestHub, token: &str, id: &str, marker: &str, round: &str) {
        // A restart passes through OFFLINE on its way back: judge a state that held for a while.
        for _ in 0..20 {
            let state = settled(hub, token, id).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let count = processes_with(marker);
            if server(hub, token, id).await["state"] != state.as_str() {
                continue;
            }
            assert_eq!(count, usize::from(state == "RUNNING"), "{round}: {state} with these processes");
            return;
        }
        panic!("{round}: the state never held");
    }

    async fn concurrent_power_actions_never_make_two_processes(backend: Backend) {
        let hub = TestHub::start(backend).await;
        let admin = hub.admin_token().await;
        let marker = format!("power-marker-{}", uuid::Uuid::new_v4().simple());
        let script = format!("sleep 3600; : {marker}");
        let id = fx_custom(&hub, &admin, "twice", "/bin/sh", &["-c", &script], None).await;
        for round in 0..10 {
            // Two starts at once: one starts, the other is a CONFLICT.
            let (a, b) =
                tokio::join!(try_act(&hub, &admin, "startServer", &id), try_act(&hub, &admin, "startServer", &id));
            let refused: Vec<&Value> = [&a, &b].into_iter().filter(|r| r["errors"].is_array()).collect();
            assert_eq!(refused.len(), 1, "round {round}: exactly one start is refused: {a} {b}");
            assert_eq!(code(refused[0]), "CONFLICT");
            the_processes_match_the_state(&hub, &admin, &id, &marker, &format!("start+start {round}")).await;
            // Stop and start at once, then start and stop at once: whatever the order, one
            // process at most, and the state says which.
            let _ = tokio::join!(try_act(&hub, &admin, "stopServer", &id), try_act(&hub, &admin, "startServer", &id));
            the_processes_match_the_state(&hub, &admin, &id, &marker, &format!("stop+start {round}")).await;
            if settled(&hub, &admin, &id).await == "RUNNING" {
                act(&hub, &admin, "stopServer", &id).await;
                wait_state(&hub, &admin, &id, "OFFLINE", 10).await;
            }
            let _ = tokio::join!(try_act(&hub, &admin, "startServer", &id), try_act(&hub, &admin, "stopServer", &id));
            the_processes_match_the_state(&hub, &admin, &id, &marker, &format!("start+stop {round}")).await;
            // A restart racing a start.
            let _ =
                tokio::join!(try_act(&hub, &admin, "restartServer", &id), try_act(&hub, &admin, "startServer", &id));
            the_processes_match_the_state(&hub, &admin, &id, &marker, &format!("restart+start {round}")).await;
            if settled(&hub, &admin, &id).await == "RUNNING" {
                act(&hub, &admin, "stopServer", &id).await;
                wait_state(&hub, &admin, &id, "OFFLINE", 10).await;
            }
        }
        assert_eq!(processes_with(&marker), 0);
        hub.stop().await;
    }

    on_both!(concurrent_power_actions_never_make_two_processes);
}

/// A revoked user's console subscription ends within a second, even while the game floods its
/// console and whether the reader keeps up or not.
mod revocation_during_a_flood {
    use super::*;

    const GRANT: &str =
        "mutation($s: ID!, $u: ID!, $p: [String!]!) { grantServerAccess(serverId: $s, userId: $u, permissions: $p) }";
    const REVOKE: &str = "mutation($s: ID!, $u: ID!) { revokeServerAccess(serverId: $s, userId: $u) }";

    async fn a_revoked_reader_stops_receiving_at_once(backend: Backend) {
        let hub = TestHub::start(backend).await;
        let admin = hub.admin_token().await;
        let flood = fx_custom(
            &hub,
            &admin,
            "flood",
            "/bin/sh",
            &["-c", "while :; do yes a flood of console output | head -n 2000; done"],
            None,
        )
        .await;
        act(&hub, &admin, "startServer", &flood).await;
        let player = hub.user_with_roles("player@hub.test", &["User"]).await;
        let player_id =
            hub.gql(Some(&player), "{ me { id } }", json!({})).await["data"]["me"]["id"].as_str().unwrap().to_owned();
        let mut ws = ws_as(&hub, &player).await;
        for round in 0..12 {
            let slow = round % 2 == 1;
            let res = hub.gql(Some(&admin), GRANT, json!({ "s": flood, "u": player_id, "p": ["server.read"] })).await;
            assert!(res["errors"].is_null(), "{res}");
            let sub_id = format!("c{round}");
            let query = format!("subscription {{ serverConsole(serverId: \"{flood}\") {{ at line }} }}");
            let msg = json!({ "id": sub_id, "type": "subscribe", "payload": { "query": query } });
            ws.send(Message::Text(msg.to_string().into())).await.unwrap();
            // Read the flood for a moment, then revoke while it flows.
            let mut seen = 0;
            while seen < 200 {
                // Generous: on 2 cores under the rest of the suite a slow round once waited > 10 s.
                let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: only {seen} console messages of 200 within 30 s"))
                    .unwrap()
                    .unwrap();
                if let Message::Text(t) = m
                    && serde_json::from_str::<Value>(t.as_str()).unwrap()["id"] == sub_id.as_str()
                {
                    seen += 1;
                }
            }
            let res = hub.gql(Some(&admin), REVOKE, json!({ "s": flood, "u": player_id })).await;
            assert!(res["errors"].is_null(), "{res}");
            let revoked = chrono::Utc::now();
            let asked = Instant::now();
            // Lines already on their way are fine; none made after the revocation (plus a
            // second) may arrive, and the subscription ends with FORBIDDEN.
            let mut forbidden = false;
            loop {
                let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: the subscription never ended"))
                    .unwrap()
                    .unwrap();
                let Message::Text(t) = m else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] != sub_id.as_str() {
                    continue;
                }
                match v["type"].as_str().unwrap() {
                    "complete" => break,
                    "next" if v["payload"]["errors"].is_array() => {
                        // The server is no longer visible to them: NOT_FOUND (FORBIDDEN where it is).
                        let code = &v["payload"]["errors"][0]["extensions"]["code"];
                        assert!(code == "NOT_FOUND" || code == "FORBIDDEN", "{v}");
                        forbidden = true;
                    }
                    "next" => {
                        assert!(!forbidden, "round {round}: a line after the end: {v}");
                        let at: chrono::DateTime<chrono::Utc> =
                            v["payload"]["data"]["serverConsole"]["at"].as_str().unwrap().parse().unwrap();
                        assert!(
                            at < revoked + chrono::Duration::seconds(1),
                            "round {round} (slow: {slow}): a line made {} ms after the revocation arrived",
                            (at - revoked).num_milliseconds()
                        );
                        if slow {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                    other => panic!("unexpected {other}: {v}"),
                }
            }
            assert!(forbidden, "round {round}: the end says why");
            if !slow {
                assert!(asked.elapsed() < Duration::from_secs(1), "round {round}: ended after {:?}", asked.elapsed());
            }
            eprintln!("round {round} (slow: {slow}): ended {:?} after the revocation", asked.elapsed());
        }
        hub.stop().await;
    }

    on_both!(a_revoked_reader_stops_receiving_at_once);
}

/// What a game may reach: its own folder, nothing of the hub's, nothing of another game's; and
/// what it leaves behind dies with it.
mod isolation {
    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn mode(path: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    async fn until(what: &str, secs: u64, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !check() {
            assert!(Instant::now() < deadline, "{what} within {secs} s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_game_reaches_neither_the_hub_nor_another_game() {
        if !is_root() {
            eprintln!("skipped: the isolation of games needs the hub to run as root (CI does)");
            return;
        }
        let hub = TestHub::start(Backend::Sqlite).await;
        let admin = hub.admin_token().await;
        let data = hub.data_dir();
        assert_eq!(mode(&data.join("kutanga.db")), 0o600);
        for side in ["kutanga.db-wal", "kutanga.db-shm"] {
            if data.join(side).exists() {
                assert_eq!(mode(&data.join(side)), 0o600, "{side}");
            }
        }
        assert_eq!(mode(&data.join("jwt.key")), 0o600);
        assert_eq!(mode(&data), 0o711);

        let victim = fx_custom(&hub, &admin, "victim", "/bin/sh", &["-c", "sleep 3600"], None).await;
        act(&hub, &admin, "startServer", &victim).await;
        let pid = wait_state(&hub, &admin, &victim, "RUNNING", 10).await["pid"].as_i64().unwrap();
        let d = data.display();
        let script = format!(
            "cat {d}/kutanga.db > /dev/null 2>&1 && echo DB-READ || echo DB-DENIED; \
             cat {d}/kutanga.db-wal > /dev/null 2>&1 && echo WAL-READ || echo WAL-DENIED; \
             cat {d}/jwt.key > /dev/null 2>&1 && echo KEY-READ || echo KEY-DENIED; \
             ls {d} > /dev/null 2>&1 && echo DATA-LISTED || echo DATA-UNLISTED; \
             ls {d}/servers/{victim} > /dev/null 2>&1 && echo VICTIM-LISTED || echo VICTIM-UNLISTED; \
             touch {d}/servers/{victim}/evil 2> /dev/null && echo VICTIM-WRITTEN || echo VICTIM-UNWRITTEN; \
             kill -9 {pid} 2> /dev/null && echo VICTIM-KILLED || echo VICTIM-ALIVE; \
             touch own-file && echo OWN-WRITTEN; echo PROBED; sleep 3600"
        );
        let attacker = fx_custom(&hub, &admin, "attacker", "/bin/sh", &["-c", &script], Some(("PROBED", 20))).await;
        act(&hub, &admin, "startServer", &attacker).await;
        let s = wait_state(&hub, &admin, &attacker, "RUNNING", 20).await;
        for expected in [
            "DB-DENIED",
            "WAL-DENIED",
            "KEY-DENIED",
            "DATA-UNLISTED",
            "VICTIM-UNLISTED",
            "VICTIM-UNWRITTEN",
            "VICTIM-ALIVE",
            "OWN-WRITTEN",
        ] {
            assert!(console_has(&s, expected), "{expected}: {s}");
        }
        assert_eq!(server(&hub, &admin, &victim).await["state"], "RUNNING", "the victim still runs");
        hub.stop().await;
    }

    /// `setsid` takes a process out of the game's group: it still dies with the game, on stop,
    /// on kill, and on delete.
    async fn detached_processes_die_with_their_game(backend: Backend) {
        if !is_root() {
            eprintln!("skipped: without root games share the hub's UID, and only their group is signalled");
            return;
        }
        let hub = TestHub::start(backend).await;
        let admin = hub.admin_token().await;
        let marker = format!("detached-{}", uuid::Uuid::new_v4().simple());
        let script = format!("setsid sh -c 'sleep 4321; : {marker}' & sleep 3600");
        let id = fx_custom(&hub, &admin, "daemonizer", "/bin/sh", &["-c", &script], None).await;
        for how in ["stopServer", "killServer"] {
            act(&hub, &admin, "startServer", &id).await;
            // The game's shell and the detached one both carry the marker.
            until("the detached process starts", 10, || processes_with(&marker) == 2).await;
            act(&hub, &admin, how, &id).await;
            until(&format!("{how} ends the detached process"), 10, || processes_with(&marker) == 0).await;
            wait_state(&hub, &admin, &id, "OFFLINE", 10).await;
        }
        hub.stop().await;
    }

    on_both!(detached_processes_die_with_their_game);
}
