//! Wakes a console reader as soon as its log file is written (inotify), so a game's line reaches
//! its console in milliseconds instead of at the reader's next poll.
//!
//! One inotify instance serves the whole hub (the kernel allows 128 per user by default, and a
//! host runs many games); each file followed holds one watch for as long as someone follows it.
//! Where inotify is unavailable, or a file cannot be watched (the kernel's watch limit), readers
//! poll as before.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The hub's file watcher; cheap to clone.
#[derive(Clone, Default)]
pub struct FileWatcher(Option<Arc<Shared>>);

struct Shared {
    watches: Mutex<Watches>,
    /// The readers waiting on each watched file.
    readers: Mutex<HashMap<WatchDescriptor, Vec<Arc<Notify>>>>,
    /// Ends the task that reads the events (and closes the instance) when the watcher goes.
    _stop: DropGuard,
}

impl Shared {
    fn wake(&self, wd: Option<&WatchDescriptor>) {
        let readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        let woken = match wd {
            Some(wd) => readers.get(wd).map(|r| r.iter().collect::<Vec<_>>()).unwrap_or_default(),
            None => readers.values().flatten().collect(),
        };
        for reader in woken {
            reader.notify_one();
        }
    }
}

impl FileWatcher {
    /// A watcher on the current runtime, or one that leaves every reader polling when the kernel
    /// refuses an inotify instance (said once in the log).
    pub fn start() -> Self {
        let stream = Inotify::init().and_then(|i| i.into_event_stream(vec![0u8; 16 * 1024]));
        let mut events = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no inotify: console output is read every 100 ms");
                return Self(None);
            }
        };
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let shared = Arc::new(Shared {
            watches: Mutex::new(events.watches()),
            readers: Mutex::new(HashMap::new()),
            _stop: stop.drop_guard(),
        });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.next() => event,
                    () = stopped.cancelled() => return,
                };
                let Some(event) = event else { return };
                let Some(shared) = weak.upgrade() else { return };
                match event {
                    // Events were lost: everyone looks.
                    Ok(e) if e.mask.contains(EventMask::Q_OVERFLOW) => shared.wake(None),
                    Ok(e) => shared.wake(Some(&e.wd)),
                    Err(e) => {
                        tracing::warn!(error = %e, "inotify failed: console output is read every 100 ms");
                        shared.wake(None);
                        return;
                    }
                }
            }
        });
        Self(Some(shared))
    }

    /// Watches `path` for writes; None when it cannot be watched (the reader then polls).
    pub fn watch(&self, path: &Path) -> Option<Watched> {
        let shared = self.0.as_ref()?;
        let mut readers = shared.readers.lock().unwrap_or_else(|e| e.into_inner());
        let wd = shared
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(path, WatchMask::MODIFY | WatchMask::CLOSE_WRITE | WatchMask::DONT_FOLLOW)
            .map_err(|e| tracing::debug!(path = %path.display(), error = %e, "cannot watch a console log"))
            .ok()?;
        let notify = Arc::new(Notify::new());
        readers.entry(wd.clone()).or_default().push(notify.clone());
        Some(Watched { shared: shared.clone(), wd, notify })
    }
}

/// One reader's watch on a file; dropped, the file is no longer watched for it.
pub struct Watched {
    shared: Arc<Shared>,
    wd: WatchDescriptor,
    notify: Arc<Notify>,
}

impl Watched {
    /// Resolves once the file was written since the last call (at once if it was meanwhile).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let mut readers = self.shared.readers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = readers.get_mut(&self.wd) else { return };
        list.retain(|n| !Arc::ptr_eq(n, &self.notify));
        if list.is_empty() {
            readers.remove(&self.wd);
            // Gone already when the file was deleted; nothing to do then.
            let _ = self.shared.watches.lock().unwrap_or_else(|e| e.into_inner()).remove(self.wd.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write, time::Duration};

    use super::*;

    #[tokio::test]
    async fn a_write_wakes_its_readers_and_a_dropped_watch_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let files = FileWatcher::start();
        let (first, second, other) = (files.watch(&a).unwrap(), files.watch(&a).unwrap(), files.watch(&b).unwrap());
        let mut out = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
        writeln!(out, "ready").unwrap();
        for watched in [&first, &second] {
            tokio::time::timeout(Duration::from_secs(5), watched.changed()).await.expect("a write wakes every reader");
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), other.changed()).await.is_err(),
            "another file's reader sleeps on"
        );
        let shared = files.0.clone().unwrap();
        drop(first);
        assert_eq!(shared.readers.lock().unwrap().len(), 2, "a's watch stays for its second reader");
        drop(second);
        drop(other);
        assert!(shared.readers.lock().unwrap().is_empty());
        assert!(FileWatcher::default().watch(&a).is_none(), "without inotify, readers poll");
        assert!(files.watch(&dir.path().join("missing.log")).is_none());
    }
}
