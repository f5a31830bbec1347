//! The documentation stays true where a test can tell: every message docs/troubleshooting.md
//! quotes is still in the code, word for word; every link between the pages leads somewhere;
//! the API guide's Python and JavaScript examples run against a hub; the administrator guide's
//! template for a new game runs that game. (The configuration reference and the packaged
//! settings file have their tests in `config`, the API reference in `schema.rs`, the Grafana
//! dashboard in `prometheus.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestHub};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every string the hub's and the web app's code holds, with Rust's line continuations joined.
fn source_text() -> String {
    fn walk(dir: &Path, text: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, text);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                // `\` at a line's end in a string skips the line break and the next line's indent.
                let mut joined = String::with_capacity(code.len());
                let mut rest = code.as_str();
                while let Some(at) = rest.find("\\\n") {
                    joined.push_str(&rest[..at]);
                    rest = rest[at + 2..].trim_start();
                }
                joined.push_str(rest);
                text.push_str(&joined);
            }
        }
    }
    let mut text = String::new();
    walk(&repo().join("api/src"), &mut text);
    walk(&repo().join("web/src"), &mut text);
    text
}

#[test]
fn troubleshooting_quotes_what_the_hub_says() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/troubleshooting.md")).unwrap();
    let code = source_text();
    let mut quoted = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        match (inside, line.trim()) {
            (false, "```text") => inside = true,
            (true, "```") => inside = false,
            (true, message) => quoted.push(message.to_owned()),
            _ => {}
        }
    }
    assert!(quoted.len() >= 10, "the page quotes the hub: {quoted:?}");
    // A configuration error reads `VARIABLE: invalid value; expected WHAT`: its parts are apart
    // in the code.
    const INVALID: &str = ": invalid value; expected ";
    assert!(code.contains("invalid value; expected"));
    for message in &quoted {
        for part in message.split('…').flat_map(|p| p.split(INVALID)) {
            let part = part.trim();
            if part.chars().count() >= 8 {
                assert!(
                    code.contains(part),
                    "docs/troubleshooting.md quotes {part:?} ({message:?}), which the code no longer says"
                );
            }
        }
    }
}

/// Every Markdown page of the project: the README and docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            pages.push(entry.path());
        }
    }
    pages.sort();
    pages
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings (outside code blocks), with GitHub's `-1`, `-2` for repeats.
fn anchors(page: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut code = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            code = !code;
        }
        if code || !line.starts_with('#') {
            continue;
        }
        let base = anchor(line.trim_start_matches('#'));
        let repeats = seen
            .iter()
            .filter(|a| **a == base || a.strip_prefix(&format!("{base}-")).is_some_and(|n| n.parse::<u32>().is_ok()))
            .count();
        seen.push(if repeats == 0 { base } else { format!("{base}-{repeats}") });
    }
    seen
}

/// The targets of a page's Markdown links, `[text](target)`, outside code blocks and spans.
fn links(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut code = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            code = !code;
            continue;
        }
        if code {
            continue;
        }
        // Code spans may hold `](` that is no link.
        let prose: String =
            line.split('`').enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, p)| p).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

