//! The schema model of nanotype.
//!
//! One model serves the `#[nanotype::table]` macro, the `gen-migrations` CLI and the runtime, so
//! that the DDL a struct produces is byte-identical wherever it is rendered. The phases follow
//! parse → model → check → emit:
//!
//! * `parse` (feature `syn`) turns an annotated struct into a [`Table`] and collects every error
//!   with the span of the offending tokens;
//! * [`model`] holds the plain data ([`Table`], [`Column`], [`Index`], [`ValueKind`]);
//! * [`check`] validates a model (identifiers, reserved names, keys, indexes, defaults);
//! * [`ddl`] renders the Durable Object's SQLite DDL and the D1 replica DDL.
//!
//! ```
//! use nanotype_schema::{ddl, Column, Table, ValueKind};
//! let table = Table::new("tasks", "Task", vec![
//!     Column::new("id", ValueKind::I64).primary_key(),
//!     Column::new("title", ValueKind::String),
//! ]);
//! assert!(ddl::primary_table(&table).starts_with("CREATE TABLE \"tasks\""));
//! assert!(ddl::replica_table(&table).contains("PRIMARY KEY (\"room_id\", \"id\")"));
//! ```

#![deny(missing_docs)]

pub mod check;
pub mod ddl;
pub mod ident;
pub mod migration;
pub mod model;
#[cfg(feature = "syn")]
pub mod parse;
pub mod sort;
pub mod symbol;
pub mod typescript;

pub use model::{Column, Index, Literal, OnDelete, Reference, SqlType, Table, ValueKind};

/// Prefix of every table and column the engine owns; user identifiers may not start with it.
pub const RESERVED_PREFIX: &str = "_nt_";
/// The column every replica table carries: the room (Durable Object name) a row belongs to.
pub const ROOM_COLUMN: &str = "room_id";
