//! The signed-in session. The access token lives in this tab's memory only; the refresh token
//! is an HttpOnly cookie (`/auth/*` routes) that no script can read.
//!
//! Refresh tokens rotate, and presenting a rotated one ends the session (theft detection), so
//! refreshes never overlap: one at a time in a tab (later callers wait for the refresh in
//! flight) and across tabs (a Web Lock, or a lease in localStorage where Web Locks are missing,
//! as on plain HTTP beyond localhost). Tabs tell each other of sign-in and sign-out on a
//! BroadcastChannel.

use std::{cell::RefCell, future::Future, rc::Rc};

use futures_util::FutureExt;
use gloo_net::http::Request;
use js_sys::{Promise, Reflect};
use leptos::prelude::*;
use serde::Serialize;
use shared::{
    ErrorCode,
    session::{LoginRequest, RegisterRequest, WebSession},
};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;

use super::{error::ApiError, flight::SingleFlight};
use crate::{live, time};

/// Where the app stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asking the hub whether the cookie still holds a session.
    Resuming,
    SignedOut,
    SignedIn,
}

#[derive(Debug, Clone)]
struct Token {
    access: String,
    /// This tab's clock.
    expires_at_ms: f64,
    ttl_ms: f64,
}

thread_local! {
    static TOKEN: RefCell<Option<Token>> = const { RefCell::new(None) };
    static FLIGHT: &'static SingleFlight<Result<String, ApiError>> = Box::leak(Box::new(SingleFlight::new()));
    static PHASE: RefCell<Option<RwSignal<Phase>>> = const { RefCell::new(None) };
    static EPOCH: RefCell<Option<RwSignal<u64>>> = const { RefCell::new(None) };
    static TIMER: RefCell<Option<gloo_timers::callback::Timeout>> = const { RefCell::new(None) };
    static CHANNEL: RefCell<Option<web_sys::BroadcastChannel>> = const { RefCell::new(None) };
}

/// A token this close to its expiry is refreshed before use (or a quarter of its life, for
/// short-lived tokens).
const MARGIN_MS: f64 = 30_000.0;
const LOCK: &str = "kutanga-refresh";
const CHANNEL_NAME: &str = "kutanga-session";

