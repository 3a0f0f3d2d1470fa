//! The runtime's life in plain Rust, over small traits for what a platform gives: a room's
//! ([`RoomHost`] over a [`RoomPlatform`]) and the gateway's ([`gateway::serve`] over a
//! [`GatewayPlatform`]). `nanotype::worker` adapts Cloudflare's types to them; the native test
//! app (`nanotype::native::TestApp`) runs a whole app on SQLite files with a clock a test moves.

pub mod gateway;
pub mod http;
pub mod room;

pub use gateway::{GatewayPlatform, Outcome};
pub use http::{HttpRequest, HttpResponse};
pub use room::{FeedOpen, FeedSocket, HostEngine, RoomHost, RoomPlatform};

/// Work a platform runs after the response (a Durable Object's `waitUntil`).
pub type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
