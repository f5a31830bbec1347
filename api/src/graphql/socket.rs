//! A WebSocket belongs to the session that opened it.
//!
//! `connection_init` proves who the caller is, but the socket keeps no caller: every operation
//! sent on it is authorised afresh, as it would be over HTTP at that moment (the session still
//! valid, the account enabled, its current permissions), by the [engine](super::engine). The socket itself is
//! closed as soon as its session ends (logout, `logoutAll`, a password change or reset, the
//! account disabled or deleted, the session's lifetime over): close code 4403. When the access
//! token it was opened with expires, the socket is closed with 4401 unless the client sent a
//! fresh token of the same session first, in a `ping` whose payload is
//! `{"authorization": "Bearer <token>"}` (the `pong` says until when the socket may stay).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::{
    app::Services,
    auth::{Caller, ClientInfo, caller},
    error::ApiError,
};

/// Why a socket closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketClose {
    pub code: u16,
    pub reason: &'static str,
}

/// The session ended: sign in again.
pub const SESSION_ENDED: SocketClose = SocketClose { code: 4403, reason: "Forbidden: the session has ended" };
/// The access token expired: refresh it and reconnect (or send the fresh one in a ping before).
pub const TOKEN_EXPIRED: SocketClose =
    SocketClose { code: 4401, reason: "Unauthorized: the access token expired; reconnect with a fresh one" };

/// The identity of one WebSocket: whose session it is, and until when its token holds.
#[derive(Debug)]
pub struct SocketSession {
    user_id: i64,
    session_id: i64,
    client: ClientInfo,
    /// (token expiry, session expiry): the socket may stay open until the earlier one.
    until: Mutex<(DateTime<Utc>, DateTime<Utc>)>,
    closing: watch::Sender<Option<SocketClose>>,
    /// The access generation as of before the session was checked at `connection_init`.
    access: watch::Receiver<u64>,
}

impl SocketSession {
    /// A socket for a caller checked after `access` was taken (so no change is missed between).
    pub fn open(
        caller: &Caller,
        token_expires_at: DateTime<Utc>,
        client: ClientInfo,
        access: watch::Receiver<u64>,
    ) -> Arc<Self> {
        Arc::new(Self {
            access,
            user_id: caller.user_id,
            session_id: caller.session_id,
            client,
            until: Mutex::new((token_expires_at, caller.session_expires_at)),
            closing: watch::channel(None).0,
        })
    }

    /// The client that opened the socket.
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    fn until(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the socket to close (the first reason wins).
    pub fn close(&self, why: SocketClose) {
        self.closing.send_if_modified(|now| now.is_none() && now.replace(why).is_none());
    }

    /// The caller as of now; when the token expired or the session ended, the socket is told to
    /// close and the error says so. A passing failure of the store fails only this operation.
    pub async fn caller_now(&self, s: &Services) -> Result<Caller, ApiError> {
        if Utc::now() >= self.until().0 {
            self.close(TOKEN_EXPIRED);
            return Err(ApiError::Unauthenticated("the access token expired; reconnect with a fresh one"));
        }
        match caller::current(s, self.user_id, self.session_id).await {
            Ok(caller) => {
                self.until.lock().unwrap_or_else(|e| e.into_inner()).1 = caller.session_expires_at;
                Ok(caller)
            }
            Err(e @ ApiError::Unauthenticated(_)) => {
                self.close(SESSION_ENDED);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Takes a fresh access token of the same session (sent in a ping); returns its expiry.
    /// A token of another session, or an invalid one, closes the socket.
    pub async fn refresh(&self, s: &Services, token: &str) -> Result<DateTime<Utc>, ApiError> {
        match caller::authenticate_until(s, token).await {
            Ok((caller, expires)) if caller.user_id == self.user_id && caller.session_id == self.session_id => {
                *self.until.lock().unwrap_or_else(|e| e.into_inner()) = (expires, caller.session_expires_at);
                Ok(expires)
            }
            Ok(_) | Err(ApiError::Unauthenticated(_)) => {
                self.close(SESSION_ENDED);
                Err(ApiError::Unauthenticated("not a token of this socket's session"))
            }
            Err(e) => Err(e),
        }
    }

    /// Resolves when the socket must close, and says why: its session ended (seen on every
    /// access change and at the session's end of life) or its token expired.
    pub async fn closed(&self, s: &Services) -> SocketClose {
        let mut access = self.access.clone();
        let mut closing = self.closing.subscribe();
        loop {
            if let Some(why) = *closing.borrow_and_update() {
                return why;
            }
            let (token, session) = self.until();
            // Not less than a moment, so that a store that fails for a while is not asked in a loop.
            let wait = (token.min(session) - Utc::now()).to_std().unwrap_or_default().max(Duration::from_millis(250));
            // The check is boxed: it runs rarely, while this loop's state is kept in every
            // socket's task for as long as the socket lives.
            tokio::select! {
                changed = access.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                    let _ = Box::pin(self.caller_now(s)).await;
                }
                () = tokio::time::sleep(wait) => {
                    let _ = Box::pin(self.caller_now(s)).await;
                }
                _ = closing.changed() => {}
            }
        }
    }
}
