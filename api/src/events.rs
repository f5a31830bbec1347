//! The hub's event bus: producers publish, subscriptions listen.
//!
//! A trait with an in-process implementation now, so that several replicas can later share one
//! bus over a broker. Each kind of event travels on a channel of its own (console lines per
//! server, states, samples, alerts, audit entries), so a flood on one never pushes events out of
//! another. Publishers never wait: a subscriber that falls behind on a channel loses that
//! channel's oldest events instead of growing the hub's memory.
//!
//! Access changes are not messages at all: they bump a generation counter (a `watch`), which a
//! subscriber cannot miss however far behind it is, so a revoked caller's open subscriptions
//! always check again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::{broadcast, watch};

/// Something that happened in the hub.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// An audit entry was committed.
    Audit(Arc<entity::audit_log::Model>),
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

/// The channel an event travels on; a subscription listens to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// The console lines of one server.
    Console(i64),
    /// State changes of every server.
    ServerState,
    /// Host and server resource samples.
    Samples,
    /// Alert changes.
    Alerts,
    /// Committed audit entries.
    Audit,
}

impl HubEvent {
    pub fn topic(&self) -> Topic {
        match self {
            Self::Audit(_) => Topic::Audit,
            Self::ServerState(_) => Topic::ServerState,
            Self::Console(line) => Topic::Console(line.server_id),
            Self::HostSample(_) | Self::ServerSample(_) => Topic::Samples,
            Self::Alert(_) => Topic::Alerts,
        }
    }
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
    /// Publishes an event to every current subscriber of its topic; never blocks.
    fn publish(&self, event: HubEvent);
    /// A stream of the events of one topic published from now on.
    fn subscribe(&self, topic: Topic) -> BoxStream<'static, HubEvent>;
    /// Says that someone's access changed (roles, grants, account, sessions).
    fn access_changed(&self);
    /// The access generation: it changes after every access change, and a receiver sees that it
    /// changed however many changes it missed.
    fn access_generation(&self) -> watch::Receiver<u64>;
}

/// How far a subscriber may lag behind on each channel.
const CONSOLE_CAPACITY: usize = 1024;
const SHARED_CAPACITY: usize = 256;
const AUDIT_CAPACITY: usize = 1024;

/// The in-process bus.
#[derive(Debug)]
pub struct LocalBus {
    states: broadcast::Sender<HubEvent>,
    samples: broadcast::Sender<HubEvent>,
    alerts: broadcast::Sender<HubEvent>,
    audit: broadcast::Sender<HubEvent>,
    /// One channel per server with a console subscriber; dropped when its last one goes.
    consoles: Mutex<HashMap<i64, broadcast::Sender<HubEvent>>>,
    access: watch::Sender<u64>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            states: broadcast::channel(SHARED_CAPACITY).0,
            samples: broadcast::channel(SHARED_CAPACITY).0,
            alerts: broadcast::channel(SHARED_CAPACITY).0,
            audit: broadcast::channel(AUDIT_CAPACITY).0,
            consoles: Mutex::default(),
            access: watch::channel(0).0,
        }
    }
}

impl LocalBus {
    fn channel(&self, topic: Topic) -> broadcast::Sender<HubEvent> {
        match topic {
            Topic::ServerState => self.states.clone(),
            Topic::Samples => self.samples.clone(),
            Topic::Alerts => self.alerts.clone(),
            Topic::Audit => self.audit.clone(),
            Topic::Console(id) => {
                let mut consoles = self.consoles.lock().unwrap_or_else(|e| e.into_inner());
                consoles.entry(id).or_insert_with(|| broadcast::channel(CONSOLE_CAPACITY).0).clone()
            }
        }
    }

    /// A receiver of the topic. A console's is made while the map is locked: `publish` drops a
    /// console channel that has no receiver, and a receiver made after the lock was released
    /// could belong to a channel just dropped from the map, which nothing would ever send to
    /// (a subscriber that silently got no line, seen under a flood).
    fn receiver(&self, topic: Topic) -> broadcast::Receiver<HubEvent> {
        match topic {
            Topic::Console(id) => {
                let mut consoles = self.consoles.lock().unwrap_or_else(|e| e.into_inner());
                consoles.entry(id).or_insert_with(|| broadcast::channel(CONSOLE_CAPACITY).0).subscribe()
            }
            topic => self.channel(topic).subscribe(),
        }
    }
}

