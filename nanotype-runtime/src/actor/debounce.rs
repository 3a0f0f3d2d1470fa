//! Coalescing of high-frequency updates per key before they are written to the primary.
//!
//! A like counter hit a thousand times a second, or a cursor position streamed from every
//! client, should not become a thousand SQLite writes and a thousand outbox records. A
//! [`Debouncer`] keeps one pending value per key — the last one, or the merge of all of them
//! (e.g. the sum of counter increments) — and writes each key once per interval or when asked.
//!
//! The write is a synchronous callback, so in a Durable Object it goes through the generated
//! typed functions against the room's primary (`Counter::upsert(db, ..)`), and each flushed
//! value is recorded in the outbox and replicated like any other write.
//!
//! **Nothing is dropped silently.** A value whose write fails stays pending, and later updates
//! merge onto it; the [`FlushReport`] names every key that failed and why. Values still pending
//! when the actor's instance goes away are lost with its memory, so flush before the instance
//! may be evicted (e.g. at the end of an alarm or a `webSocketClose`) when that matters.
//!
//! ```
//! use nanotype::actor::Debouncer;
//!
//! // Counter increments, summed; written at most every 500 ms.
//! let likes: Debouncer<i64, i64> = Debouncer::with_merge(500, |sum, inc| *sum += inc);
//! let now = 10_000;
//! for _ in 0..1_000 {
//!     likes.update(7, 1, now);
//! }
//! assert_eq!(likes.pending(), 1);
//! assert!(!likes.due(now + 499));
//! assert!(likes.due(now + 500));
//!
//! let mut written = Vec::new();
//! let report = likes.flush(|post, sum| {
//!     written.push((*post, *sum)); // e.g. Likes::upsert(db, &Likes { post, count: .. })
//!     Ok(())
//! });
//! assert!(report.is_complete());
//! assert_eq!(written, [(7, 1_000)]);
//! assert_eq!(likes.pending(), 0);
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::error::{Error, Result};

type Merge<V> = Box<dyn Fn(&mut V, V)>;

struct State<K, V> {
    pending: BTreeMap<K, V>,
    /// When the pending values are next due; `None` when nothing is pending.
    due_at_ms: Option<i64>,
    /// The latest time the debouncer was told, to reschedule values whose write failed.
    clock_ms: i64,
}

/// Pending values per key, merged as updates arrive and written on an interval or on demand.
///
/// Single-threaded (use it from `&self` in a Durable Object). `K: Ord` so that keys are flushed
/// in a stable order.
pub struct Debouncer<K, V> {
    interval_ms: u64,
    merge: Merge<V>,
    state: RefCell<State<K, V>>,
}

/// What a [`Debouncer::flush`] did.
#[derive(Debug)]
pub struct FlushReport<K> {
    /// Keys whose value was written (and is no longer pending).
    pub written: Vec<K>,
    /// Keys whose write failed, with the error; their values are still pending.
    pub failed: Vec<(K, Error)>,
}

impl<K> FlushReport<K> {
    /// Whether every value was written.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl<K: Ord + Clone, V> Debouncer<K, V> {
    /// The last value for a key wins (positions, statuses, anything that is a state).
    pub fn new(interval_ms: u64) -> Debouncer<K, V> {
        Debouncer::with_merge(interval_ms, |pending, newer| *pending = newer)
    }

    /// `merge(pending, newer)` folds a newer update into the pending value (increments,
    /// set unions, maxima). Applied in arrival order.
    pub fn with_merge(interval_ms: u64, merge: impl Fn(&mut V, V) + 'static) -> Debouncer<K, V> {
        Debouncer {
            interval_ms,
            merge: Box::new(merge),
            state: RefCell::new(State {
                pending: BTreeMap::new(),
                due_at_ms: None,
                clock_ms: i64::MIN,
            }),
        }
    }

