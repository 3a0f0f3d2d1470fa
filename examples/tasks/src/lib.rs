//! The tasks app on nanotype: a Worker that serves replica reads from D1 and routes everything
//! else to one `Room` Durable Object per room, whose SQLite is the source of truth.
//!
//! - [`schema`]: the tables (`#[nanotype::table]`), shared with `gen-migrations`.
//! - [`api`]: routes, bodies and 4xx errors (plain Rust, tested natively).
//! - [`bench`]: the baselines nanotype-bench compares writes against (routes off unless the
//!   `NANOTYPE_BENCH_ROUTES` var is `"1"`).
//! - `gateway` (wasm32): the Worker's `fetch`.
//! - `room` (wasm32): the `Room` Durable Object: writes, strong reads, sync status, presence,
//!   debounced counters, read-only SQL, and the alarm that drives replication retries.

pub mod api;
pub mod bench;
pub mod schema;

#[cfg(target_arch = "wasm32")]
mod gateway;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod room;