impl EventBus for LocalBus {
    fn publish(&self, event: HubEvent) {
        let sender = match event.topic() {
            Topic::Console(id) => {
                let mut consoles = self.consoles.lock().unwrap_or_else(|e| e.into_inner());
                match consoles.get(&id) {
                    Some(tx) if tx.receiver_count() > 0 => tx.clone(),
                    Some(_) => {
                        consoles.remove(&id);
                        return;
                    }
                    None => return,
                }
            }
            topic => self.channel(topic),
        };
        // No subscriber is not an error.
        let _ = sender.send(event);
    }

    fn subscribe(&self, topic: Topic) -> BoxStream<'static, HubEvent> {
        let rx = self.receiver(topic);
        stream::unfold(rx, move |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, ?topic, "a subscriber fell behind; events skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    fn access_changed(&self) {
        self.access.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    fn access_generation(&self) -> watch::Receiver<u64> {
        self.access.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(server_id: i64, n: usize) -> HubEvent {
        HubEvent::Console(Arc::new(ConsoleLine {
            server_id,
            at: chrono::Utc::now(),
            stream: "stdout",
            line: n.to_string(),
        }))
    }

    fn text(event: Option<HubEvent>) -> String {
        match event {
            Some(HubEvent::Console(l)) => l.line.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_skips_instead_of_growing() {
        let bus = LocalBus::default();
        let mut sub = bus.subscribe(Topic::Console(1));
        for i in 0..CONSOLE_CAPACITY + 10 {
            bus.publish(line(1, i));
        }
        // The first ten were dropped; the stream resumes at the oldest kept event.
        assert_eq!(text(sub.next().await), "10");
    }

    #[tokio::test]
    async fn a_flood_on_one_channel_pushes_nothing_out_of_another() {
        let bus = LocalBus::default();
        let mut quiet = bus.subscribe(Topic::Console(2));
        bus.publish(line(2, 7));
        for i in 0..10 * CONSOLE_CAPACITY {
            bus.publish(line(1, i));
        }
        assert_eq!(text(quiet.next().await), "7");
    }

    #[tokio::test]
    async fn access_changes_are_never_lost() {
        let bus = LocalBus::default();
        let mut generation = bus.access_generation();
        let mut flooded = bus.subscribe(Topic::Console(1));
        for i in 0..10 * CONSOLE_CAPACITY {
            bus.publish(line(1, i));
            if i == 5 {
                bus.access_changed();
            }
        }
        assert!(generation.has_changed().unwrap(), "the change is seen after the flood");
        generation.mark_unchanged();
        assert!(!generation.has_changed().unwrap());
        assert!(flooded.next().await.is_some());
    }

    #[test]
    fn console_channels_go_with_their_last_subscriber() {
        let bus = LocalBus::default();
        let sub = bus.subscribe(Topic::Console(3));
        bus.publish(line(3, 1));
        drop(sub);
        bus.publish(line(3, 2));
        assert!(bus.consoles.lock().unwrap().is_empty());
    }

    /// A flood publishing while readers come and go: every new reader hears the flood (a reader
    /// made just as `publish` dropped its idle channel once heard nothing, ever).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_joins_a_flood_always_hears_it() {
        let bus = Arc::new(LocalBus::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = {
            let (bus, stop) = (bus.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    bus.publish(line(9, n));
                    n += 1;
                }
            })
        };
        for round in 0..2000 {
            let mut reader = bus.subscribe(Topic::Console(9));
            let heard = tokio::time::timeout(std::time::Duration::from_secs(2), reader.next()).await;
            assert!(matches!(heard, Ok(Some(_))), "round {round}: a new reader heard nothing");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flood.join().unwrap();
    }
}