    /// How long an update waits before it is due to be written.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Record an update of `key` at `now_ms`, merged onto its pending value if any.
    ///
    /// The first update after a flush makes the values due `interval_ms` later; further updates
    /// do not push that back, so a steady stream is still written once per interval.
    pub fn update(&self, key: K, value: V, now_ms: i64) {
        let mut state = self.state.borrow_mut();
        state.clock_ms = state.clock_ms.max(now_ms);
        match state.pending.get_mut(&key) {
            Some(pending) => (self.merge)(pending, value),
            None => {
                state.pending.insert(key, value);
            }
        }
        if state.due_at_ms.is_none() {
            state.due_at_ms = Some(now_ms.saturating_add(self.interval()));
        }
    }

    /// Whether pending values are due to be written at `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        let mut state = self.state.borrow_mut();
        state.clock_ms = state.clock_ms.max(now_ms);
        state.due_at_ms.is_some_and(|at| now_ms >= at)
    }

    /// When pending values are next due (ms since the epoch), to set an alarm or timer; `None`
    /// when nothing is pending.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.state.borrow().due_at_ms
    }

    /// How many keys have a value not yet written.
    pub fn pending(&self) -> usize {
        self.state.borrow().pending.len()
    }

    /// Whether `key` has a value not yet written.
    pub fn is_pending(&self, key: &K) -> bool {
        self.state.borrow().pending.contains_key(key)
    }

    /// The value pending for `key`, if any.
    pub fn pending_value(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.state.borrow().pending.get(key).cloned()
    }

    /// Write every pending value now with `write(key, value)`, in key order.
    ///
    /// A key whose write returns `Ok` is no longer pending. A key whose write fails keeps its
    /// value (later updates merge onto it) and is due again one interval after the latest time
    /// the debouncer was given. `write` may itself call [`update`](Debouncer::update): such
    /// updates stay pending for the next flush.
    pub fn flush(&self, mut write: impl FnMut(&K, &V) -> Result<()>) -> FlushReport<K> {
        let taken = std::mem::take(&mut self.state.borrow_mut().pending);
        let mut flushing = Flushing {
            debouncer: self,
            remaining: taken,
            failed: Vec::new(),
        };
        let mut report = FlushReport {
            written: Vec::new(),
            failed: Vec::new(),
        };
        while let Some((key, value)) = flushing.remaining.first_key_value() {
            // The entry stays in `remaining` while it is written, so that a panic in `write`
            // puts it back (see `Flushing::drop`).
            let result = write(key, value);
            let (key, value) = flushing.remaining.pop_first().expect("just read");
            match result {
                Ok(()) => report.written.push(key),
                Err(e) => {
                    report.failed.push((key.clone(), e));
                    flushing.failed.push((key, value));
                }
            }
        }
        drop(flushing);
        report
    }

    /// [`flush`](Debouncer::flush) if values are due at `now_ms`; `None` otherwise.
    pub fn flush_if_due(
        &self,
        now_ms: i64,
        write: impl FnMut(&K, &V) -> Result<()>,
    ) -> Option<FlushReport<K>> {
        self.due(now_ms).then(|| self.flush(write))
    }

    fn interval(&self) -> i64 {
        i64::try_from(self.interval_ms).unwrap_or(i64::MAX)
    }
}

/// The values being flushed. Dropping it (at the end of a flush, or on a panic in the write
/// callback) puts every value not written back into the pending set, merging updates that
/// arrived meanwhile onto them.
struct Flushing<'a, K: Ord + Clone, V> {
    debouncer: &'a Debouncer<K, V>,
    remaining: BTreeMap<K, V>,
    failed: Vec<(K, V)>,
}

