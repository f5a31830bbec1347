//! GraphQL over HTTP (POST for everything, GET for queries and the playground) and over
//! WebSocket (graphql-transport-ws).

use std::{
    any::TypeId,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_graphql::{
    BatchRequest, Data, Executor, Request as GqlRequest,
    http::{ALL_WEBSOCKET_PROTOCOLS, WebSocket as GqlWebSocket, WebSocketProtocols, WsMessage},
    parser::types::{DocumentOperations, OperationType},
};
use axum::{
    body::Body,
    extract::{
        Extension, Query, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{FutureExt, SinkExt, StreamExt, future};
use serde::Deserialize;
use shared::ErrorCode;
use tokio_util::sync::CancellationToken;

use super::WS_INIT_TIMEOUT;
use crate::{
    app::{App, Services},
    auth::{
        ClientInfo,
        caller::{authenticate, authenticate_until},
        limits::SocketSlot,
    },
    config::canonical_origin,
    error::ApiError,
    graphql::{
        Answer, Engine, RequestInfo,
        limits::{self, BatchBudget},
        ran,
        socket::SocketSession,
    },
    http::client::{ClientAddr, client_info, sends_json},
};

/// What the GraphQL handlers need.
#[derive(Clone)]
pub struct HttpState {
    graphql: Engine,
    services: Services,
    shutdown: CancellationToken,
    /// Other sites whose pages may open the WebSocket (`KUTANGA_ALLOWED_ORIGINS`).
    allowed_origins: Arc<Vec<String>>,
}

impl HttpState {
    pub fn new(app: &App) -> Self {
        Self {
            graphql: app.graphql.clone(),
            services: app.services.clone(),
            shutdown: app.shutdown.clone(),
            allowed_origins: Arc::new(app.services.settings.allowed_origin_list().unwrap_or_default()),
        }
    }

    /// Whether a page of `origin` may open the WebSocket: the hub's own pages (the Origin names
    /// the host the request was sent to), and the configured other sites. Clients that send no
    /// Origin (scripts, native apps) are not browsers acting for another site and may.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        let Some(origin) = origin.to_str().ok().and_then(canonical_origin) else { return false };
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let scheme = origin.split("://").next().unwrap_or_default();
        let own = canonical_origin(&format!("{scheme}://{host}"));
        own.as_deref() == Some(origin.as_str()) || self.allowed_origins.contains(&origin)
    }

    /// The caller from the Authorization header (an invalid token leaves the request anonymous;
    /// fields that need a caller answer UNAUTHENTICATED) and the client's address.
    async fn request_info(&self, headers: &HeaderMap, ip: IpAddr) -> RequestInfo {
        let client = client_info(ip, headers);
        let caller = match bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) {
            Some(token) => authenticate(&self.services, token).await.ok(),
            None => None,
        };
        RequestInfo { caller, client }
    }
}

pub(super) fn bearer(value: Option<&str>) -> Option<&str> {
    let value = value?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A GraphQL-shaped error response for failures before execution.
fn error_response(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": ErrorCode::BadUserInput.as_str() } }]
    });
    (status, axum::Json(body)).into_response()
}

/// The GraphQL-over-HTTP media type of answers: with it, a request that could not run (its
/// document does not parse or validate) is a 4xx without `data`.
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Whether the client's Accept header lists `media` (and not with `q=0`).
fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        parts.next().is_some_and(|m| m.eq_ignore_ascii_case(media))
            && !parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"))
    })
}

/// An answer as the client asked for it. As `application/json` (the default): always 200 with
/// the GraphQL response. As `application/graphql-response+json`, the GraphQL-over-HTTP way: a
/// single operation that never ran (every error before execution: parse, validation, limits) is
/// 400 without a `data` entry; one that ran is 200, field errors or not.
fn answer(response: async_graphql::BatchResponse, graphql_response: bool) -> Response {
    let async_graphql::BatchResponse::Single(single) = response else {
        return axum::Json(response).into_response();
    };
    answer_one(Answer::Ran(single), graphql_response)
}

