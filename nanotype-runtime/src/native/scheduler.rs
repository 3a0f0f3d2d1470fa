use std::cell::Cell;

use crate::replica::Scheduler;

/// A scheduler that remembers the soonest retry asked for; the host (a test, a native app's
/// loop) takes it and calls the engine's `retry` when it is due.
#[derive(Default)]
pub struct ManualScheduler {
    next: Cell<Option<u64>>,
}

impl ManualScheduler {
    pub fn new() -> ManualScheduler {
        ManualScheduler::default()
    }

    /// The pending retry's delay in ms, if any, clearing it.
    pub fn take(&self) -> Option<u64> {
        self.next.take()
    }

    /// The pending retry's delay in ms, if any.
    pub fn pending(&self) -> Option<u64> {
        self.next.get()
    }
}

impl Scheduler for ManualScheduler {
    fn schedule(&self, delay_ms: u64) {
        let soonest = match self.next.get() {
            Some(d) => d.min(delay_ms),
            None => delay_ms,
        };
        self.next.set(Some(soonest));
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
