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

pub mod actor;
pub mod api;
pub mod billing;
pub mod capture;
pub mod clock;
mod declare;
pub mod error;
pub mod feed;
pub mod host;
pub mod key;
pub mod meta;
pub mod migrate;
pub mod outbox;
pub mod primary;
pub mod read;
pub mod registry;
pub mod replica;
pub mod sync;
pub mod table;
pub mod timers;
pub mod validate;
pub mod value;
pub mod write;

#[cfg(feature = "native")]
pub mod native;

#[cfg(feature = "worker")]
pub mod worker;

pub use clock::{Alarm, Clock, Scheduler};
pub use error::{Error, Result};
pub use nanotype_macros::{migrations, table};
pub use nanotype_schema as schema;
pub use primary::Database;
pub use primary::Primary;
pub use read::{Consistency, Order, Page, RoomReads};
pub use registry::{Schema, TableEntry};
pub use replica::{Replica, Statement};
/// The JSON the API speaks (bodies of [`api::Reply`], claims of [`api::Caller`]).
pub use serde_json;
pub use serde_json::json;
pub use table::Table;
pub use validate::{Validate, WriteCtx};
pub use value::{Row, Value};

/// What generated code refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::api::ApiError;
    pub use crate::error::{Error, Result};
    pub use crate::key;
    pub use crate::primary::Primary;
    pub use crate::read::{self, Page, RoomReads};
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
