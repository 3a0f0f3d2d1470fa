//! The [`Table`] trait that `#[nanotype::table]` implements, and the SQL derived from a model.

use crate::error::Result;
use crate::key::KeyColumns;
use crate::value::{Row, Value};
use nanotype_schema::ident::{quote, quote_string};
use nanotype_schema::model::MAX_SAFE_INTEGER;
use nanotype_schema::{Table as TableDef, ROOM_COLUMN};

/// A Rust struct that is a table. Implemented by `#[nanotype::table]`; not by hand.
pub trait Table: Sized {
    /// The model the macro built from the struct.
    const DEF: &'static TableDef;
    /// DDL for the room's SQLite (Durable Object): table and indexes.
    const PRIMARY_DDL: &'static str;
    /// DDL for the D1 replica: `room_id` added to the key and every index.
    const REPLICA_DDL: &'static str;

    /// Column values in the model's column order.
    fn to_row(&self) -> Result<Row>;
    /// The struct from column values in the model's column order.
    fn from_row(row: Row) -> Result<Self>;
    /// The primary key's value.
    fn key(&self) -> Result<Value>;
    /// Statements derived from [`Table::DEF`], built once.
    fn sql() -> &'static TableSql;

    /// Whether the table's writes go through [`crate::Validate`] (`#[nanotype::table(validate)]`).
    const VALIDATES: bool = false;

    /// The table's validation: its [`crate::Validate`] impl when declared with `validate`, else
    /// nothing.
    fn validate(
        &mut self,
        _write: &crate::WriteCtx<'_>,
    ) -> std::result::Result<(), crate::api::ApiError> {
        Ok(())
    }
}

/// Statements for one table, rendered once from its model. Identifiers are quoted; every value is
/// a bound parameter.
#[derive(Debug)]
pub struct TableSql {
    /// The table's SQL name, unquoted (what the outbox records).
    pub name: String,
    /// The table's name, quoted.
    pub table: String,
    /// `"a", "b", …` in model order.
    pub columns: String,
    /// Position of the key in the model's columns (of its first column for a composite key).
    pub key_position: usize,
    /// The key's columns, quoted, in key order (`"id"`, or `"a", "b"`): an `ORDER BY` by key.
    pub key_columns: String,
    /// The key's columns and the SQL over them.
    pub(crate) key: KeyColumns,
    /// Insert that lets SQLite assign an i64 key (or takes the given key), returning the row.
    pub insert: String,
    /// Insert or replace-in-place by key, returning the row.
    pub upsert: String,
    /// Update every non-key column by key, returning the row.
    pub update: String,
    /// Delete by key (its parts bound from `?1` on).
    pub delete: String,
    /// Select one row by key (primary; its parts bound from `?1` on).
    pub get: String,
    /// Select columns (primary), to which a WHERE / ORDER BY is appended.
    pub select: String,
    /// Select columns (replica), `room_id = ?1` already in the WHERE clause.
    pub replica_select: String,
    /// Whether the insert assigns the key (an `i64` key; never one used before in the room).
    pub assigns_key: bool,
    /// For keys the insert assigns: run after a delete with the deleted key, it records the key
    /// as the table's high-water mark when it was the largest, so it is never handed out again.
    pub retire_key: Option<String>,
    /// Per column that references another table: its position in model order, and what names
    /// the failure and finds the parent row (see [`ParentCheck`]).
    pub(crate) parents: Vec<ParentCheck>,
}

/// A column's reference, as a failed foreign key is explained: which column, which parent, and
/// the statement that finds the parent row (`?1` the column's value).
#[derive(Clone, Debug)]
pub(crate) struct ParentCheck {
    pub position: usize,
    pub column: String,
    pub parent: String,
    pub parent_column: String,
    pub exists: String,
}

