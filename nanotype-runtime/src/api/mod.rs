//! The HTTP API the runtime serves for a [`crate::Schema`], in plain Rust (no Worker types):
//! routes, the error format, request bodies and read parameters, the authorization policy, and
//! what a room does with a request. The Durable Object and the Worker gateway
//! (`nanotype::worker`) are thin layers over it, and the native backend runs the same code.
//!
//! * [`route`]: which route a method and path are ([`route::route`]);
//! * [`error`]: `{"error": {"code", "message"}}` and the list of codes;
//! * [`body`]: a table's row from a JSON body, with the model's defaults;
//! * [`params`]: consistency, keyset pages and filters of a read;
//! * [`policy`]: who may do what ([`Policy`]);
//! * [`idempotency`]: retried writes applied once (`Idempotency-Key`);
//! * [`assets`]: the feed client and the dashboard page the Worker serves;
//! * [`room`]: a request served in the room ([`room::serve`]) and the app's [`RoomHooks`];
//! * [`rooms`]: the paged list of the rooms a caller may see (`GET /_rooms`).

pub mod app;
pub mod assets;
pub mod body;
pub mod error;
pub mod idempotency;
pub mod jwt;
pub mod params;
pub mod policy;
pub mod room;
pub mod rooms;
pub mod route;

pub use app::{AppRequest, Caller, Environment, RoomCtx, Router};
pub use error::ApiError;
pub use jwt::Jwt;
pub use policy::{Access, Decision, Policy, RequestParts, RoomTokens, Vars};
pub use room::{Reply, RoomHooks, RoomRequest, RouteKind, Write, WriteOp};
pub use route::{Operation, Route, TableOp};

/// Header carrying the room's seq after a write; send it back for read-your-writes.
pub const SEQ_HEADER: &str = "x-nanotype-seq";
/// Header saying why a replica read was answered by the room's Durable Object instead.
pub const FALLBACK_HEADER: &str = "x-nanotype-fallback";
/// Header the gateway sets when it forwards a request to the room's Durable Object.
pub const ROOM_HEADER: &str = "x-nanotype-room";
/// Who the caller is, as the gateway's policy decided ([`Caller`]): set by the gateway on what it
/// sends a room, never taken from a client.
pub const CALLER_HEADER: &str = "x-nanotype-caller";
/// Header saying where a read was answered: `replica` or `primary`.
pub const SOURCE_HEADER: &str = "x-nanotype-source";
