//! Retries as Durable Object alarms.

use std::cell::Cell;

use wasm_bindgen_futures::JsFuture;

use super::bindings::{storage_of, DoStorage};
use crate::clock::{Alarm, Clock};

/// The engine's [`Scheduler`](crate::Scheduler) in a Durable Object: a retry is the DO's alarm, whose `alarm()`
/// handler calls the engine. A DO has one alarm; the soonest retry asked for wins.
///
/// ```ignore
/// let scheduler = nanotype::worker::AlarmScheduler::new(&state);
/// scheduler.load().await; // learn an alarm set by an earlier instance
/// // in `async fn alarm(&self)`: scheduler.fired(); engine.run_pending().await
/// ```
pub struct AlarmScheduler {
    storage: DoStorage,
    /// Epoch ms of the alarm this object set (or found set), until it fires.
    pending: Cell<Option<f64>>,
}

impl AlarmScheduler {
    /// The scheduler of the Durable Object whose state this is.
    pub fn new(state: &worker::State) -> AlarmScheduler {
        AlarmScheduler {
            storage: storage_of(state),
            pending: Cell::new(None),
        }
    }

    /// Reads the alarm already set in storage (e.g. by the instance before an eviction), so a
    /// later retry does not push a sooner one back.
    pub async fn load(&self) {
        let Ok(promise) = self.storage.get_alarm() else {
            return;
        };
        if let Ok(at) = JsFuture::from(promise).await {
            self.pending.set(at.as_f64());
        }
    }

    /// Call at the start of the DO's `alarm()`: the alarm that was set has fired.
    pub fn fired(&self) {
        self.pending.set(None);
    }

    /// Epoch ms of the alarm set, if any.
    pub fn pending(&self) -> Option<f64> {
        self.pending.get()
    }
}

impl Alarm for AlarmScheduler {
    /// A timer of 0 ms: the requests queued at the Durable Object run before the engine's next
    /// page.
    fn yield_now(&self) -> crate::clock::Yield {
        Box::pin(worker::Delay::from(std::time::Duration::ZERO))
    }

    fn schedule(&self, delay_ms: u64) {
        let now = js_sys::Date::now();
        let at = now + delay_ms as f64;
        // An alarm still ahead and no later than this one covers it; one in the past has fired.
        if self.pending.get().is_some_and(|p| p > now && p <= at) {
            return;
        }
        // Storage writes are ordered and confirmed before the DO's next output, so the promise
        // need not be awaited; a failure surfaces as an unhandled rejection in the logs.
        match self.storage.set_alarm(at) {
            Ok(_) => self.pending.set(Some(at)),
            Err(e) => {
                worker::console_error!("nanotype: setAlarm failed: {}", super::js_error_text(&e));
            }
        }
    }
}

impl Clock for AlarmScheduler {
    fn now_ms(&self) -> i64 {
        js_sys::Date::now() as i64
    }
}
