//! The web app in a real headless Chromium (Debian's, through chromedriver), against a real hub
//! on a fresh database: sign-in, live state and console, charts, permissions, a hub restart
//! under an open dashboard, a narrow screen. Each test saves screenshots to target/screenshots;
//! with KUTANGA_UPDATE_SCREENSHOTS=1 the README's pictures in docs/ are written anew.
//!
//! Needs the built app (web/dist: `cargo xtask web`), Chromium and chromedriver (`cargo xtask
//! test` installs them); KUTANGA_TEST_CHROMIUM and KUTANGA_TEST_CHROMEDRIVER override paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::{path::PathBuf, process::Command, time::Duration};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, Store, TestHub};
use serde_json::json;
use webdriver::{Browser, Driver};

fn dist() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist"));
    assert!(
        dir.join("index.html").is_file(),
        "the web app is not built at {}: run `cargo xtask web` (cargo xtask test does it)",
        dir.display()
    );
    dir
}

/// A hub serving the app built into it (the build of `web/dist` it was compiled with).
async fn hub_with(extra: &[&str]) -> TestHub {
    dist();
    let mut args = vec!["--metrics-interval", "1"];
    args.extend_from_slice(extra);
    TestHub::start_with(Store::new(Backend::Sqlite).await, &args).await
}

async fn sign_in(b: &Browser, hub: &TestHub, email: &str, password: &str) {
    b.goto(&hub.url("/sign-in")).await;
    b.fill("#email", email).await;
    b.fill("#password", password).await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for("[data-testid=user]", None, 20).await;
}

/// Copies a screenshot to docs/ for the README when asked to.
fn keep_for_readme(shot: &std::path::Path, name: &str) {
    if std::env::var("KUTANGA_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/screenshots"));
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(shot, docs.join(format!("{name}.png"))).unwrap();
    }
}

/// How many pixels of a canvas have the colour of a chart's first series (shared::chart's
/// PALETTE[0], #1f6feb, give or take antialiasing): the data, not the frame, is drawn.
async fn series_pixels(b: &Browser, css: &str) -> u64 {
    let script = "const c = document.querySelector(arguments[0]); if (!c || !c.width) return -1;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) {
          if (Math.abs(d[i] - 0x1f) < 40 && Math.abs(d[i+1] - 0x6f) < 40 && Math.abs(d[i+2] - 0xeb) < 40) n++;
        } return n;";
    b.exec(script, json!([css])).await.as_i64().unwrap_or(-1).max(0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_out_and_registering() {
    let hub = hub_with(&["--registration", "open"]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1280, 900).await;
    // A protected page sends a signed-out visitor to sign in, and back after.
    b.goto(&hub.url("/servers")).await;
    b.wait_for("h1", Some("Sign in"), 20).await;
    assert!(b.current_path().await.starts_with("/sign-in?next=%2Fservers"), "{}", b.current_path().await);
    b.fill("#email", ADMIN_EMAIL).await;
    b.fill("#password", "not the password").await;
    b.click_on("button[type=submit]", None).await;
    let error = b.wait_for("[data-testid=sign-in-error]", None, 20).await;
    let words = b.text(&error).await;
    assert_eq!(words, "Invalid email or password.");
    b.screenshot("sign-in-wrong-password").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for("h1", Some("Servers"), 20).await;
    assert_eq!(b.current_path().await, "/servers");
    b.wait_for("[data-testid=connection]", Some("Live"), 20).await;
    // The refresh token is a cookie no script can read.
    let cookies = b.exec("return document.cookie", json!([])).await;
    assert_eq!(cookies, json!(""), "no script sees the session");
    // A reload keeps the session (the cookie), then signing out ends it.
    b.goto(&hub.url("/")).await;
    b.wait_for("[data-testid=user]", None, 20).await;
    b.click_on("button", Some("Sign out")).await;
    b.wait_for("h1", Some("Sign in"), 20).await;
    b.goto(&hub.url("/")).await;
    b.wait_for("h1", Some("Sign in"), 20).await;
    // Registration is open on this hub: a new account lands on the dashboard.
    b.click_on("a", Some("Create an account")).await;
    b.fill("#email", "newcomer@example.org").await;
    b.fill("#displayName", "Newcomer").await;
    b.fill("#password", "short").await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for(".field-error", Some("at least 8 characters"), 10).await;
    b.fill("#password", "a long enough passphrase").await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for("[data-testid=user]", Some("Newcomer"), 20).await;
    b.screenshot("registered").await;
    b.close().await;
    hub.stop().await;
}

/// The README's tour: create a server from the Custom command template, start it, see RUNNING
/// and its console live, send a command, see the charts drawn, stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_runs_live_in_the_browser() {
    let hub = hub_with(&[]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1440, 1000).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&hub.url("/servers/new")).await;
    b.click_on("#template option", Some("Custom command")).await;
    b.fill("#name", "echo-box").await;
    b.wait_for("#var-COMMAND", None, 10).await;
    // The browser checks the template's rules before the API does.
    b.fill("#var-COMMAND", "relative/path").await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for(".field-error", Some("COMMAND must be"), 10).await;
    b.fill("#var-COMMAND", "/bin/sh").await;
    b.fill("#var-ARGS", r#"["-c", "echo hello from the box; while read l; do echo \"got $l\"; done"]"#).await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for("h1", Some("echo-box"), 20).await;
    b.wait_for("[data-testid=state]", Some("OFFLINE"), 10).await;
    // Start: RUNNING arrives live (no reload), the console shows the output.
    b.click_on("button[data-action=start]", None).await;
    b.wait_for("[data-testid=state]", Some("RUNNING"), 30).await;
    b.wait_for("[data-testid=console]", Some("hello from the box"), 20).await;
    let command = b.wait_for("#command", None, 10).await;
    b.type_into(&command, "ping\u{E007}").await;
    b.wait_for("[data-testid=console]", Some("got ping"), 20).await;
    // The history of states shows the start.
    b.wait_for(".transitions", Some("STARTING"), 10).await;
    // The server's charts draw once samples arrive (its memory is never zero).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let drawn = series_pixels(&b, ".detail-grid canvas[aria-label=Memory]").await;
    assert!(drawn > 0, "the server's memory chart shows no data");
    let shot = b.screenshot("server-detail").await;
    keep_for_readme(&shot, "server-detail");
    // The dashboard: host charts drawn, the server's card live.
    b.click_on("nav a", Some("Dashboard")).await;
    b.wait_for(".server-card", Some("echo-box"), 20).await;
    b.wait_for(".server-card [data-testid=state]", Some("RUNNING"), 20).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let drawn = series_pixels(&b, "[data-testid=host-charts] canvas").await;
    assert!(drawn > 20, "the host CPU chart shows no line ({drawn} pixels of its colour)");
    let shot = b.screenshot("dashboard").await;
    keep_for_readme(&shot, "dashboard");
    // Resources: charts over a range, with a legend and downloads.
    b.click_on("nav a", Some("Resources")).await;
    b.click_on(".ranges button", Some("1 h")).await;
    b.wait_for(".chart-title", Some("Network"), 10).await;
    b.wait_for(".ranges button[aria-pressed=true]", Some("1 h"), 10).await;
    b.click_on(".ranges button", Some("Live")).await;
    b.click_on("select option", Some("echo-box")).await;
    b.wait_for(".chart-title", Some("Server memory"), 10).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shot = b.screenshot("resources").await;
    keep_for_readme(&shot, "resources");
    // Stop it from the list.
    b.click_on("nav a", Some("Servers")).await;
    b.click_on("tr[data-server=echo-box] button[data-action=stop]", None).await;
    b.wait_for("tr[data-server=echo-box] [data-testid=state]", Some("OFFLINE"), 30).await;
    b.close().await;
    hub.stop().await;
}