/// Starts the session machinery: the phase signal the app renders from, and the channel to the
/// other tabs. Then asks the hub whether the cookie still holds a session.
pub fn install() -> RwSignal<Phase> {
    let phase = RwSignal::new(Phase::Resuming);
    PHASE.with(|p| *p.borrow_mut() = Some(phase));
    if let Ok(channel) = web_sys::BroadcastChannel::new(CHANNEL_NAME) {
        let on_message = Closure::<dyn Fn(web_sys::MessageEvent)>::new(|event: web_sys::MessageEvent| {
            match event.data().as_string().as_deref() {
                Some("signed-out") => forget(),
                Some("signed-in") if phase_now() == Some(Phase::SignedOut) => {
                    wasm_bindgen_futures::spawn_local(async {
                        let _ = refresh().await;
                    })
                }
                _ => {}
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        CHANNEL.with(|c| *c.borrow_mut() = Some(channel));
    }
    wasm_bindgen_futures::spawn_local(async {
        if refresh().await.is_err() {
            set_phase(Phase::SignedOut);
        }
    });
    phase
}

/// Bumped on every new access token (sign-in and each refresh): what depends on the user's
/// permissions reloads then.
pub fn epoch() -> RwSignal<u64> {
    EPOCH.with(|e| *e.borrow_mut().get_or_insert_with(|| RwSignal::new(0)))
}

fn phase_now() -> Option<Phase> {
    PHASE.with(|p| p.borrow().map(|s| s.get_untracked()))
}

fn set_phase(phase: Phase) {
    if let Some(signal) = PHASE.with(|p| *p.borrow())
        && signal.get_untracked() != phase
    {
        signal.set(phase);
    }
}

fn tell_other_tabs(message: &str) {
    CHANNEL.with(|c| {
        if let Some(channel) = c.borrow().as_ref() {
            let _ = channel.post_message(&JsValue::from_str(message));
        }
    });
}

/// The access token to send, refreshed first when it is about to expire; None when signed out.
pub async fn token() -> Option<String> {
    let current = TOKEN.with(|t| t.borrow().clone())?;
    if current.expires_at_ms - time::now_ms() > MARGIN_MS.min(current.ttl_ms / 4.0) {
        return Some(current.access);
    }
    refresh().await.ok()
}

/// Trades the cookie for a fresh access token (and a rotated cookie). Callers that come while
/// a refresh is in flight share its result. A refresh the hub refuses signs out.
pub async fn refresh() -> Result<String, ApiError> {
    let flight = FLIGHT.with(|f| *f);
    flight
        .join(|| async {
            match exclusively(post::<()>("/auth/refresh", None)).await {
                Ok(session) => Ok(accept(session)),
                Err(e) => {
                    // Only the hub refusing the cookie ends the session; the network failing, a
                    // rate limit or a busy hub do not (the next attempt may succeed).
                    if e.is(ErrorCode::Unauthenticated) {
                        forget();
                    }
                    Err(e)
                }
            }
        })
        .await
}

/// Signs in with email and password.
pub async fn sign_in(email: String, password: String) -> Result<(), ApiError> {
    let session = post("/auth/login", Some(&LoginRequest { email, password })).await?;
    accept(session);
    tell_other_tabs("signed-in");
    Ok(())
}

/// Creates an account (where registration is open or with an invitation) and signs in.
pub async fn register(request: RegisterRequest) -> Result<(), ApiError> {
    let session = post("/auth/register", Some(&request)).await?;
    accept(session);
    tell_other_tabs("signed-in");
    Ok(())
}

/// Ends the session on the hub and in every tab. The tab signs out even when the hub cannot
/// be told (the error says so: the cookie's session then lives on until it expires).
pub async fn sign_out() -> Result<(), ApiError> {
    let told = exclusively(post_no_content("/auth/logout")).await;
    forget();
    tell_other_tabs("signed-out");
    told
}

/// The session has ended (signed out elsewhere, revoked, disabled): back to the sign-in page.
pub fn forget() {
    TOKEN.with(|t| t.borrow_mut().take());
    TIMER.with(|t| t.borrow_mut().take());
    live::disconnect();
    set_phase(Phase::SignedOut);
}

fn accept(session: WebSession) -> String {
    let ttl_ms = (session.access_token_expires_in.max(1) * 1000) as f64;
    let token = Token { access: session.access_token.clone(), expires_at_ms: time::now_ms() + ttl_ms, ttl_ms };
    TOKEN.with(|t| *t.borrow_mut() = Some(token));
    // Refresh ahead of expiry: at 80 % of its life, so that the live connection is handed the
    // new token well before the hub would close it.
    let timer = gloo_timers::callback::Timeout::new((ttl_ms * 0.8) as u32, || {
        wasm_bindgen_futures::spawn_local(async {
            let _ = refresh().await;
        })
    });
    TIMER.with(|t| *t.borrow_mut() = Some(timer));
    live::renew(&session.access_token);
    set_phase(Phase::SignedIn);
    epoch().update(|e| *e += 1);
    session.access_token
}

async fn post<B: Serialize>(path: &str, body: Option<&B>) -> Result<WebSession, ApiError> {
    let request = Request::post(path).header("Accept", "application/json");
    let request = match body {
        Some(body) => request.json(body),
        None => request.header("Content-Type", "application/json").body("{}"),
    }
    .map_err(ApiError::network)?;
    let response = request.send().await.map_err(ApiError::network)?;
    let status = response.status();
    let text = response.text().await.map_err(ApiError::network)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|_| ApiError::network(format!("HTTP {status}: not a session")));
    }
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Err(answer.get("errors").and_then(ApiError::first_of).unwrap_or_else(|| match status {
        401 => ApiError::coded(ErrorCode::Unauthenticated, "the session has ended"),
        _ => ApiError::network(format!("HTTP {status}")),
    }))
}

/// POSTs `{}` to a route that answers 204 (or an API error).
async fn post_no_content(path: &str) -> Result<(), ApiError> {
    let response = Request::post(path)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body("{}")
        .map_err(ApiError::network)?
        .send()
        .await
        .map_err(ApiError::network)?;
    let status = response.status();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    Err(answer
        .get("errors")
        .and_then(ApiError::first_of)
        .unwrap_or_else(|| ApiError::network(format!("HTTP {status}"))))
}

/// Runs `work` while no other tab of this hub runs a refresh.
async fn exclusively<T: 'static>(work: impl Future<Output = Result<T, ApiError>> + 'static) -> Result<T, ApiError> {
    let locks = web_sys::window()
        .and_then(|w| Reflect::get(&w.navigator(), &JsValue::from_str("locks")).ok())
        .filter(|l| !l.is_undefined() && !l.is_null());
    let Some(locks) = locks else {
        return leased(work).await;
    };
    let out: Rc<RefCell<Option<Result<T, ApiError>>>> = Rc::new(RefCell::new(None));
    let slot = out.clone();
    let pending = Rc::new(RefCell::new(Some(work.boxed_local())));
    let take = pending.clone();
    let granted = Closure::once(move |_lock: JsValue| -> Promise {
        let work = take.borrow_mut().take();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Some(work) = work {
                *slot.borrow_mut() = Some(work.await);
            }
            Ok(JsValue::UNDEFINED)
        })
    });
    let request =
        Reflect::get(&locks, &JsValue::from_str("request")).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(request) = request
        && let Ok(promise) = request.call2(&locks, &JsValue::from_str(LOCK), granted.as_ref().unchecked_ref())
        && let Ok(promise) = promise.dyn_into::<Promise>()
    {
        let _ = JsFuture::from(promise).await;
    }
    drop(granted);
    let done = out.borrow_mut().take();
    if let Some(done) = done {
        return done;
    }
    // The lock API failed before it ran the work: run it without the lock rather than never.
    let work = pending.borrow_mut().take();
    match work {
        Some(work) => work.await,
        None => Err(ApiError::network("the browser dropped the refresh")),
    }
}

