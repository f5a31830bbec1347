//! Keeps a subscription honest: whenever the caller's access changes (roles, grants, account,
//! sessions), the caller is loaded again; when the check fails the stream yields one error and
//! ends, so a revoked user's open socket stops receiving.

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
    events::HubEvent,
};

/// An access check on a freshly loaded caller.
pub type Check = Box<dyn Fn(Services, Caller) -> BoxFuture<'static, Result<(), ApiError>> + Send + Sync>;

enum Item<T> {
    Data(T),
    Recheck,
}

/// Wraps `inner` so that it ends with an error once `check` fails for the caller.
pub fn while_allowed<T: Send + 'static>(
    s: &Services,
    me: &Caller,
    check: Check,
    inner: BoxStream<'static, T>,
) -> impl Stream<Item = GqlResult<T>> + use<T> {
    let user_id = me.user_id;
    let access = s.bus.subscribe().filter_map(move |e| {
        future::ready(match e {
            HubEvent::AccessChanged { user_id: who } if who.is_none_or(|id| id == user_id) => Some(Item::Recheck),
            _ => None,
        })
    });
    let (s, me) = (s.clone(), me.clone());
    let check = std::sync::Arc::new(check);
    stream::select(inner.map(Item::Data), access)
        .then(move |item| {
            let (s, me, check) = (s.clone(), me.clone(), check.clone());
            async move {
                match item {
                    Item::Data(t) => Some(Ok(t)),
                    Item::Recheck => {
                        let verdict = match caller::load(s.db.conn(), me.user_id, me.session_id).await {
                            Ok(fresh) => check(s, fresh).await,
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
