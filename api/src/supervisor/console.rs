//! A server's console: output captured from its log files line by line, a bounded tail in
//! memory, and every line published on the bus (subscribers that fall behind skip lines).
//!
//! The game writes stdout and stderr to files the hub opened for it (outside its folder, so the
//! game cannot swap them for links); the hub tails them, woken by inotify when a game writes.
//! Files survive a restart of the hub, and a flood of output costs bounded memory: reads are
//! chunked, lines are capped, the tail is a ring.

use std::{
    collections::VecDeque,
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;

use super::files::FileWatcher;
use crate::events::{ConsoleLine, EventBus, HubEvent};

/// How often a log file is read when nothing says it was written (inotify wakes the reader at
/// once; this also notices that the game has gone).
const POLL: Duration = Duration::from_millis(100);
/// After a read that found output, the reader waits this long before the next one: a game that
/// writes line after line has its lines read, published and sent to each subscriber in batches
/// (one wake-up and one write per subscriber for the batch), at the price of this much delay.
const GATHER: Duration = Duration::from_millis(50);
/// How often a reader tries again to watch a file it could not watch.
const WATCH_RETRY: Duration = Duration::from_secs(5);
/// The longest line kept, in bytes; the rest is cut with a mark.
const MAX_LINE: usize = 4096;
/// At most this much is read per file and tick, so one flooding server cannot hog a thread.
const MAX_READ: usize = 1 << 20;

/// The in-memory tail of one server's console.
pub struct Console {
    pub server_id: i64,
    lines: Mutex<VecDeque<Arc<ConsoleLine>>>,
    capacity: usize,
    bus: Arc<dyn EventBus>,
}

impl Console {
    pub fn new(server_id: i64, capacity: usize, bus: Arc<dyn EventBus>) -> Self {
        Self { server_id, lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))), capacity, bus }
    }

    /// Adds a line to the tail and publishes it.
    pub fn push(&self, stream: &'static str, line: String) -> Arc<ConsoleLine> {
        let line = Arc::new(ConsoleLine { server_id: self.server_id, at: Utc::now(), stream, line });
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() >= self.capacity {
                lines.pop_front();
            }
            lines.push_back(line.clone());
        }
        self.bus.publish(HubEvent::Console(line.clone()));
        line
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<Arc<ConsoleLine>> {
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).collect()
    }
}

