//! Charts of the history: real SVG and PNG of the requested size, drawn from the collector's
//! samples, authorised like the history queries, with clear errors for bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, Store, TestHub};
use serde_json::Value;

async fn get(hub: &TestHub, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut req = hub.http.get(hub.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, res.bytes().await.unwrap().to_vec())
}

/// The PNG's size, read by a PNG decoder (which also checks the file).
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a valid PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("its pixels decode");
    // Not blank: the chart drew something besides the background.
    assert!(buf[..info.buffer_size()].iter().any(|&b| b != 255), "the PNG is blank");
    (info.width, info.height)
}

fn error(body: &[u8]) -> (String, Option<String>) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let ext = &v["errors"][0]["extensions"];
    (ext["code"].as_str().unwrap().to_owned(), ext["field"].as_str().map(str::to_owned))
}

async fn charts_are_real_pictures_of_the_requested_size(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (status, kind, body) = get(&hub, "/charts/host/memory.used_bytes.svg?width=640&height=320", Some(&admin)).await;
    assert_eq!((status, kind.as_str()), (200, "image/svg+xml"), "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8(body).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let svg = doc.root_element();
    assert_eq!(svg.tag_name().name(), "svg");
    assert_eq!((svg.attribute("width"), svg.attribute("height")), (Some("640"), Some("320")));
    assert!(doc.descendants().any(|n| n.tag_name().name() == "polyline" || n.tag_name().name() == "circle"), "a line");
    assert!(text.contains("memory.used_bytes (host)"), "titled");

    let from = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    let path = format!("/charts/host/cpu.percent.png?width=500&height=250&from={}", urlencode(&from));
    let (status, kind, body) = get(&hub, &path, Some(&admin)).await;
    assert_eq!((status, kind.as_str()), (200, "image/png"));
    assert_eq!(png_size(&body), (500, 250));
    hub.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn charts_are_guarded_and_bad_requests_are_named(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let user = hub.user_with_roles("player@hub.test", &["User"]).await;
    let (status, _, body) = get(&hub, "/charts/host/cpu.percent.png", None).await;
    assert_eq!((status, error(&body).0.as_str()), (401, "UNAUTHENTICATED"));
    let (status, _, body) = get(&hub, "/charts/host/cpu.percent.png", Some("not-a-token")).await;
    assert_eq!((status, error(&body).0.as_str()), (401, "UNAUTHENTICATED"));
    let (status, _, body) = get(&hub, "/charts/host/cpu.percent.png", Some(&user)).await;
    assert_eq!((status, error(&body).0.as_str()), (403, "FORBIDDEN"));
    let server = hub.create_burner(&admin).await;
    let (status, _, body) = get(&hub, &format!("/charts/server/{server}/cpu.percent.svg"), Some(&user)).await;
    assert_eq!((status, error(&body).0.as_str()), (404, "NOT_FOUND"), "a server the user cannot see");
    let (status, _, _) = get(&hub, &format!("/charts/server/{server}/cpu.percent.svg"), Some(&admin)).await;
    assert_eq!(status, 200, "an empty history is an empty chart");
    for (path, field) in [
        ("/charts/host/cpu.png", "metric"),
        ("/charts/host/cpu.percent.gif", "format"),
        ("/charts/host/cpu.percent.png?width=5", "width"),
        ("/charts/host/cpu.percent.png?height=99999", "height"),
        ("/charts/host/cpu.percent.png?from=yesterday", "from"),
        ("/charts/host/cpu.percent.png?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "range"),
    ] {
        let (status, _, body) = get(&hub, path, Some(&admin)).await;
        assert_eq!((status, error(&body)), (400, ("BAD_USER_INPUT".to_owned(), Some(field.to_owned()))), "{path}");
    }
    // A signed link must match what it signs.
    let (status, _, _) = get(&hub, "/charts/host/cpu.percent.png?exp=99999999999&sig=00ff", None).await;
    assert_eq!(status, 401);
    hub.stop().await;
}

on_both!(charts_are_real_pictures_of_the_requested_size, charts_are_guarded_and_bad_requests_are_named);
