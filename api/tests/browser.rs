//! The web app in a real headless Chromium: it loads from the hub and shows the version it
//! fetched from the API.
//!
//! Needs the built app (web/dist: `cargo xtask web`) and Chromium (`cargo xtask test` installs
//! both); KUTANGA_TEST_CHROMIUM overrides the browser's path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use common::{Backend, Store, TestHub};

fn dist() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist"));
    assert!(
        dir.join("index.html").is_file(),
        "the web app is not built at {}: run `cargo xtask web` (cargo xtask test does it)",
        dir.display()
    );
    dir
}

fn chromium() -> String {
    let path = std::env::var("KUTANGA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "Chromium is not at {path}: install it (apt-get install chromium; cargo xtask test does) or set KUTANGA_TEST_CHROMIUM"
    );
    path
}

/// The page's DOM after its scripts ran, as headless Chromium sees it.
async fn rendered_dom(url: String) -> String {
    let browser = chromium();
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                &format!("--user-data-dir={}", profile.path().display()),
                // Virtual time runs the app (wasm load, fetch, render) before the DOM is dumped.
                "--virtual-time-budget=10000",
                "--dump-dom",
                &url,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap()
}

async fn the_page_shows_the_version_from_the_api(backend: Backend) {
    let dist = dist();
    // A name no build contains: it can only come from this hub's API.
    let name = format!("Browser Hub {}", std::process::id());
    let hub =
        TestHub::start_with(Store::new(backend).await, &["--web-dir", dist.to_str().unwrap(), "--hub-name", &name])
            .await;
    let mut dom = String::new();
    for _ in 0..3 {
        dom = rendered_dom(hub.url("/")).await;
        if dom.contains("hub-version") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(dom.contains(&format!("<h1 id=\"hub-name\">{name}</h1>")), "{dom}");
    assert!(dom.contains(&format!("<span id=\"hub-version\">{}</span>", env!("CARGO_PKG_VERSION"))), "{dom}");
    // A deep link is answered with the app too (SPA fallback).
    let deep = rendered_dom(hub.url("/servers/1")).await;
    assert!(deep.contains(&name), "{deep}");
    hub.stop().await;
}

on_both!(the_page_shows_the_version_from_the_api);

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