/// Removes ANSI escape sequences (colours, cursor moves) from a line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Follows one log file from `offset`, calling `on_line` for each complete line, until
/// `done()` says the writer has gone and the file has no more to read. The file is read again as
/// soon as `files` sees it written, and every [`POLL`] whatever happens.
pub async fn follow(
    path: PathBuf,
    mut offset: u64,
    rotate_at: u64,
    files: &FileWatcher,
    mut on_line: impl FnMut(String) + Send,
    done: impl Fn() -> bool + Send,
) {
    let mut partial: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut watched = None;
    // When to try to watch the file again (it may not exist yet, or the kernel's limit be hit).
    let mut watch_again = tokio::time::Instant::now();
    // Whether the last wait ended because the file was written.
    let mut woken = false;
    loop {
        if watched.is_none() && tokio::time::Instant::now() >= watch_again {
            watched = files.watch(&path);
            watch_again = tokio::time::Instant::now() + WATCH_RETRY;
        }
        let finished = done();
        let mut got = 0usize;
        if let Ok(mut file) = std::fs::File::open(&path) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // truncated (rotated) under us
            }
            // Far behind a flood: skip to the newest output rather than replay a backlog.
            if len - offset > 4 * MAX_READ as u64 {
                let skipped = len - MAX_READ as u64 - offset;
                on_line(format!(
                    "[{skipped} bytes of output skipped: the server writes faster than its console is read]"
                ));
                offset = len - MAX_READ as u64;
                partial.clear();
            }
            if file.seek(SeekFrom::Start(offset)).is_ok() {
                while got < MAX_READ {
                    let n = match file.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    got += n;
                    offset += n as u64;
                    for &b in &buf[..n] {
                        if b == b'\n' {
                            on_line(decode(&partial));
                            partial.clear();
                        } else if partial.len() < MAX_LINE {
                            partial.push(b);
                        } else if partial.len() == MAX_LINE {
                            partial.extend_from_slice(" [cut]".as_bytes());
                        }
                    }
                }
            }
            if offset >= rotate_at {
                rotate(&path, rotate_at);
                offset = 0;
            }
        }
        if finished && got == 0 {
            if !partial.is_empty() {
                on_line(decode(&partial));
            }
            return;
        }
        if got < MAX_READ {
            match &watched {
                Some(w) => {
                    // What a chatty game writes next is read with what was just read (the first
                    // line of a quiet one is read at once); a wake-up that found nothing (a game
                    // touching its log in a loop) waits as long before the next.
                    if got > 0 || woken {
                        tokio::time::sleep(GATHER).await;
                    }
                    woken = tokio::time::timeout(POLL, w.changed()).await.is_ok();
                }
                None => tokio::time::sleep(POLL).await,
            }
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Invalid UTF-8 stays readable: bad bytes become U+FFFD.
fn decode(bytes: &[u8]) -> String {
    strip_ansi(&String::from_utf8_lossy(bytes))
}

/// Copy-then-truncate: the writer keeps its O_APPEND handle and goes on at the new end. Only the
/// newest `keep` bytes are copied, so a flood never makes a rotation expensive.
fn rotate(path: &std::path::Path, keep: u64) {
    let old = path.with_extension("log.1");
    let Ok(mut src) = std::fs::File::open(path) else { return };
    let len = src.metadata().map(|m| m.len()).unwrap_or(0);
    if src.seek(SeekFrom::Start(len.saturating_sub(keep))).is_err() {
        return;
    }
    let copied = std::fs::File::create(&old).and_then(|mut dst| std::io::copy(&mut (&mut src).take(keep), &mut dst));
    if copied.is_ok()
        && let Ok(f) = std::fs::OpenOptions::new().write(true).open(path)
    {
        let _ = f.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Property tests: `cargo xtask fuzz` runs them with more cases.
    mod fuzz {
        use super::*;

        proptest::proptest! {
            /// Any line, escape sequences cut anywhere included: no panic, and no escape character
            /// or carriage return survives.
            #[test]
            fn any_line_is_stripped_cleanly(line in "(\\PC|\u{1b}|\\[|[0-9;]|\r|m){0,64}") {
                let out = strip_ansi(&line);
                proptest::prop_assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{:?} -> {:?}", line, out);
            }

            /// Any output a game writes, bytes as they come (invalid UTF-8, escape sequences,
            /// carriage returns, lines far over the limit), is read as one line per line break
            /// (and the unfinished rest), each clean and cut to size.
            #[test]
            fn any_output_is_read_line_by_line(chunks in proptest::collection::vec(chunk(), 0..40)) {
                let bytes: Vec<u8> = chunks.concat();
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("out.log");
                std::fs::write(&path, &bytes).unwrap();
                let mut lines = Vec::new();
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
                rt.block_on(follow(path, 0, u64::MAX, &FileWatcher::default(), |l| lines.push(l), || true));
                let breaks = bytes.iter().filter(|b| **b == b'\n').count();
                let unfinished = usize::from(bytes.last().is_some_and(|b| *b != b'\n'));
                proptest::prop_assert_eq!(lines.len(), breaks + unfinished);
                for line in &lines {
                    proptest::prop_assert!(!line.contains(['\u{1b}', '\r', '\n']), "{:?}", line);
                    proptest::prop_assert!(line.chars().count() <= MAX_LINE + " [cut]".len(), "{} chars", line.len());
                }
            }
        }

        /// A piece of output: text, raw bytes, escape sequences (whole or cut), line breaks, or a
        /// run long enough to be cut.
        fn chunk() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
            use proptest::prelude::*;
            prop_oneof![
                "\\PC{0,40}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..40),
                "\u{1b}\\[[0-9;]{0,6}[A-Za-z]?".prop_map(String::into_bytes),
                Just(b"\n".to_vec()),
                Just(b"\r\n".to_vec()),
                (1..3 * MAX_LINE, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
            ]
        }
    }

    #[test]
    fn ansi_codes_and_carriage_returns_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[1;32mready\u{1b}[0m\r"), "ready");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[tokio::test]
    async fn follow_reads_lines_keeps_bad_bytes_readable_and_cuts_floods() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut data = b"one\n\xff\xfebad\n".to_vec();
        data.extend(vec![b'x'; 10_000]);
        data.push(b'\n');
        data.extend(b"tail-without-newline");
        std::fs::write(&path, &data).unwrap();
        let mut lines = Vec::new();
        follow(path, 0, u64::MAX, &FileWatcher::default(), |l| lines.push(l), || true).await;
        assert_eq!(lines[0], "one");
        assert_eq!(lines[1], "\u{fffd}\u{fffd}bad");
        assert!(lines[2].len() < 4200 && lines[2].ends_with("[cut]"));
        assert_eq!(lines[3], "tail-without-newline");
    }

    #[test]
    fn the_tail_is_bounded() {
        let bus: Arc<dyn EventBus> = Arc::new(crate::events::LocalBus::default());
        let console = Console::new(1, 3, bus);
        for i in 0..10 {
            console.push("stdout", i.to_string());
        }
        let tail: Vec<String> = console.tail(100).iter().map(|l| l.line.clone()).collect();
        assert_eq!(tail, ["7", "8", "9"]);
    }
}
