//! Time and the alarm, two ideas: a [`Clock`] says what time it is, an [`Alarm`] asks the host to
//! run the room's sync (and its timers) later. A Durable Object is both through one object
//! (`Date.now()` and its storage alarm); the native backend's `ManualScheduler` is both with a
//! clock a test can set. The engine takes anything that is both: a [`Scheduler`].

/// What time it is. `std::time` is not available in a Worker, so the runtime asks this.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// Asks the host to run the room's sync (and due timers) after a delay: a Durable Object's
/// alarm. A host has one alarm: the soonest asked for wins.
pub trait Alarm {
    /// Run the sync no later than `delay_ms` from now.
    fn schedule(&self, delay_ms: u64);

    /// Let the host serve what is waiting (the room's requests) before the engine goes on: the
    /// engine awaits it between the pages of a resync or an audit, so a long copy never holds
    /// the room. The default returns at once (a host with nothing else to serve).
    fn yield_now(&self) -> Yield {
        Box::pin(std::future::ready(()))
    }
}

/// What [`Alarm::yield_now`] returns: a future the engine awaits.
pub type Yield = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A [`Clock`] and an [`Alarm`] together: what the engine is opened with.
pub trait Scheduler: Clock + Alarm {}

impl<T: Clock + Alarm + ?Sized> Scheduler for T {}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

impl<A: Alarm + ?Sized> Alarm for &A {
    fn schedule(&self, delay_ms: u64) {
        (**self).schedule(delay_ms);
    }
    fn yield_now(&self) -> Yield {
        (**self).yield_now()
    }
}

impl<C: Clock + ?Sized> Clock for std::rc::Rc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

impl<A: Alarm + ?Sized> Alarm for std::rc::Rc<A> {
    fn schedule(&self, delay_ms: u64) {
        (**self).schedule(delay_ms);
    }
    fn yield_now(&self) -> Yield {
        (**self).yield_now()
    }
}