/// Pages offer what the caller's permissions allow: a moderator sees no delete; a user sees
/// only the server granted to them, and no Resources page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_shape_the_pages() {
    let hub = hub_with(&[]).await;
    let admin = hub.admin_token().await;
    let mine = hub
        .create_server_from(
            &admin,
            "granted-one",
            "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"600\"]\n",
        )
        .await;
    let res = hub.gql(Some(&admin), "query { templates { id name } }", json!({})).await;
    let sleeper =
        res["data"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == "Sleeper").unwrap()["id"].clone();
    let res = hub
        .gql(
            Some(&admin),
            "mutation($t: ID!) { createServer(input: { name: \"hidden-one\", templateId: $t }) { id } }",
            json!({ "t": sleeper }),
        )
        .await;
    assert!(res["data"]["createServer"]["id"].is_string(), "{res}");
    hub.user_with_roles("mod@example.org", &["Moderator"]).await;
    hub.user_with_roles("player@example.org", &["User"]).await;
    let res = hub.gql(Some(&admin), "query { users(search: \"player\") { id } }", json!({})).await;
    let player = res["data"]["users"][0]["id"].clone();
    let res = hub
        .gql(
            Some(&admin),
            "mutation($s: ID!, $u: ID!) { grantServerAccess(serverId: $s, userId: $u, permissions: [\"server.read\", \"server.start\"]) }",
            json!({ "s": mine, "u": player }),
        )
        .await;
    assert_eq!(res["data"]["grantServerAccess"], json!(true), "{res}");

    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1280, 900).await;
    sign_in(&b, &hub, "mod@example.org", "another long passphrase").await;
    b.goto(&hub.url(&format!("/servers/{mine}/edit"))).await;
    b.wait_for("h1", Some("Edit granted-one"), 20).await;
    assert!(b.find(".danger-zone").await.is_none(), "a moderator is offered no delete");
    b.screenshot("moderator-settings").await;
    b.click_on("button", Some("Sign out")).await;
    b.wait_for("h1", Some("Sign in"), 20).await;

    sign_in(&b, &hub, "player@example.org", "another long passphrase").await;
    b.wait_for(".server-card", Some("granted-one"), 20).await;
    assert!(b.find("nav a[href='/resources']").await.is_none(), "no Resources without metrics.read");
    let cards = b.find_all(".server-card").await;
    assert_eq!(cards.len(), 1, "the user sees only the granted server");
    let card = b.text(&cards[0]).await;
    assert!(card.contains("Start") && !card.contains("Stop"), "server.start without server.stop: {card}");
    // The URL of a page they may not use says so.
    b.goto(&hub.url("/resources")).await;
    b.wait_for("h1", Some("Not allowed"), 20).await;
    b.screenshot("not-allowed").await;
    b.close().await;
    hub.stop().await;
}

