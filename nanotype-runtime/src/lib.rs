//! nanotype: annotated Rust structs as a replicated database on Cloudflare.
//!
//! A `#[nanotype::table]` struct gets DDL for the room's SQLite (a Durable Object, the source of
//! truth) and for the shared D1 replica (`room_id` in every key and index), plus typed functions:
//! writes that record each change in an outbox in the same transaction, and room-scoped reads
//! that go to the replica.
//!
//! ```
//! #[nanotype::table(name = "tasks")]
//! #[derive(Debug, Clone, PartialEq)]
//! pub struct Task {
//!     #[nanotype(primary_key)]
//!     pub id: i64,
//!     #[nanotype(index)]
//!     pub status: String,
//!     pub title: String,
//! }
//! assert!(Task::REPLICA_DDL.contains("PRIMARY KEY (\"room_id\", \"id\")"));
//! ```

#![deny(missing_docs)]

// What an app uses: the prelude, the app API (`api`), the extras (`actor`), the feed's settings
// and protocol (`feed`), errors, validation, the hosts (`host`, `native`, `worker`).
pub mod actor;
pub mod api;
pub mod error;
pub mod feed;
pub mod host;
pub mod prelude;
pub mod validate;

#[cfg(feature = "native")]
pub use platform::native;
#[cfg(feature = "worker")]
pub use platform::worker;

// The folders follow the architecture: `model` (a table's runtime side), `engine` (the room's
// database, capture, replication), `host` (a room's life and the gateway over a platform),
// `platform` (Cloudflare, native), `api` (the app's side).
mod declare;
#[doc(hidden)]
pub mod engine;
#[cfg(doctest)]
mod guide;
#[doc(hidden)]
pub mod model;
mod platform;

// The engine's and the model's modules by their short names: public for the macros' generated
// code, this crate's own tests and the bench, not part of the API an app is written against
// (hidden from the docs; what an app needs of them is re-exported below).
#[doc(hidden)]
pub use engine::{
    across, billing, capture, clock, meta, migrate, outbox, primary, read, replica, shard, sync,
    timers, write,
};
#[doc(hidden)]
pub use model::{key, registry, table, value};

pub use across::{Across, AcrossPage};
pub use clock::{Alarm, Clock, Scheduler, Yield};
pub use error::{Error, Result};
#[doc(hidden)]
pub use nanotype_macros::migrations;
pub use nanotype_macros::table;
#[doc(hidden)]
pub use nanotype_schema as schema;
pub use primary::Database;
pub use primary::Primary;
pub use read::{Consistency, Order, Page, RoomReads};
pub use registry::Schema;
#[doc(hidden)]
pub use registry::TableEntry;
pub use replica::{Replica, SessionRows, SessionStart, Statement};
/// The JSON the API speaks (bodies of [`api::Reply`], claims of [`api::Caller`]).
pub use serde_json;
pub use serde_json::json;
pub use shard::Shards;
pub use sync::SyncConfig;
#[doc(hidden)]
pub use table::Table;
pub use validate::{Validate, WriteCtx};
pub use value::{Row, Value};

/// What generated code refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::across::{self, Across, AcrossPage};
    pub use crate::api::ApiError;
    pub use crate::error::{Error, Result};
    pub use crate::key;
    pub use crate::primary::Primary;
    pub use crate::read::{self, Page, RoomReads};
    pub use crate::replica::Replica;
    pub use crate::table::{Table, TableSql};
    pub use crate::validate::{Validate, WriteCtx};
    pub use crate::value::{json, FromValue, Row, ToValue, Value};
    pub use crate::write;
    pub use nanotype_schema as schema;
    pub use std::borrow::Cow;
    pub use std::option::Option;
    pub use std::sync::OnceLock;
    pub use std::vec::Vec;
}