/// The answer to a single request.
fn answer_one(answer: Answer, graphql_response: bool) -> Response {
    let single = match answer {
        Answer::Ran(single) => single,
        // A successful answer, the same in either media type.
        Answer::Json(json) => {
            let content_type = if graphql_response { GRAPHQL_RESPONSE } else { "application/json" };
            return ([(header::CONTENT_TYPE, content_type)], json).into_response();
        }
    };
    if !graphql_response {
        return axum::Json(single).into_response();
    }
    let never_ran = !ran(&single);
    let mut body = serde_json::to_value(&single).unwrap_or_default();
    if never_ran && let Some(fields) = body.as_object_mut() {
        fields.remove("data");
    }
    let status = if never_ran { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, [(header::CONTENT_TYPE, GRAPHQL_RESPONSE)], body.to_string()).into_response()
}

/// POST /graphql: a request or a batch, as JSON.
pub async fn post(
    State(st): State<HttpState>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !sends_json(&headers) {
        return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send the request as application/json");
    }
    let limit = st.services.settings.max_body_bytes as usize;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is larger than {limit} bytes"),
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &format!("the body is not a GraphQL request: {e}")),
    };
    let settings = &st.services.settings;
    if let BatchRequest::Batch(ops) = &batch {
        let most = usize::from(settings.graphql_max_batch);
        if ops.len() > most {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("a batch holds at most {most} operations (KUTANGA_GRAPHQL_MAX_BATCH)"),
            );
        }
    }
    let version = st.graphql.data_version();
    let info = st.request_info(&headers, ip).await;
    let graphql_response = accepts(&headers, GRAPHQL_RESPONSE);
    let batch = match batch {
        BatchRequest::Single(request) => {
            return answer_one(st.graphql.answer(request.data(info), version).await, graphql_response);
        }
        batch => batch,
    };
    let batch = batch.data(info).data(BatchBudget::new(settings.graphql_max_complexity as usize));
    let response = st.graphql.execute_batch(batch).await;
    answer(response, graphql_response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    operation_name: Option<String>,
}

/// GET /graphql: the playground, or a query (never a mutation) in the URL.
pub async fn get(
    State(st): State<HttpState>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let graphql_response = accepts(&headers, GRAPHQL_RESPONSE);
    let Some(query) = params.query else {
        // A GraphQL client asked for an answer: without a query there is none. Anyone else
        // (a browser) gets the playground.
        if graphql_response || accepts(&headers, "application/json") {
            return error_response(StatusCode::BAD_REQUEST, "the `query` parameter is missing");
        }
        return playground(&st);
    };
    let limit = usize::from(st.services.settings.graphql_max_recursion);
    if limits::nesting(&query, limit) > limit {
        // Refused before `only_queries` parses it: the parser's recursion is what the limit guards.
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!("the query nests brackets deeper than {limit} levels"),
        );
    }
    if !only_queries(&query, params.operation_name.as_deref()) {
        let mut resp = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET runs queries only; send mutations and subscriptions with POST or the WebSocket",
        );
        resp.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return resp;
    }
    let mut request = GqlRequest::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = params.variables {
        match serde_json::from_str(&vars) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &format!("`variables` is not JSON: {e}")),
        }
    }
    let version = st.graphql.data_version();
    let info = st.request_info(&headers, ip).await;
    answer_one(st.graphql.answer(request.data(info), version).await, graphql_response)
}

/// The GraphiQL playground, when enabled.
fn playground(st: &HttpState) -> Response {
    if st.services.settings.playground_enabled() {
        return super::playground::page();
    }
    error_response(StatusCode::NOT_FOUND, "the playground is disabled; POST queries to /graphql")
}

/// Whether the operation a GET would run is a query. A document that does not parse counts as
/// a query: the executor then reports the syntax error.
fn only_queries(query: &str, operation: Option<&str>) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return true;
    };
    match &doc.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Query,
        DocumentOperations::Multiple(ops) => match operation {
            Some(name) => {
                ops.iter().find(|(n, _)| n.as_str() == name).is_none_or(|(_, op)| op.node.ty == OperationType::Query)
            }
            None => ops.values().all(|op| op.node.ty == OperationType::Query),
        },
    }
}