/// How long a tab's refresh lease in localStorage lasts.
const LEASE_MS: f64 = 20_000.0;

/// The fallback of [`exclusively`]: a lease in localStorage, taken when free or expired and
/// checked again after a pause so that two tabs that wrote at once see who won. localStorage is
/// not atomic across processes, so this narrows the race rather than closing it; the hub's
/// grace for a just-replaced refresh token (KUTANGA_REFRESH_REUSE_GRACE) covers the rest.
async fn leased<T>(work: impl Future<Output = T>) -> T {
    let storage = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
    let Some(storage) = storage else { return work.await };
    let me = format!("{}", js_sys::Math::random());
    for _ in 0..100 {
        let now = time::now_ms();
        let holder = storage.get_item(LOCK).ok().flatten();
        let free = holder
            .as_deref()
            .and_then(|h| h.split_once('@'))
            .is_none_or(|(_, until)| until.parse::<f64>().is_ok_and(|until| until < now));
        if free {
            let until = now + LEASE_MS;
            let _ = storage.set_item(LOCK, &format!("{me}@{until}"));
            gloo_timers::future::TimeoutFuture::new(50).await;
            // Still ours, and still time to use it (a throttled background tab may wake late).
            let ours = storage.get_item(LOCK).ok().flatten().is_some_and(|h| h.starts_with(&format!("{me}@")));
            if ours && time::now_ms() < until - LEASE_MS / 2.0 {
                let out = work.await;
                if storage.get_item(LOCK).ok().flatten().is_some_and(|h| h.starts_with(&format!("{me}@"))) {
                    let _ = storage.remove_item(LOCK);
                }
                return out;
            }
        }
        gloo_timers::future::TimeoutFuture::new(100).await;
    }
    work.await
}
