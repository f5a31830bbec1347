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
    // Subscribing before the connection is acknowledged closes with 4401, as the protocol says.
    let mut ws = connect(&hub).await;
    subscribe(&mut ws, "1", "subscription { auditEvents { id } }").await;
    let closed = next(&mut ws).await.unwrap_err();
    assert_eq!(closed.0, 4401, "{closed:?}");
    hub.stop().await;
}

/// A page of another site cannot open the socket with a visitor's browser (cross-site WebSocket
/// hijacking); the hub's own pages, configured sites and clients without an Origin can.
async fn pages_of_other_sites_may_not_open_the_socket(backend: Backend) {
    let store = common::Store::new(backend).await;
    let hub = TestHub::start_with(store, &["--allowed-origins", "https://Console.Example.org:443/"]).await;
    let with_origin = |origin: &str| {
        let mut req = hub.ws_url().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req
    };
    let own = format!("http://{}", hub.ws_url().trim_start_matches("ws://").split('/').next().unwrap());
    for origin in [own.as_str(), "https://console.example.org"] {
        let (mut ws, _) = tokio_tungstenite::connect_async(with_origin(origin)).await.unwrap();
        let admin = hub.admin_token().await;
        let ack = init(&mut ws, json!({ "authorization": format!("Bearer {admin}") })).await.unwrap();
        assert_eq!(ack["type"], "connection_ack", "{origin}");
    }
    for origin in
        ["https://evil.example", "null", "http://console.example.org", "https://console.example.org.evil.example"]
    {
        match tokio_tungstenite::connect_async(with_origin(origin)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403, "{origin}"),
            other => panic!("{origin} opened a socket: {:?}", other.map(|(_, r)| r.status())),
        }
    }
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

/// A stop with 500 sockets open, each with a subscription: every client gets its close frame
/// (1001) and the hub is gone within its shutdown timeout.
async fn a_stop_closes_five_hundred_sockets_in_time(backend: Backend) {
    const SOCKETS: usize = 500;
    let store = common::Store::new(backend).await;
    let hub = TestHub::start_with(store, &["--ws-per-ip-per-minute", "10000", "--ws-per-account", "1000"]).await;
    let token = hub.admin_token().await;
    let opened = futures_util::future::join_all((0..SOCKETS).map(|_| async {
        let mut ws = connect(&hub).await;
        init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await.unwrap();
        subscribe(&mut ws, "1", "subscription { auditEvents { id } }").await;
        ws
    }))
    .await;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(hub.stop());
    let closes =
        futures_util::future::join_all(opened.into_iter().map(|mut ws| async move { next(&mut ws).await })).await;
    let away = closes.iter().filter(|c| matches!(c, Err((code, _)) if *code == u16::from(CloseCode::Away))).count();
    assert_eq!(away, SOCKETS, "every client got 1001: {:?}", closes.iter().find(|c| c.is_ok()));
    stopping.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "stopped in {:?}", started.elapsed());
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

/// The next `myAccess` answer: (global keys, [(server id, keys)]).
async fn next_access(ws: &mut Ws) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let msg = next(ws).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    let access = &msg["payload"]["data"]["myAccess"];
    let keys = |v: &Value| v.as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let servers = access["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("{msg}"))
        .iter()
        .map(|s| (s["serverId"].as_str().unwrap().to_owned(), keys(&s["permissions"])))
        .collect();
    (keys(&access["permissions"]), servers)
}

