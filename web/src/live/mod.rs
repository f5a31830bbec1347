//! One live connection for the whole app: graphql-transport-ws over a browser WebSocket, with
//! the token in `connection_init`, a fresh token handed over in a ping before the old one
//! expires, reconnects with exponential backoff and jitter, and every subscription started
//! again after a reconnect (each subscriber is told, so that it re-queries what it missed).
//!
//! Written here rather than taken from graphql-ws-client: the hub's socket follows its session
//! (close 4403: signed out; 4401: token expired unless renewed in a ping), which that client
//! can neither send nor see; the protocol itself is small and tested in `protocol`.

pub mod order;
pub mod protocol;

use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

use graphql_client::GraphQLQuery;
use leptos::prelude::*;
use protocol::{Closed, Incoming, Outgoing, Request};
use serde_json::Value;
use shared::ErrorCode;
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::{
    api::{error::ApiError, session},
    time,
};

/// What the connection indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Connected,
    Reconnecting,
    /// Signed out, or the browser says it has no network.
    Offline,
}

/// A subscription's handle: [`unsubscribe`] ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubId(u64);

type OnData = Rc<dyn Fn(Result<Value, ApiError>)>;

struct Sub {
    request: Request,
    on_data: OnData,
    on_resume: Option<Rc<dyn Fn()>>,
}

struct Socket {
    ws: WebSocket,
    acked: bool,
    last_heard_ms: f64,
    _handlers: [Closure<dyn FnMut(web_sys::Event)>; 3],
}

impl Drop for Socket {
    /// A socket let go is closed and its handlers unhooked before they are freed.
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close_with_code(1000);
    }
}

#[derive(Default)]
struct Inner {
    socket: Option<Socket>,
    /// Each socket's number: handlers of an old socket do nothing.
    generation: u64,
    subs: BTreeMap<u64, Sub>,
    next_id: u64,
    attempt: u32,
    /// Signed in, so a connection should exist.
    wanted: bool,
    connected_once: bool,
    /// A socket is being opened (waiting for a token): a second `open` waits for it.
    opening: bool,
    /// Refused at `connection_init` (4403) and refreshed once already: the next refusal signs out.
    init_refused: bool,
    retry: Option<gloo_timers::callback::Timeout>,
    keepalive: Option<gloo_timers::callback::Interval>,
    status: Option<RwSignal<Status>>,
}

thread_local! {
    static LIVE: RefCell<Inner> = RefCell::new(Inner::default());
}

fn with<T>(f: impl FnOnce(&mut Inner) -> T) -> T {
    LIVE.with(|l| f(&mut l.borrow_mut()))
}

fn set_status(status: Status) {
    if let Some(signal) = with(|l| l.status)
        && signal.get_untracked() != status
    {
        signal.set(status);
    }
}

/// The status signal; call once at start.
pub fn install() -> RwSignal<Status> {
    let status = RwSignal::new(Status::Offline);
    with(|l| l.status = Some(status));
    if let Some(window) = web_sys::window() {
        // Back online: try at once instead of waiting out the backoff.
        let online = Closure::<dyn FnMut()>::new(|| {
            if with(|l| l.wanted && l.socket.is_none()) {
                with(|l| l.retry.take());
                open();
            }
        });
        let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        online.forget();
    }
    status
}

/// Opens the connection (after sign-in).
pub fn connect() {
    let already = with(|l| std::mem::replace(&mut l.wanted, true));
    if !already {
        with(|l| l.attempt = 0);
        set_status(Status::Connecting);
        open();
    }
}

/// Closes the connection (after sign-out); subscriptions stay registered but idle.
pub fn disconnect() {
    let socket = with(|l| {
        l.wanted = false;
        l.generation += 1;
        l.retry.take();
        l.keepalive.take();
        l.connected_once = false;
        l.init_refused = false;
        l.socket.take()
    });
    drop(socket);
    set_status(Status::Offline);
}

/// Hands a fresh access token to the open socket, which would otherwise close at the old one's
/// expiry.
pub fn renew(token: &str) {
    send_if_acked(&Outgoing::renew(token));
}