/// The hub restarts while the dashboard is open: the indicator goes to reconnecting, comes
/// back, and live data resumes without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_survives_a_hub_restart() {
    let hub = hub_with(&[]).await;
    let admin = hub.admin_token().await;
    let id = hub
        .create_server_from(&admin, "survivor", "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"600\"]\n")
        .await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1280, 900).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.wait_for("[data-testid=connection]", Some("Live"), 20).await;
    b.wait_for(".server-card", Some("survivor"), 20).await;
    let addr = hub.addr;
    let store = hub.stop().await;
    b.wait_for("[data-testid=connection]", Some("Reconnecting"), 20).await;
    b.screenshot("reconnecting").await;
    let hub = TestHub::start_at(store, &["--metrics-interval", "1"], addr).await;
    b.wait_for("[data-testid=connection]", Some("Live"), 40).await;
    // Live data resumes: a start made through the API shows on the open page.
    let res = hub
        .gql(
            Some(&hub.admin_token().await),
            "mutation($id: ID!) { startServer(id: $id) { state } }",
            json!({ "id": id }),
        )
        .await;
    assert!(res["data"]["startServer"]["state"].is_string(), "{res}");
    b.wait_for(".server-card [data-testid=state]", Some("RUNNING"), 30).await;
    b.close().await;
    hub.stop().await;
}

/// Two tabs of one session outlive many access tokens: refreshes (each rotating the cookie)
/// never overlap across tabs, so reuse detection never fires, the live connection is renewed
/// in place (no reconnect), and both tabs stay signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_outlive_their_access_tokens() {
    let hub = hub_with(&["--access-token-ttl", "30"]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1280, 900).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = b.tab().await;
    let second = b.new_tab().await;
    b.switch_to(&second).await;
    b.goto(&hub.url("/servers")).await;
    b.wait_for("[data-testid=user]", None, 20).await;
    // Every change of the connection indicator, from now on, in each tab.
    let watch = "window.__seen = []; const el = document.querySelector('[data-testid=connection]');
        new MutationObserver(() => window.__seen.push(el.textContent)).observe(el, { subtree: true, childList: true, characterData: true });";
    for tab in [&first, &second] {
        b.switch_to(tab).await;
        b.wait_for("[data-testid=connection]", Some("Live"), 20).await;
        b.exec(watch, json!([])).await;
    }
    // Three token lifetimes: each tab refreshes at 80 % of its token's life.
    tokio::time::sleep(Duration::from_secs(75)).await;
    for tab in [&first, &second] {
        b.switch_to(tab).await;
        let seen = b.exec("return window.__seen", json!([])).await;
        assert_eq!(seen, json!([]), "the live connection never dropped: {seen}");
        b.click_on("nav a", Some("Servers")).await;
        b.wait_for("h1", Some("Servers"), 10).await;
        b.wait_for(".empty", Some("No servers yet"), 10).await;
    }
    let admin = hub.admin_token().await;
    let reuse =
        hub.gql(Some(&admin), "{ auditLog(filter: { action: \"auth.refresh_reuse\" }) { id } }", json!({})).await;
    assert_eq!(reuse["data"]["auditLog"], json!([]), "no refresh token was presented twice: {reuse}");
    // Each tab refreshed at least twice (every refresh rotates the cookie).
    use sea_orm::{EntityTrait, PaginatorTrait};
    let rotations = entity::rotated_token::Entity::find().count(hub.app.services.db.conn()).await.unwrap();
    assert!(rotations >= 4, "only {rotations} refreshes in three token lifetimes of two tabs");
    b.close().await;
    hub.stop().await;
}

/// At 360 px wide the pages fit the screen: no sideways scrolling, the menu behind a button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_fits_a_phone() {
    let hub = hub_with(&[]).await;
    let admin = hub.admin_token().await;
    hub.create_server_from(&admin, "pocket", "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"600\"]\n")
        .await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 360, 780).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.wait_for(".server-card", Some("pocket"), 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let width = b.exec("return [document.documentElement.scrollWidth, window.innerWidth]", json!([])).await;
    assert!(width[0].as_i64() <= width[1].as_i64(), "the dashboard scrolls sideways at 360 px: {width}");
    b.screenshot("phone-dashboard").await;
    b.click_on(".menu-button", None).await;
    b.click_on("nav a", Some("Servers")).await;
    b.wait_for("tr[data-server=pocket]", None, 10).await;
    let width = b.exec("return [document.documentElement.scrollWidth, window.innerWidth]", json!([])).await;
    assert!(width[0].as_i64() <= width[1].as_i64(), "the server list scrolls sideways at 360 px: {width}");
    b.screenshot("phone-servers").await;
    // The dark theme, picked by hand, holds across a reload.
    b.click_on(".theme select option[value=dark]", None).await;
    let dark = "return getComputedStyle(document.body).backgroundColor";
    assert_eq!(b.exec(dark, json!([])).await, json!("rgb(13, 17, 23)"));
    b.goto(&hub.url("/servers")).await;
    b.wait_for("tr[data-server=pocket]", None, 20).await;
    assert_eq!(b.exec(dark, json!([])).await, json!("rgb(13, 17, 23)"), "the choice is remembered");
    b.screenshot("phone-servers-dark").await;
    b.close().await;
    hub.stop().await;
}

