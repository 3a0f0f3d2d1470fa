use std::cell::Cell;

use crate::clock::{Alarm, Clock};

/// A scheduler for hosts that run the engine themselves (tests, a native app's loop): it
/// remembers the soonest retry asked for, and the host takes it and calls the engine's `sync`
/// when it is due. Its clock is the system's, or one the host sets ([`ManualScheduler::set_now`])
/// to test timing without waiting.
#[derive(Default)]
pub struct ManualScheduler {
    next: Cell<Option<u64>>,
    due_at: Cell<Option<i64>>,
    now: Cell<Option<i64>>,
}

impl ManualScheduler {
    /// A scheduler on the system clock with no alarm set.
    pub fn new() -> ManualScheduler {
        ManualScheduler::default()
    }

    /// A scheduler whose clock reads `now_ms` until set or advanced.
    pub fn at(now_ms: i64) -> ManualScheduler {
        let s = ManualScheduler::default();
        s.now.set(Some(now_ms));
        s
    }

    /// Set the clock (ms since the epoch).
    pub fn set_now(&self, now_ms: i64) {
        self.now.set(Some(now_ms));
    }

    /// Move the clock forward.
    pub fn advance(&self, ms: i64) {
        self.now.set(Some(self.now_ms() + ms));
    }

    /// The pending retry's delay in ms (the soonest asked for), if any, clearing it.
    pub fn take(&self) -> Option<u64> {
        self.due_at.set(None);
        self.next.take()
    }

    /// The pending retry's delay in ms, if any.
    pub fn pending(&self) -> Option<u64> {
        self.next.get()
    }

    /// When the pending alarm is due (ms since the epoch), if one is.
    pub fn due_at(&self) -> Option<i64> {
        self.due_at.get()
    }

    /// Whether an alarm is pending and due by the clock; a due alarm is cleared (it "fires").
    pub fn fire_if_due(&self) -> bool {
        match self.due_at.get() {
            Some(at) if at <= self.now_ms() => {
                self.take();
                true
            }
            _ => false,
        }
    }
}

impl Alarm for ManualScheduler {
    fn schedule(&self, delay_ms: u64) {
        let soonest = match self.next.get() {
            Some(d) => d.min(delay_ms),
            None => delay_ms,
        };
        self.next.set(Some(soonest));
        let at = self.now_ms().saturating_add(delay_ms as i64);
        if self.due_at.get().is_none_or(|due| at < due) {
            self.due_at.set(Some(at));
        }
    }
}

impl Clock for ManualScheduler {
    fn now_ms(&self) -> i64 {
        if let Some(now) = self.now.get() {
            return now;
        }
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}