async fn my_access_follows_roles_and_grants_and_nothing_else(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let server = hub.create_burner(&admin).await;
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let uid = user_id(&hub, &user).await;
    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {user}") })).await.unwrap();
    subscribe(&mut ws, "1", "subscription { myAccess { permissions servers { serverId permissions } } }").await;
    let (keys, servers) = next_access(&mut ws).await;
    assert!(servers.is_empty() && !keys.contains(&"audit.read".to_owned()), "{keys:?} {servers:?}");
    // A grant: the server arrives with its keys.
    let grant =
        "mutation($s: ID!, $u: ID!, $k: [String!]!) { grantServerAccess(serverId: $s, userId: $u, permissions: $k) }";
    let res = hub.gql(Some(&admin), grant, json!({ "s": server, "u": uid, "k": ["server.start"] })).await;
    assert!(res["errors"].is_null(), "{res}");
    let (_, servers) = next_access(&mut ws).await;
    assert_eq!(servers, [(server.clone(), vec!["server.read".to_owned(), "server.start".to_owned()])]);
    // Someone else's change sends nothing.
    hub.user_with_roles("other@hub.test", &["Moderator"]).await;
    let quiet = tokio::time::timeout(Duration::from_millis(700), ws.next()).await;
    assert!(quiet.is_err(), "another user's change is not news: {quiet:?}");
    // A role: the keys change.
    let roles = hub.gql(Some(&admin), "{ roles { id name } }", json!({})).await;
    let moderator =
        roles["data"]["roles"].as_array().unwrap().iter().find(|r| r["name"] == "Moderator").unwrap()["id"].clone();
    let set = "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }";
    assert!(hub.gql(Some(&admin), set, json!({ "u": uid, "r": [moderator] })).await["errors"].is_null());
    let (keys, _) = next_access(&mut ws).await;
    assert!(keys.contains(&"audit.read".to_owned()), "{keys:?}");
    // The session ends: so does the stream, with UNAUTHENTICATED.
    assert!(hub.gql(Some(&user), "mutation { logoutAll }", json!({})).await["errors"].is_null());
    loop {
        match next(&mut ws).await {
            Ok(msg) if msg["type"] == "next" && msg["payload"]["errors"].is_array() => {
                assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{msg}");
                break;
            }
            Ok(msg) if msg["type"] == "next" => continue,
            Ok(msg) => panic!("unexpected {msg}"),
            Err(_) => break, // the socket closed with the session (4403), which also ends it
        }
    }
    hub.stop().await;
}

/// Signs in and returns (access token, refresh token).
async fn sign_in(hub: &TestHub, email: &str, password: &str) -> (String, String) {
    let res = hub
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }",
            json!({ "e": email, "p": password }),
        )
        .await;
    let login = &res["data"]["login"];
    (login["accessToken"].as_str().unwrap().to_owned(), login["refreshToken"].as_str().unwrap().to_owned())
}

async fn user_id(hub: &TestHub, token: &str) -> String {
    hub.gql(Some(token), "{ me { id } }", json!({})).await["data"]["me"]["id"].as_str().unwrap().to_owned()
}

