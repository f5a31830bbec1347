//! GraphQL subscriptions over WebSocket (graphql-transport-ws): authentication in
//! connection_init, live audit events, permission checks and shutdown with a close frame.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, TestHub};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, protocol::frame::coding::CloseCode},
};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(hub: &TestHub) -> Ws {
    let mut req = hub.ws_url().into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    ws
}

/// The next message within 10 s: JSON for text, or the close code and reason.
async fn next(ws: &mut Ws) -> Result<Value, (u16, String)> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(frame) => {
                let frame = frame.expect("a close frame with a code");
                return Err((u16::from(frame.code), frame.reason.to_string()));
            }
            _ => continue,
        }
    }
}

async fn init(ws: &mut Ws, payload: Value) -> Result<Value, (u16, String)> {
    ws.send(Message::Text(json!({ "type": "connection_init", "payload": payload }).to_string().into())).await.unwrap();
    next(ws).await
}

async fn subscribe(ws: &mut Ws, id: &str, query: &str) {
    let msg = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    ws.send(Message::Text(msg.to_string().into())).await.unwrap();
}

async fn audit_events_arrive_live(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    let mut ws = connect(&hub).await;
    let ack = init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await.unwrap();
    assert_eq!(ack["type"], "connection_ack");
    subscribe(
        &mut ws,
        "1",
        "subscription { auditEvents(filter: { action: \"auth.login\" }) { action ip actor { email } } }",
    )
    .await;
    // Let the subscription register on the bus before the event happens.
    tokio::time::sleep(Duration::from_millis(300)).await;
    hub.user_with_roles("watcher@hub.test", &["User"]).await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], "1");
    let event = &msg["payload"]["data"]["auditEvents"];
    assert_eq!(event["action"], "auth.login", "the user.create entry is filtered out: {msg}");
    assert_eq!(event["actor"]["email"], "watcher@hub.test");
    assert_eq!(event["ip"], "127.0.0.1");
    hub.stop().await;
}

async fn connection_init_without_a_valid_token_closes_4403(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for payload in [json!({}), json!({ "authorization": "Bearer not-a-token" }), json!({ "authorization": "Basic x" })]
    {
        let mut ws = connect(&hub).await;
        let closed = init(&mut ws, payload.clone()).await.unwrap_err();
        assert_eq!(closed.0, 4403, "{payload}");
    }
    // Subscribing before connection_init is refused too.
    let mut ws = connect(&hub).await;
    subscribe(&mut ws, "1", "subscription { auditEvents { id } }").await;
    let closed = next(&mut ws).await.unwrap_err();
    assert_ne!(closed.0, 1000);
    hub.stop().await;
}

async fn a_subscription_needs_its_permission(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.user_with_roles("player@hub.test", &["User"]).await;
    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await.unwrap();
    subscribe(&mut ws, "7", "subscription { auditEvents { id } }").await;
    let msg = next(&mut ws).await.unwrap();
    // An execution error arrives as a `next` with errors and no data, then `complete`.
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["payload"]["data"], Value::Null);
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(next(&mut ws).await.unwrap()["type"], "complete");
    hub.stop().await;
}

async fn shutdown_closes_sockets_with_a_close_frame(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await.unwrap();
    subscribe(&mut ws, "1", "subscription { auditEvents { id } }").await;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(hub.stop());
    let closed = next(&mut ws).await.unwrap_err();
    assert_eq!(closed.0, u16::from(CloseCode::Away), "{closed:?}");
    stopping.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "stopped in {:?}", started.elapsed());
}

async fn a_subscription_ends_when_access_is_taken_away(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let mod_id =
        hub.gql(Some(&moderator), "{ me { id } }", json!({})).await["data"]["me"]["id"].as_str().unwrap().to_owned();
    let roles = hub.gql(Some(&admin), "{ roles { id name } }", json!({})).await;
    let user_role =
        roles["data"]["roles"].as_array().unwrap().iter().find(|r| r["name"] == "User").unwrap()["id"].clone();

    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {moderator}") })).await.unwrap();
    subscribe(&mut ws, "1", "subscription { auditEvents { action } }").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Demoted to User: the next message is the end of the stream, not the entry of the demotion.
    let res = hub
        .gql(
            Some(&admin),
            "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }",
            json!({ "u": mod_id, "r": [user_role] }),
        )
        .await;
    assert!(res["errors"].is_null(), "{res}");
    let mut saw_error = false;
    loop {
        let msg = next(&mut ws).await.unwrap();
        match msg["type"].as_str().unwrap() {
            "next" if msg["payload"]["errors"].is_array() => {
                assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{msg}");
                saw_error = true;
            }
            "next" => assert!(!saw_error, "nothing after the error: {msg}"),
            "complete" => break,
            other => panic!("unexpected {other}: {msg}"),
        }
    }
    assert!(saw_error);
    // Nothing more arrives for that subscription.
    hub.login(common::ADMIN_EMAIL, common::ADMIN_PASSWORD).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
    assert!(quiet.is_err(), "the socket stays quiet: {quiet:?}");
    hub.stop().await;
}

on_both!(
    a_subscription_ends_when_access_is_taken_away,
    audit_events_arrive_live,
    connection_init_without_a_valid_token_closes_4403,
    a_subscription_needs_its_permission,
    shutdown_closes_sockets_with_a_close_frame,
);
