//! Cloudflare mode: the room Durable Object ([`RoomObject`], declared with [`crate::room!`]) and
//! the Worker's gateway ([`serve`]) over the room's SQLite as the primary, a D1 database as the
//! replica, and the Durable Object's alarm as the scheduler.
//!
//! The same engine runs here as in `nanotype::native`; only the backends differ.
//!
//! ```ignore
//! use nanotype::worker::{AlarmScheduler, D1Replica, DoPrimary};
//! let primary = DoPrimary::new(&state);
//! let replica = D1Replica::new(env.d1("DB")?);
//! let scheduler = AlarmScheduler::new(&state);
//! ```
//!
//! Values cross into JavaScript as numbers, strings, `null` and `ArrayBuffer`s. Integers are
//! exact only within ±(2^53 − 1), which the runtime enforces on every write; a number that comes
//! back integral is read as [`Value::Integer`](crate::Value::Integer) (a REAL column holding `1.0`
//! too, which `f64` columns decode either way).

mod analytics;
mod bindings;
mod gateway;
mod http;
mod js_value;
mod primary;
mod replica;
mod room;
mod scheduler;

pub use gateway::serve;
pub use http::{bindings, EnvVars};
pub use primary::DoPrimary;
pub use replica::D1Replica;
pub use room::{DurableObject, RoomObject, D1_BINDING, ROOM_BINDING};
pub use scheduler::AlarmScheduler;

/// The runtime's error from a JavaScript exception: its message (and cause), else its text.
pub(crate) fn js_error_text(e: &wasm_bindgen::JsValue) -> String {
    use wasm_bindgen::JsCast;
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        let mut text: String = err.message().into();
        if let Some(cause) = err.cause().dyn_ref::<js_sys::Error>() {
            text.push_str(": ");
            text.push_str(&String::from(cause.message()));
        }
        return text;
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