/// Reads until the socket closes (within `secs`), skipping messages; returns the close code.
async fn closed_within(ws: &mut Ws, secs: u64) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.expect("the socket closes in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

/// Each way a session ends closes its sockets at once with 4403, and a new socket with the same
/// token is refused.
async fn a_socket_closes_when_its_session_ends(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    for way in ["logout", "logoutAll", "changePassword", "disabled", "deleted"] {
        let email = format!("{}@hub.test", way.to_lowercase());
        hub.user_with_roles(&email, &["Moderator"]).await;
        let (token, refresh) = sign_in(&hub, &email, "another long passphrase").await;
        let id = user_id(&hub, &token).await;
        let mut ws = connect(&hub).await;
        init(&mut ws, json!({ "authorization": format!("Bearer {token}") })).await.unwrap();
        subscribe(&mut ws, "1", "subscription { serverState { state } }").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let res = match way {
            "logout" => {
                hub.gql(Some(&token), "mutation($r: String!) { logout(refreshToken: $r) }", json!({ "r": refresh }))
                    .await
            }
            "logoutAll" => hub.gql(Some(&token), "mutation { logoutAll }", json!({})).await,
            "changePassword" => {
                hub.gql(
                    Some(&token),
                    "mutation { changePassword(currentPassword: \"another long passphrase\", newPassword: \"a brand new passphrase here\") }",
                    json!({}),
                )
                .await
            }
            "disabled" => {
                hub.gql(Some(&admin), "mutation($u: ID!) { updateUser(id: $u, disabled: true) { id } }", json!({ "u": id }))
                    .await
            }
            _ => hub.gql(Some(&admin), "mutation($u: ID!) { deleteUser(id: $u) }", json!({ "u": id })).await,
        };
        assert!(res["errors"].is_null(), "{way}: {res}");
        let started = std::time::Instant::now();
        let (code, reason) = closed_within(&mut ws, 5).await;
        assert_eq!(code, 4403, "{way}: {reason}");
        assert!(started.elapsed() < Duration::from_secs(2), "{way}: closed after {:?}", started.elapsed());
        let mut again = connect(&hub).await;
        let refused = init(&mut again, json!({ "authorization": format!("Bearer {token}") })).await;
        assert_eq!(refused.unwrap_err().0, 4403, "{way}: the token no longer opens a socket");
    }
    hub.stop().await;
}

/// Operations on an open socket are authorised as they would be over HTTP at that moment: a
/// password change ends the socket's power (no backdoor admin), a demotion takes the demoted
/// key away at once, a promotion gives the new one.
async fn every_operation_on_a_socket_is_authorised_now(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {admin}") })).await.unwrap();
    let res = hub
        .gql(
            Some(&admin),
            "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"the admin's new passphrase\") }",
            json!({ "c": common::ADMIN_PASSWORD }),
        )
        .await;
    assert!(res["errors"].is_null(), "{res}");
    subscribe(
        &mut ws,
        "1",
        "mutation { createUser(email: \"backdoor@hub.test\", password: \"a backdoor passphrase\", roleIds: [\"1\"]) { id } }",
    )
    .await;
    match next(&mut ws).await {
        Ok(msg) => assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{msg}"),
        Err((code, _)) => assert_eq!(code, 4403),
    }
    let admin = hub.login(common::ADMIN_EMAIL, "the admin's new passphrase").await;
    let users = hub.gql(Some(&admin), "{ users(search: \"backdoor\") { id } }", json!({})).await;
    assert_eq!(users["data"]["users"], json!([]), "no backdoor account: {users}");

    // A moderator demoted to User loses auditLog on the socket at once, and gets it back.
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let mod_id = user_id(&hub, &moderator).await;
    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {moderator}") })).await.unwrap();
    let set_roles = |roles: Value| {
        hub.gql(
            Some(&admin),
            "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }",
            json!({ "u": mod_id, "r": roles }),
        )
    };
    let roles = hub.gql(Some(&admin), "{ roles { id name } }", json!({})).await;
    let role = |name: &str| {
        roles["data"]["roles"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["id"].clone()
    };
    assert!(set_roles(json!([role("User")])).await["errors"].is_null());
    subscribe(&mut ws, "2", "{ auditLog(first: 1) { id } }").await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{msg}");
    assert_eq!(next(&mut ws).await.unwrap()["type"], "complete");
    assert!(set_roles(json!([role("Moderator")])).await["errors"].is_null());
    subscribe(&mut ws, "3", "{ auditLog(first: 1) { id } }").await;
    let msg = next(&mut ws).await.unwrap();
    assert!(msg["payload"]["errors"].is_null(), "allowed again: {msg}");
    hub.stop().await;
}

const SECRET: &str = "a test secret that is long enough for HS256 signing";

/// The admin's token with its `exp` moved to `secs` from now (signed with the hub's key).
fn expiring(token: &str, secs: i64) -> String {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
    let mut claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["exp"] = json!(chrono::Utc::now().timestamp() + secs);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

async fn ping(ws: &mut Ws, token: &str) -> Result<Value, (u16, String)> {
    let msg = json!({ "type": "ping", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(msg.to_string().into())).await.unwrap();
    next(ws).await
}

/// A socket outlives its access token only when the client sends a fresh token of the same
/// session in a ping; otherwise it closes with 4401 when the token expires. The session's
/// absolute lifetime closes it with 4403, whatever the token says.
async fn a_socket_outliving_its_token_must_refresh(backend: Backend) {
    let hub = TestHub::start_with(common::Store::new(backend).await, &["--jwt-secret", SECRET]).await;
    let admin = hub.admin_token().await;
    let short = expiring(&admin, 3);

    let mut lapsing = connect(&hub).await;
    init(&mut lapsing, json!({ "authorization": format!("Bearer {short}") })).await.unwrap();
    let mut refreshed = connect(&hub).await;
    init(&mut refreshed, json!({ "authorization": format!("Bearer {short}") })).await.unwrap();
    let pong = ping(&mut refreshed, &admin).await.unwrap();
    assert_eq!(pong["type"], "pong", "{pong}");
    assert!(pong["payload"]["expiresAt"].is_string(), "{pong}");

    let (code, reason) = closed_within(&mut lapsing, 8).await;
    assert_eq!(code, 4401, "{reason}");
    subscribe(&mut refreshed, "1", "{ me { email } }").await;
    let msg = next(&mut refreshed).await.unwrap();
    assert_eq!(msg["payload"]["data"]["me"]["email"], common::ADMIN_EMAIL, "{msg}");
    assert_eq!(next(&mut refreshed).await.unwrap()["type"], "complete");

    // A token of another session in a ping closes the socket.
    let other = hub.admin_token().await;
    assert_eq!(ping(&mut refreshed, &other).await.unwrap_err().0, 4403);

    // The session's end of life closes its socket at that moment.
    let (token, _) = sign_in(&hub, common::ADMIN_EMAIL, common::ADMIN_PASSWORD).await;
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let sid = {
            use base64::Engine as _;
            let part = token.split('.').nth(1).unwrap();
            let claims: Value =
                serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap())
                    .unwrap();
            claims["sid"].as_i64().unwrap()
        };
        entity::session::Entity::update_many()
            .col_expr(
                entity::session::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() + chrono::Duration::seconds(3)),
            )
            .filter(entity::session::Column::Id.eq(sid))
            .exec(hub.app.services.db.conn())
            .await
            .unwrap();
    }
    let mut ending = connect(&hub).await;
    init(&mut ending, json!({ "authorization": format!("Bearer {token}") })).await.unwrap();
    let (code, reason) = closed_within(&mut ending, 8).await;
    assert_eq!(code, 4403, "{reason}");
    hub.stop().await;
}

/// A socket runs at most 100 operations at once: the 101st is refused (RATE_LIMITED) until one
/// ends.
async fn a_socket_runs_a_bounded_number_of_operations(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let mut ws = connect(&hub).await;
    init(&mut ws, json!({ "authorization": format!("Bearer {admin}") })).await.unwrap();
    for n in 0..100 {
        subscribe(&mut ws, &format!("s{n}"), "subscription { serverState { state } }").await;
    }
    subscribe(&mut ws, "over", "{ hubInfo { name } }").await;
    let refused = next(&mut ws).await.unwrap();
    assert_eq!((refused["id"].as_str(), refused["type"].as_str()), (Some("over"), Some("error")), "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    ws.send(Message::Text(json!({ "id": "s0", "type": "complete" }).to_string().into())).await.unwrap();
    subscribe(&mut ws, "room", "{ hubInfo { name } }").await;
    let answer = loop {
        let msg = next(&mut ws).await.unwrap();
        if msg["id"] != "s0" {
            break msg; // the hub confirms the end of s0 first
        }
    };
    assert_eq!(answer["id"], "room", "{answer}");
    assert_eq!(answer["payload"]["data"]["hubInfo"]["name"], "Kutanga Hub");
    hub.stop().await;
}

/// One account holds a bounded number of sockets (4429 past it, a place given back when one
/// closes); one address opens a bounded number per minute (429 before the upgrade past it).
async fn sockets_are_limited_per_account_and_per_address(backend: Backend) {
    let store = common::Store::new(backend).await;
    let hub = TestHub::start_with(store, &["--ws-per-account", "2", "--ws-per-ip-per-minute", "6"]).await;
    let admin = hub.admin_token().await;
    let auth = json!({ "authorization": format!("Bearer {admin}") });
    let mut first = connect(&hub).await;
    assert_eq!(init(&mut first, auth.clone()).await.unwrap()["type"], "connection_ack");
    let mut second = connect(&hub).await;
    assert_eq!(init(&mut second, auth.clone()).await.unwrap()["type"], "connection_ack");
    let mut third = connect(&hub).await;
    assert_eq!(init(&mut third, auth.clone()).await.unwrap_err().0, 4429);
    first.close(None).await.unwrap();
    let mut again = None;
    // (At most three tries: with the three above, six sockets, the address's rate.)
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut ws = connect(&hub).await;
        if let Ok(ack) = init(&mut ws, auth.clone()).await {
            assert_eq!(ack["type"], "connection_ack");
            again = Some(ws);
            break;
        }
    }
    assert!(again.is_some(), "the closed socket's place was given back");
    // Every attempt above counted for this address: the next ones are over its rate.
    let mut refused = None;
    for _ in 0..3 {
        let mut req = hub.ws_url().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        if let Err(tokio_tungstenite::tungstenite::Error::Http(resp)) = tokio_tungstenite::connect_async(req).await {
            refused = Some(resp);
            break;
        }
    }
    let resp = refused.expect("a new socket past the address's rate is refused");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    hub.stop().await;
}

/// A message (or one frame) larger than KUTANGA_MAX_BODY_BYTES ends its socket, and only that
/// socket; one just under the limit, larger than the socket's 4 KiB read buffer, is read whole.
async fn a_socket_takes_messages_up_to_the_body_limit(backend: Backend) {
    let store = common::Store::new(backend).await;
    let hub = TestHub::start_with(store, &["--max-body-bytes", "8192"]).await;
    let admin = hub.admin_token().await;
    let auth = json!({ "authorization": format!("Bearer {admin}") });
    let mut ws = connect(&hub).await;
    init(&mut ws, auth.clone()).await.unwrap();
    // 7 KiB: a query padded with a comment.
    let padded = format!("{{ hubInfo {{ name }} }}\n#{}", "x".repeat(7 * 1024));
    subscribe(&mut ws, "big", &padded).await;
    let answer = next(&mut ws).await.unwrap();
    assert_eq!(answer["payload"]["data"]["hubInfo"]["name"], "Kutanga Hub", "{answer}");
    // 9 KiB in one frame: past the limit.
    let over = format!("{{ hubInfo {{ name }} }}\n#{}", "x".repeat(9 * 1024));
    subscribe(&mut ws, "too-big", &over).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(Message::Text(t))) => assert!(!t.as_str().contains("\"too-big\""), "it ran: {t}"),
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket ends");
    // The hub goes on serving other sockets.
    let mut other = connect(&hub).await;
    init(&mut other, auth).await.unwrap();
    subscribe(&mut other, "after", "{ hubInfo { name } }").await;
    assert_eq!(next(&mut other).await.unwrap()["payload"]["data"]["hubInfo"]["name"], "Kutanga Hub");
    hub.stop().await;
}

on_both!(
    a_socket_takes_messages_up_to_the_body_limit,
    a_stop_closes_five_hundred_sockets_in_time,
    sockets_are_limited_per_account_and_per_address,
    pages_of_other_sites_may_not_open_the_socket,
    my_access_follows_roles_and_grants_and_nothing_else,
    a_socket_runs_a_bounded_number_of_operations,
    a_socket_closes_when_its_session_ends,
    every_operation_on_a_socket_is_authorised_now,
    a_socket_outliving_its_token_must_refresh,
    a_subscription_ends_when_access_is_taken_away,
    audit_events_arrive_live,
    connection_init_without_a_valid_token_closes_4403,
    a_subscription_needs_its_permission,
    shutdown_closes_sockets_with_a_close_frame,
);
