//! The hub's event bus: producers publish, subscriptions listen.
//!
//! A trait with an in-process implementation (tokio broadcast) now, so that several replicas can
//! later share one bus over a broker. Publishers never wait: a subscriber that falls behind loses
//! the oldest events (and is told how many) instead of growing the hub's memory.

use std::sync::Arc;

use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast;

/// Something that happened in the hub.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// An audit entry was committed.
    Audit(Arc<entity::audit_log::Model>),
    /// A user's roles, grants or account changed: open subscriptions re-check their access.
    AccessChanged { user_id: Option<i64> },
    /// A game server changed state.
    ServerState(Arc<ServerStateEvent>),
    /// A game server printed a line (or was sent one).
    Console(Arc<ConsoleLine>),
    /// A sample of the host's resources.
    HostSample(Arc<crate::monitor::HostSample>),
    /// A sample of one running game server's resources.
    ServerSample(Arc<crate::monitor::ServerSample>),
    /// An alert fired, resolved, was acknowledged, or its webhook delivery changed.
    Alert(Arc<entity::alert::Model>),
}

/// A change of a game server's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStateEvent {
    pub server_id: i64,
    pub state: shared::ServerState,
    pub at: chrono::DateTime<chrono::Utc>,
    pub message: Option<String>,
}

/// One line of a game server's console.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleLine {
    pub server_id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// stdout, stderr, stdin (a command sent) or system (the hub's own word).
    pub stream: &'static str,
    pub line: String,
}

/// Carries events from producers to subscribers.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event to every current subscriber; never blocks.
    fn publish(&self, event: HubEvent);
    /// A stream of the events published from now on.
    fn subscribe(&self) -> BoxStream<'static, HubEvent>;
}

/// The in-process bus.
#[derive(Debug, Clone)]
pub struct LocalBus {
    tx: broadcast::Sender<HubEvent>,
}

impl LocalBus {
    /// A bus whose slowest subscriber may lag `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        Self { tx: broadcast::channel(capacity).0 }
    }
}

impl EventBus for LocalBus {
    fn publish(&self, event: HubEvent) {
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> BoxStream<'static, HubEvent> {
        let rx = self.tx.subscribe();
        stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "a subscriber fell behind; events skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_skips_instead_of_growing() {
        let bus = LocalBus::new(4);
        let mut sub = bus.subscribe();
        for i in 0..10 {
            bus.publish(HubEvent::AccessChanged { user_id: Some(i) });
        }
        // The first six were dropped; the stream resumes at the oldest kept event.
        match sub.next().await {
            Some(HubEvent::AccessChanged { user_id }) => assert_eq!(user_id, Some(6)),
            other => panic!("unexpected {other:?}"),
        }
    }
}
