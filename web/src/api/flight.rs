//! One run of an async task at a time: callers that come while it runs share its result.

use std::{cell::RefCell, future::Future};

use futures_util::{
    FutureExt,
    future::{LocalBoxFuture, Shared},
};

/// A task that runs once however many ask at the same time; the next ask after it ended starts
/// it anew.
pub struct SingleFlight<T: Clone + 'static> {
    running: RefCell<Option<Shared<LocalBoxFuture<'static, T>>>>,
}

impl<T: Clone + 'static> SingleFlight<T> {
    pub const fn new() -> Self {
        Self { running: RefCell::new(None) }
    }

    /// Joins the run in flight, or starts `task` (then forgets it once it ended).
    pub fn join<F: Future<Output = T> + 'static>(
        &'static self,
        task: impl FnOnce() -> F,
    ) -> impl Future<Output = T> + 'static {
        self.running
            .borrow_mut()
            .get_or_insert_with(|| {
                let work = task();
                async move {
                    let out = work.await;
                    self.running.borrow_mut().take();
                    out
                }
                .boxed_local()
                .shared()
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        cell::Cell,
        pin::pin,
        rc::Rc,
        task::{Context, Poll},
    };

    use futures_util::future::{join3, poll_fn};

    use super::*;

    #[test]
    fn callers_in_flight_share_one_run_and_later_ones_start_anew() {
        let flight: &'static SingleFlight<u32> = Box::leak(Box::new(SingleFlight::new()));
        let runs = Rc::new(Cell::new(0));
        let open = Rc::new(Cell::new(false));
        let start = || {
            let (runs, open) = (runs.clone(), open.clone());
            flight.join(move || {
                runs.set(runs.get() + 1);
                let n = runs.get();
                poll_fn(move |_| if open.get() { Poll::Ready(n * 10) } else { Poll::Pending })
            })
        };
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        // Three callers while the first run is pending: one run.
        let mut three = pin!(join3(start(), start(), start()));
        assert!(three.as_mut().poll(&mut cx).is_pending());
        assert_eq!(runs.get(), 1);
        let late = start();
        open.set(true);
        assert_eq!(three.as_mut().poll(&mut cx), Poll::Ready((10, 10, 10)));
        assert_eq!(late.now_or_never(), Some(10), "a caller that came in flight gets the same answer");
        assert_eq!(runs.get(), 1);
        // The run ended: the next caller starts another.
        assert_eq!(start().now_or_never(), Some(20));
        assert_eq!(runs.get(), 2);
    }
}