impl<K: Ord + Clone, V> Drop for Flushing<'_, K, V> {
    fn drop(&mut self) {
        let d = self.debouncer;
        let mut state = d.state.borrow_mut();
        let kept = std::mem::take(&mut self.remaining)
            .into_iter()
            .chain(self.failed.drain(..));
        for (key, mut older) in kept {
            // The older value comes first; updates made during the flush merge onto it.
            if let Some(newer) = state.pending.remove(&key) {
                (d.merge)(&mut older, newer);
            }
            state.pending.insert(key, older);
        }
        // Values kept after a failure are retried one interval from the latest time known;
        // updates made during the flush are due no later than that.
        state.due_at_ms = if state.pending.is_empty() {
            None
        } else {
            Some(state.clock_ms.saturating_add(d.interval()))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn fail(msg: &str) -> Error {
        Error::Primary(msg.into())
    }

    #[test]
    fn last_value_wins_by_default() {
        let d: Debouncer<&str, i32> = Debouncer::new(100);
        d.update("a", 1, 0);
        d.update("a", 2, 1);
        d.update("b", 3, 2);
        assert_eq!(d.pending(), 2);
        assert_eq!(d.pending_value(&"a"), Some(2));
        let mut seen = Vec::new();
        let r = d.flush(|k, v| {
            seen.push((*k, *v));
            Ok(())
        });
        assert_eq!(seen, [("a", 2), ("b", 3)]);
        assert_eq!(r.written, ["a", "b"]);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.next_due_ms(), None);
    }

    #[test]
    fn interval_starts_at_first_update_and_is_not_pushed_back() {
        let d: Debouncer<u8, u8> = Debouncer::new(100);
        assert!(!d.due(1_000_000));
        assert_eq!(d.next_due_ms(), None);
        d.update(1, 1, 1_000);
        d.update(1, 2, 1_050);
        d.update(2, 2, 1_099);
        assert_eq!(d.next_due_ms(), Some(1_100));
        assert!(!d.due(1_099));
        assert!(d.due(1_100));
        assert!(d.flush_if_due(1_099, |_, _| Ok(())).is_none());
        let r = d.flush_if_due(1_100, |_, _| Ok(())).unwrap();
        assert_eq!(r.written.len(), 2);
        assert!(!d.due(5_000));
        d.update(1, 3, 5_000);
        assert_eq!(d.next_due_ms(), Some(5_100));
    }

    #[test]
    fn failed_write_keeps_value_and_later_updates_merge_onto_it() {
        let d: Debouncer<&str, i64> = Debouncer::with_merge(100, |a, b| *a += b);
        for _ in 0..10 {
            d.update("x", 1, 0);
            d.update("y", 1, 0);
        }
        let r = d.flush(|k, _| {
            if *k == "x" {
                Err(fail("disk full"))
            } else {
                Ok(())
            }
        });
        assert_eq!(r.written, ["y"]);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0, "x");
        assert!(!r.is_complete());
        assert_eq!(d.pending_value(&"x"), Some(10));
        // Due again one interval after the latest time seen.
        assert_eq!(d.next_due_ms(), Some(100));
        d.update("x", 5, 50);
        assert_eq!(d.pending_value(&"x"), Some(15));
        let mut got = Vec::new();
        assert!(d
            .flush(|k, v| {
                got.push((*k, *v));
                Ok(())
            })
            .is_complete());
        assert_eq!(got, [("x", 15)]);
    }

    #[test]
    fn updates_made_by_the_write_callback_stay_pending() {
        let d: Debouncer<u8, i64> = Debouncer::with_merge(10, |a, b| *a += b);
        d.update(1, 1, 0);
        d.update(2, 1, 0);
        let r = d.flush(|k, _| {
            d.update(*k, 100, 5);
            if *k == 2 {
                Err(fail("no"))
            } else {
                Ok(())
            }
        });
        assert_eq!(r.written, [1]);
        // Key 1 was written; its update during the flush is pending on its own.
        assert_eq!(d.pending_value(&1), Some(100));
        // Key 2 failed: its old value first, then the update made during the flush.
        assert_eq!(d.pending_value(&2), Some(101));
        assert_eq!(d.next_due_ms(), Some(15));
    }

    #[test]
    fn a_panicking_write_loses_nothing() {
        let d: Debouncer<u8, u8> = Debouncer::new(10);
        for k in 0..5 {
            d.update(k, k, 0);
        }
        let calls = Cell::new(0);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            d.flush(|k, _| {
                calls.set(calls.get() + 1);
                assert!(*k != 2, "write blew up");
                Ok(())
            })
        }));
        assert!(out.is_err());
        assert_eq!(calls.get(), 3);
        // 0 and 1 were written; 2 (being written) and the rest are still pending.
        assert_eq!(d.pending(), 3);
        assert_eq!(d.pending_value(&2), Some(2));
        assert!(d.next_due_ms().is_some());
    }
}
