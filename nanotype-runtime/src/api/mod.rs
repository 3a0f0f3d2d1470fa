//! The app's API, in plain Rust (no Worker types): the hooks a room runs ([`RoomHooks`]: custom
//! routes on a [`Router`], timers, read-only SQL, the feed), what a handler gets ([`RoomCtx`],
//! [`AppRequest`], [`Caller`], [`Environment`]) and answers ([`Reply`], [`ApiError`] with its
//! `{"error": {"code", "message"}}` format), and who may do what ([`Policy`]: [`RoomTokens`],
//! [`Jwt`], or the app's own).
//!
//! * [`app`]: the room, the request and the router of custom routes;
//! * [`error`]: the error format and the list of codes;
//! * [`policy`]: the [`Policy`] trait, its decision and [`RoomTokens`];
//! * [`jwt`]: the [`Jwt`] policy;
//! * [`openapi`]: the API's OpenAPI 3.1 description, made from the schema;
//! * [`room`]: the hooks, and what validation sees of a write;
//! * [`rooms`]: the paged list of the rooms a caller may see (`GET /_rooms`).
//!
//! Routing, bodies and read parameters are the runtime's own (hidden modules the hosts use).

pub mod app;
#[doc(hidden)]
pub mod assets;
#[doc(hidden)]
pub mod body;
pub mod error;
#[doc(hidden)]
pub mod idempotency;
pub mod jwt;
pub mod openapi;
#[doc(hidden)]
pub mod params;
pub mod policy;
pub mod room;
pub mod rooms;
#[doc(hidden)]
pub mod route;
pub mod token;

pub use app::{AppRequest, Caller, Environment, RoomCtx, Router};
pub use error::ApiError;
pub use jwt::Jwt;
pub use policy::{Access, Decision, Policy, RequestParts, RoomTokens, Vars};
#[doc(hidden)]
pub use room::RoomRequest;
pub use room::{Reply, RoomHooks, RouteKind, Write, WriteOp};
pub use rooms::RoomScope;
pub use route::Operation;
#[doc(hidden)]
pub use route::{Route, TableOp};
pub use token::{ReadToken, TOKEN_HEADER};

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
