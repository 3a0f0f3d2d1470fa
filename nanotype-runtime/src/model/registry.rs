//! The app's schema: its tables, declared once with [`crate::schema!`], and the Durable Object
//! migrations that create them.
//!
//! A [`Schema`] is what the engine, the room Durable Object and the gateway are opened from: the
//! engine replicates exactly its tables (a write to any other table is refused with
//! [`Error::UnregisteredTable`]), the room applies its migrations, and the gateway serves a route
//! per table. Each table is a [`TableEntry`]: its model plus the typed conversions of its struct
//! (JSON in, JSON out), reached by table name.
//!
//! ```
//! #[nanotype::table(name = "notes")]
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! pub struct Note {
//!     #[nanotype(primary_key)]
//!     pub id: i64,
//!     pub text: String,
//! }
//!
//! nanotype::schema!(pub App = [Note]);
//!
//! use nanotype::Schema;
//! assert_eq!(App::TABLES.len(), 1);
//! assert!(App::table("notes").is_some());
//! assert!(App::table("nope").is_none());
//! ```

use std::any::Any;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::migrate::Migration;
use crate::table::{Table, TableSql};
use crate::value::Row;
use nanotype_schema::Table as TableDef;

/// An app's schema: its tables and its Durable Object migrations. Implemented by
/// [`crate::schema!`]; not by hand.
pub trait Schema: 'static {
    /// The tables, in declaration order (a backfill copies them in this order).
    const TABLES: &'static [TableEntry];
    /// The Durable Object's migrations (`gen-migrations` writes them), embedded.
    const MIGRATIONS: &'static [Migration];

    /// The table named `name`, if the schema has it.
    fn table(name: &str) -> Option<&'static TableEntry> {
        Self::TABLES.iter().find(|t| t.def.name == name)
    }

    /// The models of every table, in declaration order.
    fn defs() -> Vec<&'static TableDef> {
        Self::TABLES.iter().map(|t| t.def).collect()
    }

    /// A short hash of every table's DDL and every migration's text: two builds that agree on it
    /// serve the same schema.
    fn fingerprint() -> String {
        fingerprint(Self::TABLES, Self::MIGRATIONS)
    }
}

/// SHA-256 over the tables' DDL and the migrations' names and texts, first 8 bytes in hex.
pub fn fingerprint(tables: &[TableEntry], migrations: &[Migration]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for t in tables {
        h.update(nanotype_schema::ddl::primary_ddl(t.def).as_bytes());
        h.update([0]);
    }
    for m in migrations {
        h.update(m.name.as_bytes());
        h.update([0]);
        h.update(m.sql.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One table of a [`Schema`]: the model and the struct's conversions, with the struct's type
/// erased so that tables can be reached by name.
pub struct TableEntry {
    /// The table's model.
    pub def: &'static TableDef,
    sql: fn() -> &'static TableSql,
    from_json: fn(serde_json::Value) -> Result<Box<dyn Any>>,
    to_row: fn(&dyn Any) -> Result<Row>,
    row_to_json: fn(Row) -> Result<serde_json::Value>,
    validate:
        fn(&mut dyn Any, &crate::WriteCtx<'_>) -> std::result::Result<(), crate::api::ApiError>,
}

impl std::fmt::Debug for TableEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableEntry")
            .field("table", &self.def.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TableEntry {
    /// Entries are equal when they name the same table.
    fn eq(&self, other: &TableEntry) -> bool {
        self.def.name == other.def.name
    }
}

impl TableEntry {
    /// The entry of table struct `T` (what [`crate::schema!`] lists).
    pub const fn of<T: Table + Serialize + DeserializeOwned + 'static>() -> TableEntry {
        TableEntry {
            def: T::DEF,
            sql: T::sql,
            from_json: from_json::<T>,
            validate: validate_any::<T>,
            to_row: to_row::<T>,
            row_to_json: row_to_json::<T>,
        }
    }

    /// The table's SQL name.
    pub fn name(&self) -> &'static str {
        &self.def.name
    }

    /// The statements rendered from the model.
    pub fn sql(&self) -> &'static TableSql {
        (self.sql)()
    }

    /// The table's struct from a complete JSON object ([`Error::InvalidRow`] when it does not
    /// fit).
    pub fn from_json(&'static self, json: serde_json::Value) -> Result<TypedRow> {
        Ok(TypedRow {
            entry: self,
            value: (self.from_json)(json)?,
        })
    }

    /// A stored row (model column order) as the struct's JSON.
    pub fn row_to_json(&self, row: Row) -> Result<serde_json::Value> {
        (self.row_to_json)(row)
    }
}

/// A row of one table as its Rust struct, type-erased; [`TypedRow::get_mut`] gives it back typed.
pub struct TypedRow {
    entry: &'static TableEntry,
    value: Box<dyn Any>,
}

impl TypedRow {
    /// The table the row belongs to.
    pub fn table(&self) -> &'static TableEntry {
        self.entry
    }

    /// The row as `T`, if it is a row of `T`'s table.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }

    /// The row as `T` to change, if it is a row of `T`'s table.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.value.downcast_mut()
    }

    /// The row through its table's validation ([`crate::Validate`]).
    pub fn validate(
        &mut self,
        write: &crate::WriteCtx<'_>,
    ) -> std::result::Result<(), crate::api::ApiError> {
        (self.entry.validate)(self.value.as_mut(), write)
    }

    /// Column values in model order.
    pub fn to_row(&self) -> Result<Row> {
        (self.entry.to_row)(self.value.as_ref())
    }
}

fn validate_any<T: Table + 'static>(
    row: &mut dyn Any,
    write: &crate::WriteCtx<'_>,
) -> std::result::Result<(), crate::api::ApiError> {
    match row.downcast_mut::<T>() {
        Some(row) => row.validate(write),
        None => Err(crate::api::ApiError::internal("a row of another table")),
    }
}

fn from_json<T: Table + DeserializeOwned + 'static>(
    json: serde_json::Value,
) -> Result<Box<dyn Any>> {
    let t: T = serde_json::from_value(json)
        .map_err(|e| Error::InvalidRow(format!("invalid `{}` row: {e}", T::DEF.name)))?;
    Ok(Box::new(t))
}

fn to_row<T: Table + 'static>(value: &dyn Any) -> Result<Row> {
    match value.downcast_ref::<T>() {
        Some(t) => t.to_row(),
        None => Err(Error::InvalidRow(format!("not a row of `{}`", T::DEF.name))),
    }
}

fn row_to_json<T: Table + Serialize>(row: Row) -> Result<serde_json::Value> {
    let t = T::from_row(row)?;
    serde_json::to_value(&t).map_err(|e| Error::Json {
        column: T::DEF.name.to_string(),
        message: e.to_string(),
    })
}