/// GET /graphql/ws: subscriptions over graphql-transport-ws. The access token travels in
/// connection_init as `{"authorization": "Bearer <token>"}`; without a valid one the socket is
/// closed with 4403. Afterwards the socket follows its session (see `graphql::socket`): 4403
/// when the session ends, 4401 when the token expires without a fresh one sent in a ping.
pub async fn websocket(
    State(st): State<HttpState>,
    Extension(ClientAddr(ip)): Extension<ClientAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // A page of another site must not act with a visitor's session (cross-site WebSocket
    // hijacking): its Origin is checked before the upgrade.
    if !st.origin_allowed(&headers) {
        return error_response(
            StatusCode::FORBIDDEN,
            "pages of this site may not open the hub's WebSocket (see KUTANGA_ALLOWED_ORIGINS)",
        );
    }
    if let Err(ApiError::RateLimited { retry_after_secs }) = st.services.sockets.opening(&ip.to_string()) {
        let body = serde_json::json!({ "errors": [{
            "message": "too many new sockets from this address; wait and try again",
            "extensions": { "code": ErrorCode::RateLimited.as_str(), "retryAfter": retry_after_secs },
        }] });
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_secs.to_string())],
            axum::Json(body),
        )
            .into_response();
    }
    // The client's preferred protocol among those async-graphql speaks.
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.split(',').find_map(|p| p.trim().parse::<WebSocketProtocols>().ok()))
        .unwrap_or(WebSocketProtocols::GraphQLWS);
    let client = client_info(ip, &headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(st.services.settings.max_body_bytes as usize)
        // A frame's length is reserved as soon as its header is read: no frame may announce
        // more than a whole message may hold (tungstenite's default is 16 MiB).
        .max_frame_size(st.services.settings.max_body_bytes as usize)
        // Clients send little (operations, pings): a small read buffer, allocated for every
        // socket up front, instead of the 128 KiB default (the bulk of a subscriber's memory).
        .read_buffer_size(SOCKET_READ_BUFFER)
        // What is gathered before a write; the buffer keeps the size it grew to for the socket's
        // life, so it stays small (tungstenite's default is 128 KiB).
        .write_buffer_size(SOCKET_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            let tasks = st.services.tasks.clone();
            tasks.track_future(session(st, socket, protocol, client))
        })
}

/// The read buffer of a socket; larger messages still arrive (up to the body limit), in pieces.
const SOCKET_READ_BUFFER: usize = 1024;
/// How much is gathered before a socket is written to (a message may take it past this).
const SOCKET_WRITE_BUFFER: usize = 8 * 1024;

/// The bearer token in a connection_init or ping payload.
fn token_in(payload: Option<&serde_json::Value>) -> Option<String> {
    let payload = payload?;
    let value = payload.get("authorization").or_else(|| payload.get("Authorization"))?.as_str()?;
    bearer(Some(value)).map(str::to_owned)
}

/// The marker that turns async-graphql's init failure (close 1002) into 4403.
const FORBIDDEN: &str = "4403: Forbidden";
/// The marker of an account that holds as many sockets as it may (closed with 4429).
const TOO_MANY: &str = "4429: Too many sockets for this account";

/// The most messages gathered for one write to a socket (then flushed).
const MAX_QUEUED_MESSAGES: usize = 64;

/// The most operations one socket may run at once (subscriptions, queries and mutations alike).
const MAX_SOCKET_OPERATIONS: usize = 100;

/// The operations running on one socket, and the client's messages refused but not yet answered.
#[derive(Debug, Default)]
struct Operations {
    running: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Rare, so kept without a channel's buffer in every socket; at most 16 wait.
    refused: std::sync::Mutex<std::collections::VecDeque<Refused>>,
    refusal: tokio::sync::Notify,
}

/// The envelope of a graphql-transport-ws message.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

/// Why a client's message is not passed on.
#[derive(Debug, PartialEq)]
enum Refused {
    /// An operation past the limit (answered with an error for its id).
    TooMany(String),
    /// An operation before the connection was acknowledged (the socket closes with 4401).
    BeforeAck,
}