/// Starts a subscription. `on_data` gets each event (or the error that ended it); `on_resume`
/// runs after a reconnect, once the subscription runs again, so that the page can re-query the
/// history it missed.
pub fn subscribe<Q: GraphQLQuery>(
    variables: Q::Variables,
    on_data: impl Fn(Result<Q::ResponseData, ApiError>) + 'static,
    on_resume: Option<Box<dyn Fn()>>,
) -> SubId {
    let body = Q::build_query(variables);
    let request = Request {
        query: body.query.to_owned(),
        variables: serde_json::to_value(&body.variables).unwrap_or(Value::Null),
        operation_name: body.operation_name.to_owned(),
    };
    let on_data: OnData = Rc::new(move |payload| {
        on_data(payload.and_then(crate::api::client::data_of).and_then(crate::api::client::typed::<Q::ResponseData>))
    });
    let id = with(|l| {
        l.next_id += 1;
        l.subs.insert(l.next_id, Sub { request: request.clone(), on_data, on_resume: on_resume.map(Rc::from) });
        l.next_id
    });
    send_if_acked(&Outgoing::Subscribe { id: id.to_string(), payload: request });
    SubId(id)
}

/// Ends a subscription.
pub fn unsubscribe(id: SubId) {
    if with(|l| l.subs.remove(&id.0)).is_some() {
        send_if_acked(&Outgoing::Complete { id: id.0.to_string() });
    }
}

fn send_if_acked(message: &Outgoing) {
    with(|l| {
        if let Some(s) = l.socket.as_ref().filter(|s| s.acked) {
            let _ = s.ws.send_with_str(&message.to_text());
        }
    });
}

fn url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
    Some(format!("{scheme}://{}/graphql/ws", location.host().ok()?))
}

fn open() {
    if with(|l| !l.wanted || l.opening || l.socket.is_some()) {
        return;
    }
    with(|l| l.opening = true);
    wasm_bindgen_futures::spawn_local(async {
        let token = session::token().await;
        with(|l| l.opening = false);
        // Signed out or connected elsewhere meanwhile.
        if with(|l| !l.wanted || l.socket.is_some()) {
            return;
        }
        let Some(token) = token else {
            // No session (refused) or no network: the session module decides; retry if still wanted.
            schedule_retry();
            return;
        };
        let generation = with(|l| {
            l.generation += 1;
            l.generation
        });
        let Some(ws) = url().and_then(|u| WebSocket::new_with_str(&u, protocol::SUBPROTOCOL).ok()) else {
            schedule_retry();
            return;
        };
        let init = Outgoing::init(&token).to_text();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new({
            let ws = ws.clone();
            move |_| {
                let _ = ws.send_with_str(&init);
            }
        });
        let on_message = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            if let Some(text) = event.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) {
                received(generation, &text);
            }
        });
        let on_close = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let code = event.dyn_ref::<CloseEvent>().map(CloseEvent::code).unwrap_or(1006);
            closed(generation, code);
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let stale = with(|l| {
            l.socket.replace(Socket {
                ws,
                acked: false,
                last_heard_ms: time::now_ms(),
                _handlers: [on_open, on_message, on_close],
            })
        });
        drop(stale);
    });
}

fn received(generation: u64, text: &str) {
    if with(|l| l.generation) != generation {
        return;
    }
    with(|l| {
        if let Some(s) = l.socket.as_mut() {
            s.last_heard_ms = time::now_ms();
        }
    });
    match Incoming::parse(text) {
        Some(Incoming::ConnectionAck { .. }) => acknowledged(),
        Some(Incoming::Next { id, payload }) => deliver(&id, Ok(payload), false),
        Some(Incoming::Error { id, payload }) => {
            let e = ApiError::first_of(&payload).unwrap_or_else(|| ApiError::network("the subscription failed"));
            deliver(&id, Err(e), true)
        }
        Some(Incoming::Complete { id }) => deliver(
            &id,
            Err(ApiError::coded(ErrorCode::Forbidden, "live updates ended: access to this was taken away")),
            true,
        ),
        Some(Incoming::Ping { .. }) => send_if_acked(&Outgoing::Pong {}),
        Some(Incoming::Pong { .. }) | None => {}
    }
}