impl TableSql {
    /// Render the statements of `def`.
    pub fn new(def: &TableDef) -> TableSql {
        let table = quote(&def.name);
        let key = KeyColumns::of(def);
        let key_position = key.positions[0];
        let key_column = key.names[0].clone();
        let names: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();
        let columns = names.join(", ");
        let assigns_key = def.key_is_rowid();

        let insert_cols: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| !(assigns_key && *i == key_position))
            .map(|(_, n)| n)
            .collect();
        let insert_list = insert_cols
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let name = quote_string(&def.name);
        let insert = if assigns_key {
            // Keys are never reused: the next key is above both the largest key stored and the
            // largest key ever deleted (`_nt_keys`, written only when the largest row goes), so
            // a retried or stale request can never reach a row created after its own was deleted.
            // Two index probes read, nothing more written.
            //
            // Keys stay within ±(2^53 − 1), what a JavaScript number (the Durable Object's and
            // D1's APIs) keeps exactly. Only a key chosen by a client near that end can use the
            // space above up; then the smallest positive key not in the table is taken, as SQLite
            // does at the end of its rowid range (the one case where a deleted key may come
            // back). `CASE` evaluates that search only then. A table holding every key gets
            // NULL, which the write path refuses ([`crate::Error::KeySpaceExhausted`]).
            let next = format!(
                "(SELECT MAX(COALESCE(MAX({key_column}), 0), \
                 COALESCE((SELECT \"hwm\" FROM \"_nt_keys\" WHERE \"tbl\" = {name}), 0)) + 1 FROM {table})"
            );
            let gap = format!(
                "(SELECT k FROM (SELECT 1 AS k WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {key_column} = 1) \
                 UNION ALL SELECT t.{key_column} + 1 FROM {table} AS t WHERE t.{key_column} > 0 \
                 AND t.{key_column} < {MAX_SAFE_INTEGER} AND NOT EXISTS \
                 (SELECT 1 FROM {table} AS u WHERE u.{key_column} = t.{key_column} + 1)) ORDER BY k LIMIT 1)"
            );
            format!(
                "INSERT INTO {table} ({key_column}{sep}{insert_list}) VALUES \
                 ((SELECT CASE WHEN n <= {MAX_SAFE_INTEGER} THEN n ELSE {gap} END FROM (SELECT {next} AS n)){sep}{}) \
                 RETURNING {columns}",
                placeholders(1, insert_cols.len()),
                sep = if insert_cols.is_empty() { "" } else { ", " },
            )
        } else {
            format!(
                "INSERT INTO {table} ({insert_list}) VALUES ({}) RETURNING {columns}",
                placeholders(1, insert_cols.len()),
            )
        };
        // After deleting key ?1: keep it as the high-water mark if no larger key remains.
        let retire_key = assigns_key.then(|| retire_key_sql(def, "?1"));
        let non_key: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| !key.positions.contains(i))
            .map(|(_, n)| n)
            .collect();
        let upsert_set = if non_key.is_empty() {
            format!("{key_column} = excluded.{key_column}")
        } else {
            non_key
                .iter()
                .map(|n| format!("{n} = excluded.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let upsert = format!(
            "INSERT INTO {table} ({columns}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {upsert_set} RETURNING {columns}",
            placeholders(1, names.len()),
            key.list(),
        );
        let update_set = if non_key.is_empty() {
            format!("{key_column} = {key_column}")
        } else {
            names
                .iter()
                .enumerate()
                .filter(|(i, _)| !key.positions.contains(i))
                .map(|(i, n)| format!("{n} = ?{}", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Update binds the columns in model order; each key column is the `?` of its position.
        let key_match = key
            .positions
            .iter()
            .zip(&key.names)
            .map(|(i, n)| format!("{n} = ?{}", i + 1))
            .collect::<Vec<_>>()
            .join(" AND ");
        let update =
            format!("UPDATE {table} SET {update_set} WHERE {key_match} RETURNING {columns}");
        TableSql {
            delete: format!("DELETE FROM {table} WHERE {} RETURNING 1", key.eq_sql(1)),
            get: format!("SELECT {columns} FROM {table} WHERE {}", key.eq_sql(1)),
            select: format!("SELECT {columns} FROM {table}"),
            replica_select: format!(
                "SELECT {columns} FROM {table} WHERE {} = ?1",
                quote(ROOM_COLUMN)
            ),
            name: def.name.to_string(),
            table,
            columns,
            key_position,
            key_columns: key.list(),
            key,
            insert,
            upsert,
            update,
            assigns_key,
            retire_key,
            parents: def
                .columns
                .iter()
                .enumerate()
                .filter_map(|(position, c)| {
                    let r = c.references.as_ref()?;
                    Some(ParentCheck {
                        position,
                        column: c.name.to_string(),
                        parent: r.table.to_string(),
                        parent_column: r.column.to_string(),
                        exists: format!(
                            "SELECT 1 FROM {} WHERE {} = ?1 LIMIT 1",
                            quote(&r.table),
                            quote(&r.column)
                        ),
                    })
                })
                .collect(),
        }
    }
}

impl TableSql {
    /// The key's column values (one for a one-column key), the parameters of [`TableSql::get`]
    /// and [`TableSql::delete`].
    pub fn key_parts(&self, key: &Value) -> Result<Vec<Value>> {
        self.key.parts(key)
    }

    /// The key of a row in model column order.
    pub fn row_key(&self, row: &[Value]) -> Value {
        self.key.of_row(row)
    }

    /// The key as JSON: its value, or the array of its parts for a composite key.
    pub fn key_json(&self, key: &Value) -> serde_json::Value {
        match self.key.parts(key) {
            Ok(parts) if self.key.is_composite() => {
                serde_json::Value::Array(parts.iter().map(Value::to_json).collect())
            }
            _ => key.to_json(),
        }
    }

    /// Whether the key is made of several columns.
    pub fn has_composite_key(&self) -> bool {
        self.key.is_composite()
    }
}

/// The statement that keeps `deleted` (an SQL expression: `?1`, or `OLD."id"` in a trigger) as
/// the high-water mark of `def`'s assigned keys when no larger key remains, so it is never handed
/// out again. Run by the write path after a delete on a bare database, and by the capture
/// trigger in a room ([`crate::capture`]).
pub fn retire_key_sql(def: &TableDef, deleted: &str) -> String {
    let table = quote(&def.name);
    let key = quote(&def.columns[def.key_positions().first().copied().unwrap_or(0)].name);
    format!(
        "INSERT INTO \"_nt_keys\" (\"tbl\", \"hwm\") SELECT {}, {deleted} \
         WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {key} > {deleted}) \
         ON CONFLICT (\"tbl\") DO UPDATE SET \"hwm\" = excluded.\"hwm\" \
         WHERE excluded.\"hwm\" > \"_nt_keys\".\"hwm\"",
        quote_string(&def.name)
    )
}

/// `?a, ?a+1, …` for `n` parameters.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