/// An alert rule made in the form fires on a low CPU threshold, arrives live, is acknowledged,
/// shows its metric around the firing; the audit log filters to that acknowledgement, opens it,
/// and holds new entries while paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_fires_is_acknowledged_and_audited() {
    let hub = hub_with(&[]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1440, 1000).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.click_on("nav a", Some("Alerts")).await;
    b.wait_for(".empty", Some("No alert has fired yet"), 20).await;
    b.fill("#name", "busy host").await;
    b.fill("#threshold", "not a number").await;
    b.click_on("button[type=submit]", Some("Create the rule")).await;
    b.wait_for(".field-error", Some("a number"), 10).await;
    b.fill("#threshold", "0").await;
    b.fill("#forSeconds", "0").await;
    b.click_on("button[type=submit]", Some("Create the rule")).await;
    b.wait_for("table[aria-label='Alert rules'] td", Some("busy host"), 20).await;
    // The evaluator fires on the next sample; the page hears it live.
    b.wait_for("table[aria-label=Alerts] [data-testid=alert-state]", Some("FIRING"), 30).await;
    b.click_on("table[aria-label=Alerts] button", Some("Acknowledge")).await;
    b.wait_for("table[aria-label=Alerts] td", Some("by Administrator"), 20).await;
    // Opening the alert draws its metric around the firing.
    b.click_on("table[aria-label=Alerts] tbody tr", None).await;
    b.wait_for("tr.details canvas", None, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(series_pixels(&b, "tr.details canvas").await > 0, "the alert's metric is drawn");
    let shot = b.screenshot("alerts").await;
    keep_for_readme(&shot, "alerts");

    // A security rule from the form (no server, no comparison: events from one address within a
    // window) fires on two failed sign-ins and names the address.
    b.fill("#name", "guessing").await;
    b.click_on("#metric option[value='security.login_failures']", None).await;
    assert!(b.find("#rule-server").await.is_none(), "a security rule has no server to pick");
    b.fill("#threshold", "2.5").await;
    b.fill("#forSeconds", "60").await;
    b.click_on("button[type=submit]", Some("Create the rule")).await;
    b.wait_for(".field-error", Some("a whole number of events"), 10).await;
    b.fill("#threshold", "2").await;
    b.click_on("button[type=submit]", Some("Create the rule")).await;
    b.wait_for("table[aria-label='Alert rules'] td", Some("2 or more within 60 s"), 20).await;
    for _ in 0..2 {
        let res = hub
            .gql(
                None,
                "mutation { login(email: \"nobody@hub.test\", password: \"wrong guess\") { accessToken } }",
                json!({}),
            )
            .await;
        assert_eq!(res["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{res}");
    }
    b.wait_for("[data-testid=alert-subject]", Some("2 failed sign-ins from 127.0.0.1"), 20).await;
    b.exec("window.scrollTo(0, 0)", json!([])).await;
    b.screenshot("alerts-security").await;

    b.click_on("nav a", Some("Audit log")).await;
    b.fill("#action", "alert.acknowledge").await;
    b.click_on("button[type=submit]", Some("Filter")).await;
    b.wait_for("table[aria-label='Audit log'] td", Some("alert.acknowledge"), 20).await;
    let rows = b.find_all("table[aria-label='Audit log'] tbody tr").await;
    assert_eq!(rows.len(), 1, "only the acknowledgement matches");
    b.click(&rows[0]).await;
    b.wait_for("tr.details", Some("Administrator"), 10).await;
    // Live entries wait while paused (the rule is paused first, so that it raises no more).
    let admin = hub.admin_token().await;
    let rules = hub.gql(Some(&admin), "{ alertRules { id } }", json!({})).await;
    let rule = rules["data"]["alertRules"][0]["id"].clone();
    let res = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { setAlertRuleEnabled(id: $id, enabled: false) { enabled } }",
            json!({ "id": rule }),
        )
        .await;
    assert_eq!(res["data"]["setAlertRuleEnabled"]["enabled"], json!(false), "{res}");
    b.click_on("button", Some("Clear")).await;
    b.wait_for("table[aria-label='Audit log'] td", Some("alert_rule.create"), 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.click_on("button", Some("Pause live entries")).await;
    let res = hub
        .gql(
            Some(&admin),
            "mutation { createAlertRule(input: { name: \"second\", metric: \"load.1\", threshold: 99, forSeconds: 60 }) { id } }",
            json!({}),
        )
        .await;
    assert!(res["data"]["createAlertRule"]["id"].is_string(), "{res}");
    b.wait_for("button", Some("Resume (1 new)"), 20).await;
    let shot = b.screenshot("audit").await;
    keep_for_readme(&shot, "audit");
    b.click_on("button", Some("Resume (1 new)")).await;
    let first = b.wait_for("table[aria-label='Audit log'] tbody tr", None, 10).await;
    assert!(b.text(&first).await.contains("alert_rule.create"), "the held entry is on top");
    b.close().await;
    hub.stop().await;
}

/// A custom role with two permissions, made in the form: it shows with its checklist and in the
/// matrix, changes, and goes; the built-in roles offer no delete.
/// Issue 10's people work: a user made in the browser signs in elsewhere with the password shown
/// once, gets Moderator and sees their navigation grow after their next token refresh, changes
/// their password (the policy answering as they type) and their other session ends; the last
/// admin cannot demote themselves; an invitation link registers a newcomer; a user is deleted
/// after typing their address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_made_given_roles_and_signed_out() {
    let hub = hub_with(&["--access-token-ttl", "30", "--registration", "invite"]).await;
    let driver = Driver::start().await;
    let admin = Browser::open(&driver, 1440, 1000).await;
    sign_in(&admin, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    admin.click_on("nav a", Some("Users")).await;
    admin.wait_for("table[aria-label=Users] td", Some(ADMIN_EMAIL), 20).await;
    admin.fill("#email", "casey@hub.test").await;
    admin.fill("#new-display-name", "Casey").await;
    admin.click_on("button[type=submit]", Some("Create user")).await;
    admin.wait_for("[data-testid=shown-once]", None, 20).await;
    let password = admin.exec("return document.querySelector('[data-testid=shown-once]').value", json!([])).await;
    let password = password.as_str().unwrap().to_owned();
    assert_eq!(password.len(), 20, "{password}");
    admin.wait_for("table[aria-label=Users] td", Some("casey@hub.test"), 20).await;

    // Casey signs in elsewhere with it: a User, no admin pages.
    let casey = Browser::open(&driver, 1280, 900).await;
    sign_in(&casey, &hub, "casey@hub.test", &password).await;
    casey.wait_for("[data-testid=user]", Some("Casey"), 20).await;
    assert!(casey.find_all("nav a").await.len() >= 2);
    for el in casey.find_all("nav a").await {
        assert_ne!(casey.text(&el).await, "Audit log", "a User has no audit log");
    }
    // A second session of Casey's, to see it end with the password change.
    let casey_too = Browser::open(&driver, 1024, 800).await;
    sign_in(&casey_too, &hub, "casey@hub.test", &password).await;

    // The admin makes Casey a Moderator; Casey's navigation grows after their next refresh.
    admin.click_on("table[aria-label=Users] tbody tr", Some("casey@hub.test")).await;
    admin.click_on("tr.details label", Some("Moderator")).await;
    admin.click_on("tr.details button", Some("Save roles")).await;
    admin.wait_for("tr.details [role=status]", Some("Roles saved."), 20).await;
    casey.wait_for("nav a", Some("Audit log"), 40).await;
    admin.wait_for("table[aria-label=Users] td", Some("Moderator"), 20).await;
    admin.wait_for("tr.details button", Some("End their 2 sessions"), 20).await;
    admin.exec("window.scrollTo(0, 0)", json!([])).await;
    let shot = admin.screenshot("users").await;
    keep_for_readme(&shot, "users");

    // The last admin cannot demote themselves: the API's reason, in words.
    admin.click_on("table[aria-label=Users] tbody tr", Some(ADMIN_EMAIL)).await;
    admin.click_on("tr.details label", Some("Admin")).await;
    admin.click_on("tr.details button", Some("Save roles")).await;
    admin.wait_for("tr.details .note.error", Some("No enabled account would hold"), 20).await;

    // Casey changes the password on their profile: the policy answers while typing; then every
    // session ends, the other one too.
    casey.click_on("[data-testid=user]", None).await;
    casey.wait_for("h1", Some("Profile"), 20).await;
    casey.wait_for("table[aria-label=Sessions] .badge", Some("this device"), 20).await;
    let rows = casey.find_all("table[aria-label=Sessions] tbody tr").await;
    assert_eq!(rows.len(), 2, "both of Casey's sessions are listed");
    casey.fill("#currentPassword", &password).await;
    casey.fill("#newPassword", "password1").await;
    casey.wait_for("#newPassword ~ .field-error", Some("common"), 20).await;
    casey.fill("#newPassword", "casey's own long passphrase").await;
    casey.fill("#newPasswordAgain", "casey's own long passphrase").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(casey.find("#newPassword ~ .field-error").await.is_none(), "a good password passes");
    let shot = casey.screenshot("profile").await;
    keep_for_readme(&shot, "profile");
    casey.click_on("button[type=submit]", Some("Change password")).await;
    casey.wait_for(".note", Some("sign in with the new one"), 20).await;
    casey_too.wait_for("h1", Some("Sign in"), 40).await;
    sign_in(&casey, &hub, "casey@hub.test", "casey's own long passphrase").await;

    // An invitation link registers a newcomer as its role; the list shows it used.
    admin.goto(&hub.url("/users")).await;
    admin.fill("#invite-email", "dana@hub.test").await;
    admin.click_on("button[type=submit]", Some("Invite")).await;
    admin.wait_for("[data-testid=shown-once]", None, 20).await;
    let link = admin.exec("return document.querySelector('[data-testid=shown-once]').value", json!([])).await;
    let link = link.as_str().unwrap().to_owned();
    assert!(link.contains("/register?invitation="), "{link}");
    casey_too.goto(&link).await;
    casey_too.fill("#email", "dana@hub.test").await;
    casey_too.fill("#password", "dana's long passphrase").await;
    casey_too.click_on("button[type=submit]", None).await;
    casey_too.wait_for("[data-testid=user]", None, 20).await;
    admin.goto(&hub.url("/users")).await;
    admin.wait_for("table[aria-label=Invitations] td", Some("by dana@hub.test"), 20).await;

    // Deleting Casey needs their address typed.
    admin.click_on("table[aria-label=Users] tbody tr", Some("casey@hub.test")).await;
    admin.click_on("tr.details button.danger", Some("Delete")).await;
    let confirm = admin.wait_for("tr.details [role=alertdialog] button.danger", None, 10).await;
    admin.click(&confirm).await;
    assert!(admin.find("tr.details [role=alertdialog]").await.is_some(), "nothing happens before the address is typed");
    admin.fill("tr.details [role=alertdialog] input", "casey@hub.test").await;
    admin.click(&confirm).await;
    let gone = async {
        for _ in 0..100 {
            let rows =
                admin.exec("return document.querySelector('table[aria-label=Users]').innerText", json!([])).await;
            if !rows.as_str().unwrap_or_default().contains("casey@hub.test") {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(gone.await, "Casey's row is gone");
    casey.wait_for("h1", Some("Sign in"), 40).await;
    casey_too.close().await;
    casey.close().await;
    admin.close().await;
    hub.stop().await;
}

/// A grant given from the user's row reaches their open dashboard at once (the hub's `myAccess`
/// feed), shows in the roles page's per-server matrix, and its revocation takes the server away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_reaches_an_open_dashboard_and_goes_again() {
    let hub = hub_with(&[]).await;
    let admin_token = hub.admin_token().await;
    hub.create_server_from(
        &admin_token,
        "shared-one",
        "name = \"Idle\"\nexecutable = \"/bin/sleep\"\nargs = [\"600\"]\n",
    )
    .await;
    hub.user_with_roles("uma@hub.test", &["User"]).await;
    let driver = Driver::start().await;
    let uma = Browser::open(&driver, 1280, 900).await;
    sign_in(&uma, &hub, "uma@hub.test", "another long passphrase").await;
    uma.wait_for(".empty", Some("You see no servers yet."), 20).await;
    uma.wait_for("[data-testid=connection]", Some("Live"), 20).await;

    let admin = Browser::open(&driver, 1440, 1000).await;
    sign_in(&admin, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    admin.click_on("nav a", Some("Users")).await;
    admin.click_on("table[aria-label=Users] tbody tr", Some("uma@hub.test")).await;
    admin.click_on("tr[data-server=shared-one] label", Some("read")).await;
    admin.click_on("tr[data-server=shared-one] button", Some("Save")).await;
    admin.wait_for("tr[data-server=shared-one] button[disabled]", Some("Save"), 20).await;
    uma.wait_for("[data-server=shared-one] h3", Some("shared-one"), 20).await;
    assert!(
        uma.find("[data-server=shared-one] button[data-action]").await.is_none(),
        "read alone offers no power button"
    );
    // A key more: the card already shown gains its button.
    admin.click_on("tr[data-server=shared-one] label", Some("start")).await;
    admin.click_on("tr[data-server=shared-one] button", Some("Save")).await;
    admin.wait_for("tr[data-server=shared-one] button[disabled]", Some("Save"), 20).await;
    uma.wait_for("[data-server=shared-one] button", Some("Start"), 20).await;

    admin.click_on("nav a", Some("Roles")).await;
    admin.wait_for("table[aria-label='Grants by server'] td", Some("read, start"), 20).await;
    admin.exec("document.querySelector(\"table[aria-label='Roles against permissions']\")?.scrollIntoView({ block: 'start' })", json!([])).await;
    let shot = admin.screenshot("roles-grants").await;
    keep_for_readme(&shot, "roles-grants");

    // Taken away: every key unticked is a revocation, and the card leaves Uma's dashboard.
    admin.click_on("nav a", Some("Users")).await;
    admin.click_on("table[aria-label=Users] tbody tr", Some("uma@hub.test")).await;
    admin.click_on("tr[data-server=shared-one] label", Some("read")).await;
    admin.click_on("tr[data-server=shared-one] label", Some("start")).await;
    admin.click_on("tr[data-server=shared-one] button", Some("Revoke")).await;
    uma.wait_for(".empty", Some("You see no servers yet."), 20).await;
    admin.close().await;
    uma.close().await;
    hub.stop().await;
}

/// The settings page: the hub's facts and its configuration, secrets only as "set".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_shows_the_hub_without_secrets() {
    let hub = hub_with(&[]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1440, 1000).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.click_on("nav a", Some("Settings")).await;
    b.wait_for("[data-testid=hub-facts]", Some("SQLite"), 20).await;
    b.wait_for("table[aria-label=Configuration] tr", Some("admin_password"), 20).await;
    let row = b.wait_for("table[aria-label=Configuration] tr", Some("admin_password"), 5).await;
    assert!(b.text(&row).await.contains("set (secret)"), "{}", b.text(&row).await);
    let page = b.exec("return document.body.innerText", json!([])).await;
    assert!(!page.as_str().unwrap().contains(ADMIN_PASSWORD), "the admin password is on the page");
    let shot = b.screenshot("settings").await;
    keep_for_readme(&shot, "settings");
    b.fill("input[type=search]", "metrics_interval").await;
    let rows = b.find_all("table[aria-label=Configuration] tbody tr").await;
    assert_eq!(rows.len(), 1, "the filter leaves one option");
    assert!(b.text(&rows[0]).await.contains("command line"));
    b.close().await;
    hub.stop().await;
}

/// A template written in the browser: the hub's check answers as it is typed (a syntax error by
/// line and column), "try it" renders the argv for given values and names a value that fails its
/// rule, the template is created, a server is made from it and runs, and the template cannot be
/// deleted while that server exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_written_tried_and_used() {
    let hub = hub_with(&[]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1440, 1000).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.click_on("nav a", Some("Templates")).await;
    b.wait_for(".template-list button", Some("Custom command"), 20).await;
    b.wait_for("[data-testid=argv]", Some("/usr/games/my-game-server"), 20).await;
    b.click_on("[role=tab]", Some("TOML")).await;
    b.fill("#definition", "name = \"Broken\"\nexecutable = /bin/true").await;
    b.wait_for("[data-testid=template-check] .field-error", Some("line 2, column 14"), 20).await;
    let form_tab = b.wait_for("[role=tab]:disabled", Some("Form"), 10).await;
    assert_eq!(b.text(&form_tab).await, "Form", "no form of a file with a syntax error");
    let sleeper = "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"{{SECONDS}}\"]\n\n[[variables]]\nkey = \"SECONDS\"\n\
                   default = \"300\"\nrule = { integer = { min = 1, max = 3600 } }\n";
    b.fill("#definition", sleeper).await;
    b.wait_for("[data-testid=argv]", Some("300"), 20).await;
    b.fill("#try-seconds", "5000").await;
    b.wait_for(".try .field-error", Some("SECONDS"), 20).await;
    b.fill("#try-seconds", "42").await;
    let argv = b.wait_for("[data-testid=argv]", Some("42"), 20).await;
    assert_eq!(b.text(&argv).await, "/bin/sleep\n42", "one argument per line");
    b.click_on("button", Some("Create template")).await;
    b.wait_for(".template-list button", Some("Sleeper"), 20).await;
    b.wait_for(".editor [role=status]", Some("Created."), 20).await;
    let shot = b.screenshot("templates").await;
    keep_for_readme(&shot, "templates");

    start_a_sleeper_from(&b, &hub, "Sleeper", "napper").await;

    b.click_on("nav a", Some("Templates")).await;
    b.click_on(".template-list button", Some("Sleeper")).await;
    b.click_on(".editor button.danger", Some("Delete")).await;
    b.click_on(".editor [role=alertdialog] button.danger", None).await;
    b.wait_for(".editor .note.error", Some("server"), 20).await;
    b.close().await;
    hub.stop().await;
}

/// Makes a server named `name` from a template with a SECONDS variable, starts it and sees it run.
async fn start_a_sleeper_from(b: &Browser, hub: &TestHub, template: &str, name: &str) {
    b.goto(&hub.url("/servers/new")).await;
    b.click_on("#template option", Some(template)).await;
    b.fill("#name", name).await;
    b.wait_for("#var-SECONDS", None, 10).await;
    b.click_on("button[type=submit]", None).await;
    b.wait_for("h1", Some(name), 20).await;
    b.click_on("button[data-action=start]", None).await;
    b.wait_for("[data-testid=state]", Some("RUNNING"), 30).await;
}

/// The form view: each mistake on the field the hub names, the TOML written from the form and
/// read back into it, and a server made from the template runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_made_in_the_form_and_a_server_runs_from_it() {
    let hub = hub_with(&[]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1440, 1100).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.click_on("nav a", Some("Templates")).await;
    b.wait_for("[role=tab][aria-selected=true]", Some("Form"), 20).await;
    b.fill("#tf-name", "Form sleeper").await;
    b.fill("#tf-executable", "/bin/sleep").await;
    b.fill("#tf-args", "{{SECONDS}}").await;
    b.wait_for("#tf-args-error", Some("unknown placeholder {{SECONDS}}"), 20).await;
    b.fill("#tf-variables-0-key", "SECONDS").await;
    b.wait_for("#tf-portVariable-error", Some("not a variable with rule"), 20).await;
    b.click_on("#tf-portVariable option", Some("(none)")).await;
    b.click_on("#tf-variables-0-rule option", Some("a whole number")).await;
    b.wait_for("#tf-variables-0-default-error", Some("the default is not"), 20).await;
    b.fill("#tf-variables-0-rule-max", "3600").await;
    b.fill("#tf-variables-0-default", "300").await;
    b.click_on("#tf-ready", None).await;
    b.wait_for("[data-testid=template-check]", Some("A valid template."), 20).await;
    let argv = b.wait_for("[data-testid=argv]", Some("300"), 20).await;
    assert_eq!(b.text(&argv).await, "/bin/sleep\n300");
    assert!(b.find(".field.invalid").await.is_none(), "no field is marked once it is valid");

    // The file the form wrote, and the form read back from it.
    b.click_on("[role=tab]", Some("TOML")).await;
    b.wait_for("#definition", None, 10).await;
    let toml = b.exec("return document.getElementById('definition').value", json!([])).await;
    let toml = toml.as_str().unwrap_or_default();
    for part in ["name = \"Form sleeper\"", "args = [\"{{SECONDS}}\"]", "rule = { integer = { min = 0, max = 3600 } }"]
    {
        assert!(toml.contains(part), "{part} in\n{toml}");
    }
    assert!(!toml.contains("[ready]") && !toml.contains("port_variable"), "{toml}");
    b.click_on("[role=tab]", Some("Form")).await;
    b.wait_for("#tf-variables-0-key", None, 20).await;
    let name = b.exec("return document.getElementById('tf-name').value", json!([])).await;
    assert_eq!(name, "Form sleeper");
    b.click_on("button", Some("Create template")).await;
    b.wait_for(".editor [role=status]", Some("Created."), 20).await;
    b.wait_for(".template-list button", Some("Form sleeper"), 20).await;
    assert!(b.find("#tf-name").await.is_some(), "the form stays after saving");
    b.exec("window.scrollTo(0, 0)", json!([])).await;
    let shot = b.screenshot("template-form").await;
    keep_for_readme(&shot, "template-form");

    start_a_sleeper_from(&b, &hub, "Form sleeper", "form-napper").await;

    // A built-in template copied in the form: a new one with another name.
    b.click_on("nav a", Some("Templates")).await;
    b.click_on(".template-list button", Some("Custom command")).await;
    b.wait_for("#tf-name:disabled", None, 20).await;
    b.click_on("button", Some("Copy as new")).await;
    b.wait_for("#editor-title", Some("New template"), 10).await;
    b.wait_for("#tf-name:enabled", None, 20).await;
    let name = b.exec("return document.getElementById('tf-name').value", json!([])).await;
    assert_eq!(name, "Copy of Custom command");
    b.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_role_is_made_changed_and_deleted() {
    let hub = hub_with(&[]).await;
    let driver = Driver::start().await;
    let b = Browser::open(&driver, 1440, 1000).await;
    sign_in(&b, &hub, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.click_on("nav a", Some("Roles")).await;
    b.wait_for("form[data-role=Admin] .badge", Some("built-in"), 20).await;
    assert!(b.find("form[data-role=Admin] button.danger").await.is_none(), "a built-in role offers no delete");
    b.fill("#new-role-name", "Operators").await;
    b.click_on("#new-role-server-read", None).await;
    b.click_on("#new-role-server-start", None).await;
    b.click_on("button[type=submit]", Some("Create the role")).await;
    b.wait_for("form[data-role=Operators] h2", Some("Operators"), 20).await;
    let admin = hub.admin_token().await;
    let keys_of = |res: &serde_json::Value| {
        res["data"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "Operators")
            .map(|r| r["permissions"].clone())
    };
    let res = hub.gql(Some(&admin), "{ roles { name permissions } }", json!({})).await;
    assert_eq!(keys_of(&res), Some(json!(["server.read", "server.start"])), "{res}");
    let matrix = b.wait_for("table.matrix", None, 10).await;
    assert!(b.text(&matrix).await.contains("Operators"));
    b.exec("window.scrollTo(0, 0)", json!([])).await;
    let shot = b.screenshot("roles").await;
    keep_for_readme(&shot, "roles");
    // Change it: one key more.
    let id = hub.gql(Some(&admin), "{ roles { id name } }", json!({})).await["data"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Operators")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click_on(&format!("#role-{id}-audit-read"), None).await;
    b.click_on("form[data-role=Operators] button[type=submit]", None).await;
    b.wait_for("form[data-role=Operators] [role=status]", Some("Saved"), 20).await;
    let res = hub.gql(Some(&admin), "{ roles { name permissions } }", json!({})).await;
    assert_eq!(keys_of(&res), Some(json!(["server.read", "server.start", "audit.read"])), "{res}");
    // Delete it, asked twice.
    b.click_on("form[data-role=Operators] button.danger", Some("Delete")).await;
    b.click_on("form[data-role=Operators] button.danger", Some("Delete the role")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let res = hub.gql(Some(&admin), "{ roles { name permissions } }", json!({})).await;
    assert_eq!(keys_of(&res), None, "the role is gone: {res}");
    assert!(b.find("form[data-role=Operators]").await.is_none());
    b.close().await;
    hub.stop().await;
}

/// The WASM and JS a browser downloads stay within 600 KiB gzipped (`cargo xtask web` prints it).
#[test]
fn the_web_app_fits_its_size_budget() {
    let mut total = 0;
    for entry in std::fs::read_dir(dist()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "wasm" || x == "js") {
            let out = Command::new("gzip").args(["-9", "-c"]).arg(&path).output().unwrap();
            assert!(out.status.success());
            total += out.stdout.len();
        }
    }
    assert!(total > 0, "the built app has its WASM and JS");
    assert!(total <= 600 * 1024, "the web app weighs {total} bytes gzipped, over 600 KiB");
}