/// Runs a subscriber's callback outside the borrow (it may subscribe or unsubscribe).
fn deliver(id: &str, payload: Result<Value, ApiError>, ended: bool) {
    let Ok(key) = id.parse::<u64>() else { return };
    let on_data =
        with(
            |l| {
                if ended { l.subs.remove(&key).map(|s| s.on_data) } else { l.subs.get(&key).map(|s| s.on_data.clone()) }
            },
        );
    if let Some(on_data) = on_data {
        on_data(payload);
    }
}

fn acknowledged() {
    let (resumed, requests) = with(|l| {
        if let Some(s) = l.socket.as_mut() {
            s.acked = true;
        }
        l.attempt = 0;
        l.init_refused = false;
        let resumed = std::mem::replace(&mut l.connected_once, true);
        let requests: Vec<(u64, Request)> = l.subs.iter().map(|(id, s)| (*id, s.request.clone())).collect();
        (resumed, requests)
    });
    set_status(Status::Connected);
    for (id, request) in requests {
        send_if_acked(&Outgoing::Subscribe { id: id.to_string(), payload: request });
    }
    start_keepalive();
    if resumed {
        let resumes: Vec<Rc<dyn Fn()>> = with(|l| l.subs.values().filter_map(|s| s.on_resume.clone()).collect());
        for resume in resumes {
            resume();
        }
    }
}

/// A ping every 15 s; a socket silent for 40 s is dead (a laptop slept, a proxy dropped it)
/// and is closed, which reconnects.
fn start_keepalive() {
    let generation = with(|l| l.generation);
    let interval = gloo_timers::callback::Interval::new(15_000, move || {
        let dead = with(|l| {
            if l.generation != generation {
                return None;
            }
            let s = l.socket.as_ref()?;
            let _ = s.ws.send_with_str(&Outgoing::Ping { payload: Value::Null }.to_text());
            (time::now_ms() - s.last_heard_ms > 40_000.0).then(|| s.ws.clone())
        });
        if let Some(ws) = dead {
            let _ = ws.close_with_code(4000);
            closed(generation, 1006);
        }
    });
    with(|l| l.keepalive = Some(interval));
}

fn closed(generation: u64, code: u16) {
    // Whether this socket was the current one, and had been acknowledged.
    let current = with(|l| {
        if l.generation != generation {
            return None;
        }
        l.keepalive.take();
        l.socket.take().map(|s| s.acked)
    });
    let Some(acked) = current else { return };
    if !with(|l| l.wanted) {
        return;
    }
    match Closed::from_code(code) {
        // Refused at connection_init: the token may have expired on the way (a frozen tab, a
        // slow network). Refresh once and try again; refused twice, the session has ended.
        Closed::SessionEnded if !acked && !with(|l| std::mem::replace(&mut l.init_refused, true)) => {
            reopen_with_fresh_token()
        }
        Closed::SessionEnded => session::forget(),
        Closed::TokenExpired => reopen_with_fresh_token(),
        Closed::Lost => schedule_retry(),
    }
}

fn reopen_with_fresh_token() {
    set_status(Status::Reconnecting);
    wasm_bindgen_futures::spawn_local(async {
        // A refresh the hub refuses signs out (the session module); any other failure retries
        // after the backoff.
        if session::refresh().await.is_ok() && with(|l| l.attempt == 0) {
            with(|l| l.attempt = 1);
            open();
        } else {
            schedule_retry();
        }
    });
}

fn schedule_retry() {
    if !with(|l| l.wanted) {
        return;
    }
    let online = web_sys::window().is_none_or(|w| w.navigator().on_line());
    set_status(if online { Status::Reconnecting } else { Status::Offline });
    let attempt = with(|l| {
        l.attempt = l.attempt.saturating_add(1);
        l.attempt - 1
    });
    let pause = protocol::backoff_ms(attempt, js_sys::Math::random());
    let timer = gloo_timers::callback::Timeout::new(pause, open);
    with(|l| l.retry = Some(timer));
}
