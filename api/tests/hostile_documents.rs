//! Documents built to hurt: nested deep and wide in every shape, thrown at POST, GET and the
//! WebSocket; and batches too large or too costly as a whole. Each gets a coded error and the
//! hub goes on serving (a stack overflow would abort this very process).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestHub, code, ws_as};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A small deterministic generator, so that a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Documents nested `depth` levels, one of each shape, and a few random mixtures.
fn deep_documents(depth: usize, seed: u64) -> Vec<(String, String)> {
    let nest = |open: &str, close: &str, inner: &str| format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
    let mut docs = vec![
        ("list value".into(), format!("{{ users(search: {}) {{ id }} }}", nest("[", "]", "1"))),
        ("object value".into(), format!("{{ users(search: {}) {{ id }} }}", nest("{a: ", "}", "1"))),
        ("selection sets".into(), format!("{}id{}", "{ me ".repeat(depth), " }".repeat(depth))),
        (
            "inline fragments".into(),
            format!("{{ {} __typename {} }}", "... on Query { ".repeat(depth), "}".repeat(depth)),
        ),
        ("directive argument".into(), format!("{{ me @include(if: {}) {{ id }} }}", nest("[", "]", "true"))),
        ("parentheses".into(), format!("{{ me{} }}", "(".repeat(depth))),
        // The parser reads an unterminated block string as two empty strings, then the rest as code.
        (
            "unterminated block string".into(),
            format!("{{ f(x: [\"\"\"\"{}{}]) }}", "[".repeat(depth), "]".repeat(depth)),
        ),
        ("unclosed".into(), format!("{{ users(search: {}", "[{a: ".repeat(depth / 2 + 1))),
        (
            "mutation input".into(),
            format!("mutation {{ createUser(email: {}, password: \"x\") {{ id }} }}", nest("[", "]", "\"e\"")),
        ),
    ];
    let mut rng = Lcg(seed);
    for n in 0..4 {
        let mut doc = String::from("{ users(search: ");
        for _ in 0..depth {
            doc.push_str(["[", "{k: ", "[1, ", "{a: 1, b: "][(rng.next() % 4) as usize]);
        }
        docs.push((format!("random mixture {n} (seed {seed})"), doc));
    }
    docs
}

fn assert_bad_input(res: &Value, what: &str) {
    assert_eq!(code(res), "BAD_USER_INPUT", "{what}: {res}");
    // No made-up place in the document (line 0, column 0): the error has none.
    assert!(res["errors"][0]["locations"].as_array().is_none_or(|l| l.iter().all(|p| p["line"] != 0)), "{what}: {res}");
}

