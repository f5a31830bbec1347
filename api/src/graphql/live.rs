//! Keeps a subscription honest: whenever anyone's access changes (roles, grants, account,
//! sessions), the caller is loaded again; when the check fails the stream yields one error and
//! ends, so a revoked user's open socket stops receiving.
//!
//! The change is seen through the bus's access generation (a `watch`), never through a message
//! that a flood of events could push out, and the fresh caller is shared with the stream's own
//! filters ([`LiveCaller`]), so they never judge an event with permissions the caller lost.

use std::sync::{Arc, RwLock};

use async_graphql::ErrorExtensions;
use futures_util::{
    Stream, StreamExt,
    future::{self, BoxFuture},
    stream::{self, BoxStream},
};

use crate::{
    app::Services,
    auth::{Caller, caller},
    error::{ApiError, GqlResult},
};

/// An access check on a freshly loaded caller.
pub type Check = Box<dyn Fn(Services, Caller) -> BoxFuture<'static, Result<(), ApiError>> + Send + Sync>;

/// The caller of a live subscription as last checked.
#[derive(Debug, Clone)]
pub struct LiveCaller(Arc<RwLock<Caller>>);

impl LiveCaller {
    pub fn new(me: &Caller) -> Self {
        Self(Arc::new(RwLock::new(me.clone())))
    }

    /// The caller with the permissions found at the last check.
    pub fn get(&self) -> Caller {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, fresh: Caller) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }
}

enum Item<T> {
    Data(T),
    Recheck,
}

/// Wraps `inner` so that it ends with an error once `check` fails for the caller (or the
/// caller's session ends).
pub fn while_allowed<T: Send + 'static>(
    s: &Services,
    me: LiveCaller,
    check: Check,
    inner: BoxStream<'static, T>,
) -> impl Stream<Item = GqlResult<T>> + use<T> {
    let generation = s.bus.access_generation();
    let changes = stream::unfold(generation, |mut rx| async move {
        rx.changed().await.ok()?;
        Some((Item::Recheck, rx))
    });
    let s = s.clone();
    let check = Arc::new(check);
    // `select` takes turns between its two sides, so a flood of data never delays a recheck by
    // more than one item.
    stream::select(inner.map(Item::Data), changes)
        .then(move |item| {
            let (s, me, check) = (s.clone(), me.clone(), check.clone());
            async move {
                match item {
                    Item::Data(t) => Some(Ok(t)),
                    Item::Recheck => {
                        let was = me.get();
                        let verdict = match caller::current(&s, was.user_id, was.session_id).await {
                            Ok(fresh) => {
                                me.set(fresh.clone());
                                check(s, fresh).await
                            }
                            Err(e) => Err(e),
                        };
                        verdict.err().map(|e| Err(e.extend()))
                    }
                }
            }
        })
        .filter_map(future::ready)
        .scan(false, |ended, item| {
            if *ended {
                return future::ready(None);
            }
            *ended = item.is_err();
            future::ready(Some(item))
        })
}
