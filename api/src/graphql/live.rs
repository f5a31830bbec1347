//! Keeps a subscription honest: whenever anyone's access changes (roles, grants, account,
//! sessions), the caller is loaded again; when the check fails the stream yields one error and
//! ends, so a revoked user's open socket stops receiving.
//!
//! The change is seen through the bus's access generation (a `watch`), never through a message
//! that a flood of events could push out, and the fresh caller is shared with the stream's own
//! filters ([`LiveCaller`]), so they never judge an event with permissions the caller lost.

use std::sync::{Arc, Mutex, RwLock};

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
/// caller's session ends). An item is never passed on while an access change is unchecked:
/// the check comes first.
pub fn while_allowed<T: Send + 'static>(
    s: &Services,
    me: LiveCaller,
    check: Check,
    inner: BoxStream<'static, T>,
) -> impl Stream<Item = GqlResult<T>> + use<T> {
    let mut generation = s.bus.access_generation();
    // The generation as of the last check; `None` until the first, so that a change landed
    // between the resolver's own check and this point is never missed.
    let reader = generation.clone();
    let checked: Arc<Mutex<Option<u64>>> = Arc::default();
    generation.mark_changed();
    let changes = stream::unfold(generation, |mut rx| async move {
        rx.changed().await.ok()?;
        Some((Item::Recheck, rx))
    });
    let s = s.clone();
    let check = Arc::new(check);
    // `select` takes turns between its two sides, so a flood of data never delays a recheck by
    // more than one item.
    let checked_items = stream::select(inner.map(Item::Data), changes)
        .then(move |item| {
            let now = *reader.borrow();
            let stale = *checked.lock().unwrap_or_else(|e| e.into_inner()) != Some(now);
            let item = match item {
                // Nothing changed since the last check (the usual case): passed on as it is,
                // without a task's worth of clones for each item of each subscriber.
                Item::Data(t) if !stale => return future::Either::Left(future::ready(Some(Ok(t)))),
                item => item,
            };
            let (s, me, check, checked) = (s.clone(), me.clone(), check.clone(), checked.clone());
            // Boxed: a recheck is rare, and the stream keeps room for its pending item in every
            // subscription for as long as it lives.
            future::Either::Right(Box::pin(async move {
                let was = me.get();
                let verdict = match caller::current(&s, was.user_id, was.session_id).await {
                    Ok(fresh) => {
                        me.set(fresh.clone());
                        check(s, fresh).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = verdict {
                    return Some(Err(e.extend()));
                }
                *checked.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
                match item {
                    Item::Data(t) => Some(Ok(t)),
                    Item::Recheck => None,
                }
            }))
        })
        .filter_map(future::ready)
        .boxed();
    // The end comes right after the error, without waiting for another item.
    stream::unfold((checked_items, false), |(mut items, ended)| async move {
        if ended {
            return None;
        }
        let item = items.next().await?;
        let ended = item.is_err();
        Some((item, (items, ended)))
    })
}