async fn post(hub: &TestHub, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = hub.http.post(hub.url("/graphql")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn deep_and_wide_documents_are_refused_at_every_entry(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let mut ws = ws_as(&hub, &admin).await;
    for (depth, seed) in [(33, 1), (100, 2), (2000, 3), (20_000, 4)] {
        for (shape, doc) in deep_documents(depth, seed) {
            let what = format!("{shape}, {depth} deep");
            // POST, with and without a token.
            for token in [None, Some(admin.as_str())] {
                let (_, res) = post(&hub, token, json!({ "query": doc })).await;
                assert_bad_input(&res, &format!("POST {what}"));
            }
            // GET, where a URL can carry it.
            if doc.len() < 16_000 {
                let res = hub.http.get(hub.url("/graphql")).query(&[("query", doc.as_str())]).send().await.unwrap();
                assert_eq!(res.status(), StatusCode::BAD_REQUEST, "GET {what}");
                assert_bad_input(&res.json().await.unwrap(), &format!("GET {what}"));
            }
            // The WebSocket.
            let id = format!("{depth}-{shape}");
            let msg = json!({ "id": id, "type": "subscribe", "payload": { "query": doc } });
            ws.send(Message::Text(msg.to_string().into())).await.unwrap();
            loop {
                let Message::Text(t) = ws.next().await.unwrap().unwrap() else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] != id.as_str() {
                    continue;
                }
                let errors = if v["type"] == "error" { &v["payload"] } else { &v["payload"]["errors"] };
                assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "WS {what}: {v}");
                break;
            }
        }
    }
    // Variables nested deeper than the limit (serde refuses past 128 with a 400 of its own).
    let deep = (0..100).fold(json!(1), |v, _| json!([v]));
    let (_, res) =
        post(&hub, None, json!({ "query": "query($v: String) { hubInfo { name } }", "variables": { "v": deep } }))
            .await;
    assert_bad_input(&res, "deep variables");
    let deeper = format!(
        "{{\"query\": \"{{ hubInfo {{ name }} }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let res = hub
        .http
        .post(hub.url("/graphql"))
        .header("content-type", "application/json")
        .body(deeper)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Wide but shallow documents are only as costly as their size and complexity allow.
    let wide_list = format!("{{ users(search: [{}]) {{ id }} }}", vec!["1"; 200_000].join(","));
    let (_, res) = post(&hub, Some(&admin), json!({ "query": wide_list })).await;
    assert_bad_input(&res, "a wide list");
    let aliases: String = (0..20_000).map(|i| format!("a{i}: hubInfo {{ name }} ")).collect();
    let (_, res) = post(&hub, None, json!({ "query": format!("{{ {aliases} }}") })).await;
    assert_bad_input(&res, "many aliases");
    // Legitimate documents within the limit still work everywhere.
    let fine = format!("{{ users(search: {}) {{ id }} }}", "\"a\"");
    let (_, res) = post(&hub, Some(&admin), json!({ "query": fine })).await;
    assert!(res["errors"].is_null(), "{res}");
    let (_, res) = post(&hub, None, json!({ "query": "{ hubInfo { name } }" })).await;
    assert_eq!(res["data"]["hubInfo"]["name"], "Kutanga Hub", "the hub still serves");
    hub.stop().await;
}

async fn batches_are_capped_and_costed_as_a_whole(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let op = json!({ "query": "{ hubInfo { name } }" });
    // Ten operations are fine; eleven, or ten thousand without a token, are not.
    let (status, res) = post(&hub, None, Value::Array(vec![op.clone(); 10])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res.as_array().unwrap().len(), 10);
    for n in [11, 10_000] {
        let (status, res) = post(&hub, None, Value::Array(vec![op.clone(); n])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n} operations");
        assert_bad_input(&res, &format!("{n} operations"));
    }
    // Each operation within the complexity limit, the batch far over it: only what fits runs.
    let aliases: String = (0..400).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let costly = json!({ "query": format!("{{ {aliases} }}") });
    let (_, res) = post(&hub, Some(&admin), Value::Array(vec![costly.clone(); 10])).await;
    let answers = res.as_array().unwrap();
    let ran = answers.iter().filter(|r| r["errors"].is_null()).count();
    assert_eq!(ran, 1, "800 of 1000 spent by the first; the rest is refused: {res}");
    for refused in answers.iter().filter(|r| !r["errors"].is_null()) {
        assert_bad_input(refused, "over the batch's budget");
    }
    // A single request still has the whole budget.
    let (_, res) = post(&hub, Some(&admin), costly).await;
    assert!(res["errors"].is_null(), "{res}");
    hub.stop().await;
}

async fn only_json_is_json(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for ct in ["application/jsonx", "application/json-patch+json", "text/plain"] {
        let res = hub
            .http
            .post(hub.url("/graphql"))
            .header("content-type", ct)
            .body(r#"{"query":"{ hubInfo { name } }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    let res = hub
        .http
        .post(hub.url("/graphql"))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(r#"{"query":"{ hubInfo { name } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store", "answers may carry tokens");
    hub.stop().await;
}

on_both!(
    deep_and_wide_documents_are_refused_at_every_entry,
    batches_are_capped_and_costed_as_a_whole,
    only_json_is_json
);
