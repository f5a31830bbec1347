//! The order in which the app learns a server's state: live `serverState` events and the
//! answers to queries and power actions travel on different connections, so an answer asked
//! before an event may arrive after it. Events are numbered as they arrive; an answer may set a
//! server's state only when no event of that server arrived after it was asked.

use std::{cell::RefCell, collections::BTreeMap};

thread_local! {
    /// Events counted so far, and the number of the latest one of each server.
    static SEEN: RefCell<(u64, BTreeMap<i64, u64>)> = RefCell::default();
}

/// Where the count stands: taken when a question is asked.
pub fn mark() -> u64 {
    SEEN.with_borrow(|(n, _)| *n)
}

/// Counts a state event of server `id`.
pub fn event(id: i64) {
    SEEN.with_borrow_mut(|(n, last)| {
        *n += 1;
        last.insert(id, *n);
    });
}

/// Whether an answer asked at `mark` may still set server `id`'s state.
pub fn current(id: i64, mark: u64) -> bool {
    SEEN.with_borrow(|(_, last)| last.get(&id).is_none_or(|n| *n <= mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_asked_before_an_event_of_its_server_is_stale() {
        let asked = mark();
        assert!(current(7, asked) && current(8, asked));
        event(7);
        assert!(!current(7, asked), "an event after the question wins");
        assert!(current(8, asked), "another server's event does not matter");
        assert!(current(7, mark()), "a question asked after the event is current");
    }
}
