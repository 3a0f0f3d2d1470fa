//! The platforms a room and the gateway run on: Cloudflare ([`worker`], wasm32) and the native
//! backend ([`native`], SQLite files, for tests, fault injection and benchmarks).

#[cfg(feature = "native")]
pub mod native;

#[cfg(feature = "worker")]
pub mod worker;
