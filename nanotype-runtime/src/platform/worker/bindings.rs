//! What workers-rs 0.8.7 does not bind: `ctx.storage.transactionSync`, and `setAlarm`/`getAlarm`
//! without a promise wrapper.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage` of a Durable Object.
    #[wasm_bindgen(extends = js_sys::Object)]
    #[derive(Clone, Debug)]
    pub type DoStorage;

    /// Runs `body` in one SQLite transaction: committed when it returns, rolled back when it
    /// throws (a Rust `Err` is thrown). Nested calls become savepoints.
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    pub fn transaction_sync(
        this: &DoStorage,
        body: &mut dyn FnMut() -> Result<JsValue, JsValue>,
    ) -> Result<JsValue, JsValue>;

    /// `ctx.storage.sql`.
    #[wasm_bindgen(method, getter)]
    pub fn sql(this: &DoStorage) -> worker::worker_sys::SqlStorage;

    /// Sets the alarm to `epoch_ms` (a Date or number of milliseconds since the epoch).
    #[wasm_bindgen(method, catch, js_name = setAlarm)]
    pub fn set_alarm(this: &DoStorage, epoch_ms: f64) -> Result<js_sys::Promise, JsValue>;

    /// The alarm's time in epoch milliseconds, or null.
    #[wasm_bindgen(method, catch, js_name = getAlarm)]
    pub fn get_alarm(this: &DoStorage) -> Result<js_sys::Promise, JsValue>;
}

/// The raw storage object of a Durable Object's state.
pub fn storage_of(state: &worker::State) -> DoStorage {
    // `ctx.storage` is a plain getter that only fails on a state that is not a DO's.
    match state.as_raw().storage() {
        Ok(s) => s.unchecked_into(),
        Err(e) => wasm_bindgen::throw_val(e),
    }
}