/// Links between the pages, and to the repository's files, lead somewhere: the file exists, and
/// so does the heading an anchor names.
#[test]
fn every_link_between_the_pages_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            if !fragment.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                if !headings.iter().any(|h| h == fragment) {
                    broken.push(format!("{}: {link} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(checked > 50, "the pages link to each other ({checked} links)");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The API guide's examples (docs/examples): each signs in, makes a server, starts it, follows
/// its console on a subscription and sends it a command, with a graphql-transport-ws client that
/// none of us wrote (gql in Python, graphql-ws in Node.js).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_guides_examples_run() {
    let examples = repo().join("docs/examples");
    let gql = std::process::Command::new("python3").args(["-c", "import gql"]).status().is_ok_and(|s| s.success());
    assert!(
        gql,
        "the Python example needs gql: `pip install -r docs/examples/requirements.txt` (cargo xtask test does)"
    );
    assert!(
        examples.join("node_modules/graphql-ws").exists(),
        "the JavaScript example needs its packages: `npm ci --prefix docs/examples` (cargo xtask test does)"
    );
    let hub = TestHub::start(Backend::Sqlite).await;
    for (program, script, name) in [("python3", "console.py", "from-python"), ("node", "console.mjs", "from-node")] {
        let run = tokio::process::Command::new(program)
            .arg(examples.join(script))
            .env("KUTANGA_URL", hub.url(""))
            .env("KUTANGA_EMAIL", ADMIN_EMAIL)
            .env("KUTANGA_PASSWORD", ADMIN_PASSWORD)
            .env("SERVER_NAME", name)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the example ends").unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{script} failed:\n{said}");
        for line in ["state: RUNNING", "[stdin] hello", "[stdout] you said: hello", "stop asked: STOPPING"] {
            assert!(said.contains(line), "{script} did not print {line:?}:\n{said}");
        }
    }
    // What the scripts did, seen from the hub: two servers, each asked to stop.
    let admin = hub.admin_token().await;
    let servers = hub.gql(Some(&admin), "{ servers { name state } }", json!({})).await;
    let names: Vec<&str> =
        servers["data"]["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"from-python") && names.contains(&"from-node"), "{servers}");
    hub.stop().await;
}

/// The code block after `marker` in a page.
fn block_after(page: &str, marker: &str, language: &str) -> String {
    let from = page.find(marker).unwrap_or_else(|| panic!("the page has no {marker}"));
    let fence = format!("```{language}\n");
    let start = page[from..].find(&fence).unwrap() + from + fence.len();
    let end = page[start..].find("```").unwrap() + start;
    page[start..end].to_owned()
}

/// The administrator guide's worked example: the template it prints for a game the hub has no
/// template for (Wesnoth's server, Debian's `wesnoth-1.16-server`) makes a server that starts,
/// is RUNNING once the game says so, answers on its port and its console, and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_guides_new_game_template_runs_the_game() {
    let guide = std::fs::read_to_string(repo().join("docs/admin-guide.md")).unwrap();
    let definition = block_after(&guide, "<!-- worked example: the template -->", "toml");
    let program =
        definition.lines().find_map(|l| l.strip_prefix("executable = ")).unwrap().trim_matches('"').to_owned();
    assert!(
        Path::new(&program).exists(),
        "{program} is missing: `apt-get install wesnoth-1.16-server` (cargo xtask test does)"
    );
    let hub = TestHub::start(Backend::Sqlite).await;
    let admin = hub.admin_token().await;
    let created = hub
        .gql(
            Some(&admin),
            "mutation($d: String!) { createTemplate(definition: $d) { id warnings } }",
            json!({ "d": definition }),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    assert_eq!(created["data"]["createTemplate"]["warnings"], json!([]), "{created}");
    let port = common::process::free_port();
    let server = hub
        .gql(
            Some(&admin),
            "mutation($t: ID!, $p: String!) { createServer(input: { name: \"wesnoth\", templateId: $t, \
             variables: [{ key: \"PORT\", value: $p }] }) { id } }",
            json!({ "t": created["data"]["createTemplate"]["id"], "p": port.to_string() }),
        )
        .await;
    let id = server["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{server}")).to_owned();
    let started =
        hub.gql(Some(&admin), "mutation($id: ID!) { startServer(id: $id) { state } }", json!({ "id": id })).await;
    assert!(started["errors"].is_null(), "{started}");
    let running = wait_for(&hub, &admin, &id, "RUNNING").await;
    assert!(running["consoleTail"].to_string().contains("opened fifo"), "{running}");
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("the game answers on its port");
    // Its admin commands come from the console: the game reads them from /dev/stdin.
    let sent = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { sendServerCommand(id: $id, command: \"msg hello\") }",
            json!({ "id": id }),
        )
        .await;
    assert!(sent["errors"].is_null(), "{sent}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = wait_for(&hub, &admin, &id, "RUNNING").await;
        if now["consoleTail"].to_string().contains("<server> hello") {
            break;
        }
        assert!(Instant::now() < deadline, "the game did not take the command: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    hub.gql(Some(&admin), "mutation($id: ID!) { stopServer(id: $id) { state } }", json!({ "id": id })).await;
    wait_for(&hub, &admin, &id, "OFFLINE").await;
    hub.stop().await;
}

/// Waits up to a minute for a server to be in `state`; returns it with its last console lines.
async fn wait_for(hub: &TestHub, admin: &str, id: &str, state: &str) -> Value {
    let q = "query($id: ID!) { server(id: $id) { state consoleTail(lines: 50) { line } } }";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = hub.gql(Some(admin), q, json!({ "id": id })).await["data"]["server"].clone();
        if now["state"] == state {
            return now;
        }
        assert!(Instant::now() < deadline, "not {state} within a minute: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
