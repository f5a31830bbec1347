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

/// Random documents against the real schema (proptest; `cargo xtask fuzz` runs more cases):
/// real and made-up fields with aliases, arguments of every kind, directives, inline fragments,
/// named fragments that spread each other (cycles included), alias and fragment bombs, and
/// random text. Every answer is JSON with coded errors and no INTERNAL one, comes within
/// seconds, and the hub goes on serving with bounded memory.
mod fuzz {
    use std::time::{Duration, Instant};

    use proptest::{prelude::*, test_runner::TestRunner};

    use super::*;

    const FIELDS: &[&str] = &[
        "hubInfo",
        "hubOverview",
        "me",
        "users",
        "user",
        "invitations",
        "roles",
        "permissions",
        "servers",
        "server",
        "templates",
        "checkTemplate",
        "hostMetrics",
        "serverMetrics",
        "alertRules",
        "alerts",
        "auditLog",
        "passwordProblem",
        "id",
        "name",
        "email",
        "state",
        "version",
        "__typename",
        "__schema",
        "types",
        "fields",
        "variables",
        "consoleTail",
        "line",
        "rule",
        "nope",
        "createRole",
        "login",
    ];

    fn value() -> BoxedStrategy<String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
            "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
            "[A-Z_]{1,8}",
            Just("$v".to_owned()),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
                proptest::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|v| {
                    format!("{{{}}}", v.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))
                }),
            ]
        })
        .boxed()
    }

    fn field_name() -> BoxedStrategy<String> {
        prop_oneof![4 => proptest::sample::select(FIELDS).prop_map(str::to_owned), 1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}"]
            .boxed()
    }

    /// A selection set's items.
    fn selections() -> BoxedStrategy<String> {
        let field = (
            proptest::option::of("[a-z][a-z0-9]{0,5}"),
            field_name(),
            proptest::option::of(proptest::collection::vec(("[a-zA-Z]{1,8}", value()), 0..3)),
            proptest::option::of((prop_oneof![Just("include"), Just("skip"), Just("deprecated")], value())),
        )
            .prop_map(|(alias, name, args, directive)| {
                let mut f = alias.map(|a| format!("{a}: ")).unwrap_or_default() + &name;
                if let Some(args) = args {
                    let args: Vec<String> = args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    f += &format!("({})", args.join(", "));
                }
                if let Some((d, v)) = directive {
                    f += &format!(" @{d}(if: {v})");
                }
                f
            })
            .boxed();
        let leaf = prop_oneof![field.clone(), (0..4u8).prop_map(|n| format!("...F{n}"))];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                (field.clone(), proptest::collection::vec(inner.clone(), 1..6))
                    .prop_map(|(f, inside)| format!("{f} {{ {} }}", inside.join(" "))),
                (
                    proptest::option::of(prop_oneof![Just("Query"), Just("User"), Just("GameServer")]),
                    proptest::collection::vec(inner, 1..4)
                )
                    .prop_map(|(on, inside)| {
                        format!("... {}{{ {} }}", on.map(|t| format!("on {t} ")).unwrap_or_default(), inside.join(" "))
                    }),
            ]
        })
        .boxed()
    }

    fn document() -> impl Strategy<Value = String> {
        let operation = (
            prop_oneof![Just(""), Just("query Q($v: String)"), Just("mutation"), Just("subscription"), Just("query")],
            proptest::collection::vec(selections(), 1..5),
        )
            .prop_map(|(kind, items)| format!("{kind} {{ {} }}", items.join(" ")));
        let fragments = proptest::collection::vec(
            (
                0..4u8,
                prop_oneof![Just("Query"), Just("User"), Just("Nope")],
                proptest::collection::vec(selections(), 1..4),
            ),
            0..4,
        )
        .prop_map(|frags| {
            frags
                .into_iter()
                .map(|(n, on, items)| format!("fragment F{n} on {on} {{ {} }}", items.join(" ")))
                .collect::<Vec<_>>()
        });
        // Bombs: a thousand aliases, fragments spreading the one before twice (2^n fields if
        // expanded), and text that is no document at all.
        let aliases = (1..3000usize).prop_map(|n| {
            format!("{{ {} }}", (0..n).map(|i| format!("a{i}: servers {{ id name }}")).collect::<Vec<_>>().join(" "))
        });
        let fragment_bomb = (2..40usize).prop_map(|n| {
            let mut doc = String::from("{ ...B0 } fragment B0 on Query { me { id } }");
            for i in 1..=n {
                doc += &format!(" fragment B{i} on Query {{ ...B{} ...B{} }}", i - 1, i - 1);
            }
            doc.replace("{ ...B0 }", &format!("{{ ...B{n} }}"))
        });
        prop_oneof![
            8 => (operation, fragments).prop_map(|(op, frags)| format!("{op} {}", frags.join(" "))),
            1 => aliases,
            1 => fragment_bomb,
            1 => "\\PC{0,300}",
            1 => "[{}()\\[\\]$@!:.a-z\" ]{0,300}",
        ]
    }

    #[test]
    fn random_documents_get_coded_answers() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let hub = rt.block_on(TestHub::start(Backend::Sqlite));
        let admin = rt.block_on(hub.admin_token());
        let before = common::rss_kib();
        let slowest = std::cell::Cell::new(Duration::ZERO);
        let mut runner = TestRunner::new(ProptestConfig::default());
        let result = runner.run(&(document(), value()), |(query, v)| {
            let variables = serde_json::from_str::<Value>(&v).unwrap_or(Value::String(v));
            let asked = Instant::now();
            let (status, res) =
                rt.block_on(post(&hub, Some(&admin), json!({ "query": query, "variables": { "v": variables } })));
            let took = asked.elapsed();
            slowest.set(slowest.get().max(took));
            prop_assert!(took < Duration::from_secs(5), "{took:?} for {query}");
            prop_assert!(status.as_u16() < 500, "{status} for {query}: {res}");
            prop_assert!(res["data"].is_object() || res["errors"].is_array(), "{query}: {res}");
            for e in res["errors"].as_array().into_iter().flatten() {
                let code = e["extensions"]["code"].as_str().unwrap_or_default();
                prop_assert!(
                    ["BAD_USER_INPUT", "FORBIDDEN", "NOT_FOUND", "UNAUTHENTICATED", "RATE_LIMITED", "CONFLICT"]
                        .contains(&code),
                    "error without a client code for {query}: {res}"
                );
            }
            Ok(())
        });
        let grown = common::rss_kib().saturating_sub(before);
        eprintln!(
            "{} random documents; the slowest answer took {:?}; RSS grew {grown} KiB",
            runner.config().cases,
            slowest.get()
        );
        if let Err(e) = result {
            panic!("{e}");
        }
        let info = rt.block_on(hub.gql(None, "{ hubInfo { version } }", json!({})));
        assert!(info["data"]["hubInfo"]["version"].is_string(), "the hub still serves: {info}");
        assert!(grown < 256 * 1024, "memory grew by {grown} KiB");
        rt.block_on(hub.stop());
    }
}
