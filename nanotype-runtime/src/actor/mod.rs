//! What a room's actor (a Durable Object) keeps beside its tables: short-lived in-memory state,
//! coalesced high-frequency writes, and read-only SQL for analytics.
//!
//! - [`memory_store`]: keys with a TTL for presence and cursors, never persisted.
//! - [`debounce`]: per-key coalescing of updates (counters, positions) written to the primary
//!   through the generated typed functions on an interval or on demand; a failed write keeps
//!   its value.
//! - [`analytics`]: exactly one read-only statement with bound parameters and a row cap,
//!   enforced by SQLite rather than by reading the SQL text.
//!
//! None of these need a clock of their own: every time-dependent call takes `now_ms`, which the
//! engine's [`Clock::now_ms`](crate::Clock::now_ms) supplies (`std::time` does not exist
//! in a Worker).

pub mod analytics;
pub mod debounce;
pub mod memory_store;
pub mod sql_guard;

pub use analytics::{ReadOnlyRows, ReadOnlySql};
pub use debounce::{Debouncer, FlushReport};
pub use memory_store::{MemoryLimits, MemoryStore};