impl Operations {
    /// Looks at a client's message, given whether the connection has been acknowledged.
    fn admit(&self, bytes: &[u8], acked: bool) -> Result<(), Refused> {
        let Ok(Frame { kind, id: Some(id) }) = serde_json::from_slice::<Frame>(bytes) else { return Ok(()) };
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match kind.as_str() {
            "subscribe" | "start" if !acked => Err(Refused::BeforeAck),
            "subscribe" | "start" if !running.contains(&id) && running.len() >= MAX_SOCKET_OPERATIONS => {
                Err(Refused::TooMany(id))
            }
            "subscribe" | "start" => {
                running.insert(id);
                Ok(())
            }
            "complete" | "stop" => {
                running.remove(&id);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Keeps a refusal for the socket's loop to answer (beyond 16 waiting, it is dropped).
    fn refuse(&self, why: Refused) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.len() < 16 {
            refused.push_back(why);
            self.refusal.notify_one();
        }
    }

    /// The next refusal to answer, once there is one.
    async fn next_refused(&self) -> Refused {
        loop {
            if let Some(why) = self.refused.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return why;
            }
            self.refusal.notified().await;
        }
    }

    /// Looks at a message to the client: an operation that completed or failed has ended.
    fn sent(&self, text: &str) {
        if !(text.contains("\"complete\"") || text.contains("\"error\"")) {
            return;
        }
        if let Ok(Frame { kind, id: Some(id) }) = serde_json::from_str::<Frame>(text)
            && (kind == "complete" || kind == "error")
        {
            self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
    }
}

async fn session(st: HttpState, socket: WebSocket, protocol: WebSocketProtocols, client: ClientInfo) {
    let (mut sink, stream) = socket.split();
    let operations = Arc::new(Operations::default());
    // Set before the connection_ack goes out, so a client's first subscribe finds it set.
    let acked = Arc::new(AtomicBool::new(false));
    let input = stream.take_while(|m| future::ready(m.is_ok())).filter_map({
        let (operations, acked) = (operations.clone(), acked.clone());
        move |m| {
            let bytes = match m {
                Ok(Message::Text(t)) => Some(t.as_str().as_bytes().to_vec()),
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            };
            future::ready(bytes.and_then(|b| match operations.admit(&b, acked.load(Ordering::SeqCst)) {
                Ok(()) => Some(b),
                Err(why) => {
                    operations.refuse(why);
                    None
                }
            }))
        }
    });
    let services = st.services.clone();
    let (opened_tx, opened) = tokio::sync::oneshot::channel::<(Arc<SocketSession>, SocketSlot)>();
    let graphql = GqlWebSocket::new(st.graphql.clone(), input, protocol)
        .on_connection_init(move |payload| async move {
            let token = token_in(Some(&payload)).ok_or_else(|| async_graphql::Error::new(FORBIDDEN))?;
            let access = services.bus.access_generation();
            let (caller, expires) =
                authenticate_until(&services, &token).await.map_err(|_| async_graphql::Error::new(FORBIDDEN))?;
            let slot = services.sockets.hold(caller.user_id).ok_or_else(|| async_graphql::Error::new(TOO_MANY))?;
            // The socket keeps the session, not the caller: the engine authorises each operation.
            let socket = SocketSession::open(&caller, expires, client, access);
            let _ = opened_tx.send((socket.clone(), slot));
            let mut data = Data::default();
            data.insert(socket);
            Ok(data)
        })
        .on_ping({
            let services = st.services.clone();
            move |data, payload| {
                let socket = data
                    .and_then(|d| d.get(&TypeId::of::<Arc<SocketSession>>()))
                    .and_then(|s| s.downcast_ref::<Arc<SocketSession>>())
                    .cloned();
                let token = token_in(payload.as_ref());
                async move {
                    let (Some(socket), Some(token)) = (socket, token) else { return Ok(None) };
                    match socket.refresh(&services, &token).await {
                        Ok(until) => Ok(Some(serde_json::json!({ "expiresAt": until.to_rfc3339() }))),
                        Err(ApiError::Unauthenticated(_)) => Err(async_graphql::Error::new(FORBIDDEN)),
                        // The hub could not check it now (its store failed): the socket stays as
                        // it was, and the client may try again.
                        Err(_) => Ok(Some(serde_json::json!({ "error": "the token could not be checked; try again" }))),
                    }
                }
            }
        });
    let mut graphql = std::pin::pin!(graphql.peekable());
    // Resolves when the socket must close because of its session (never before connection_init).
    let guard = async {
        match opened.await {
            // The account's place is held for as long as this future runs: the socket's life.
            Ok((socket, _slot)) => socket.closed(&st.services).await,
            Err(_) => std::future::pending().await,
        }
    };
    let mut guard = std::pin::pin!(guard);
    let init_deadline = tokio::time::sleep(WS_INIT_TIMEOUT);
    let mut init_deadline = std::pin::pin!(init_deadline);
    let close = loop {
        tokio::select! {
            msg = graphql.next() => match msg {
                Some(WsMessage::Text(text)) => {
                    // Messages that are ready as well go out in the same write: a burst of
                    // console lines costs a socket one system call, not one per line.
                    let mut next = Some(text);
                    let (mut queued, mut bytes) = (0, 0);
                    let mut failed = false;
                    while let Some(text) = next.take() {
                        if text.contains("\"connection_ack\"") {
                            acked.store(true, Ordering::SeqCst);
                        }
                        operations.sent(&text);
                        (queued, bytes) = (queued + 1, bytes + text.len());
                        if sink.feed(Message::Text(text.into())).await.is_err() {
                            failed = true;
                            break;
                        }
                        if queued < MAX_QUEUED_MESSAGES
                            && bytes < SOCKET_WRITE_BUFFER
                            && let Some(Some(WsMessage::Text(_))) = graphql.as_mut().peek().now_or_never()
                            && let Some(Some(WsMessage::Text(text))) = graphql.next().now_or_never()
                        {
                            next = Some(text);
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        break None;
                    }
                }
                Some(WsMessage::Close(_, reason)) if reason == FORBIDDEN => break Some((4403, "Forbidden".to_owned())),
                Some(WsMessage::Close(_, reason)) if reason == TOO_MANY => {
                    break Some((4429, "Too many sockets for this account; close one first".to_owned()));
                }
                Some(WsMessage::Close(code, reason)) => break Some((code, reason)),
                None => break None,
            },
            why = &mut guard => break Some((why.code, why.reason.to_owned())),
            why = operations.next_refused() => match why {
                Refused::BeforeAck => {
                    break Some((4401, "Unauthorized: subscribe before the connection is acknowledged".to_owned()));
                }
                Refused::TooMany(id) => {
                    let error = serde_json::json!({ "id": id, "type": "error", "payload": [{
                        "message": format!("a socket runs at most {MAX_SOCKET_OPERATIONS} operations at once; complete one first"),
                        "extensions": { "code": ErrorCode::RateLimited.as_str(), "retryAfter": 1 },
                    }] });
                    if sink.send(Message::Text(error.to_string().into())).await.is_err() {
                        break None;
                    }
                }
            },
            () = st.shutdown.cancelled() => break Some((1001, "the hub is shutting down".to_owned())),
            () = &mut init_deadline, if !acked.load(Ordering::SeqCst) => break Some((4408, "Connection initialisation timeout".to_owned())),
        }
    };
    if let Some((code, reason)) = close {
        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_refuses_mutations_and_subscriptions() {
        assert!(only_queries("{ hubInfo { version } }", None));
        assert!(!only_queries("mutation { logoutAll }", None));
        assert!(!only_queries("subscription { auditEvents { id } }", None));
        let two = "query A { hubInfo { name } } mutation B { logoutAll }";
        assert!(only_queries(two, Some("A")));
        assert!(!only_queries(two, Some("B")));
        assert!(!only_queries(two, None));
    }

    #[test]
    fn accept_lists_are_read_item_by_item() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            h
        };
        assert!(accepts(&with("application/graphql-response+json"), GRAPHQL_RESPONSE));
        assert!(accepts(&with("text/html, Application/GraphQL-Response+JSON; q=0.9"), GRAPHQL_RESPONSE));
        assert!(!accepts(&with("application/graphql-response+json;q=0"), GRAPHQL_RESPONSE));
        assert!(!accepts(&with("application/json, */*"), GRAPHQL_RESPONSE));
        assert!(!accepts(&HeaderMap::new(), GRAPHQL_RESPONSE));
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }
}
