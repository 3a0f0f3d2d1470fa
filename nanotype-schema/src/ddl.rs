//! DDL rendered from the model: the room's SQLite (primary) and the shared D1 replica.
//!
//! The primary has the user's columns as declared. The replica has the same columns plus
//! `room_id TEXT NOT NULL`, a primary key of `(room_id, key)`, and every index led by `room_id`,
//! so one D1 database holds every room and a room-scoped read is always an index range.
//!
//! The text is deterministic (one column a line, four-space indent): the macro and the CLI render
//! byte-identical DDL for the same struct.

use crate::ident::quote;
use crate::model::{Column, Index, Table, ValueKind};
use crate::ROOM_COLUMN;

/// Name of the replica's per-room replication state table.
pub const ROOMS_TABLE: &str = "_nt_rooms";

/// The replica's replication metadata, one row per room: part of the first D1 migration.
///
/// * `watermark`: every change of the room with `seq <= watermark` is applied;
/// * `read_seq`: the primary's seq when the newest applied batch was read; a batch read earlier
///   is stale and changes nothing (duplicate or late deliveries never regress a row);
/// * `primary_id`: the identity of the primary that wrote the room, so a replaced or restored
///   primary is detected and resyncs;
/// * `updated_at`: when a batch was last applied (ms since the epoch).
pub const REPLICA_META: &str = "CREATE TABLE \"_nt_rooms\" (
    \"room_id\" TEXT PRIMARY KEY NOT NULL,
    \"watermark\" INTEGER NOT NULL DEFAULT 0,
    \"read_seq\" INTEGER NOT NULL DEFAULT 0,
    \"primary_id\" TEXT NOT NULL DEFAULT '',
    \"updated_at\" INTEGER NOT NULL DEFAULT 0
);";

/// One column definition in the primary, for a table with a one-column key (a column of a
/// composite key is declared by [`primary_column_in`]).
pub fn primary_column(col: &Column) -> String {
    column_with_key(col, col.primary_key)
}

fn column_with_key(col: &Column, inline_key: bool) -> String {
    let mut s = format!("{} {}", quote(&col.name), col.sql_type().as_sql());
    if inline_key {
        if col.kind == ValueKind::I64 {
            // The rowid alias: SQLite assigns the key when the insert leaves it out.
            s.push_str(" PRIMARY KEY");
        } else {
            s.push_str(" PRIMARY KEY NOT NULL");
        }
    } else {
        push_constraints(&mut s, col);
    }
    if let Some(r) = &col.references {
        s.push_str(&format!(
            " REFERENCES {} ({}) ON DELETE {}",
            quote(&r.table),
            quote(&r.column),
            r.on_delete.sql()
        ));
    }
    s
}

/// [`primary_column`] in table `table`: a reference to the table itself is checked when the
/// transaction commits, so that a rebuild can copy its rows in any order; other references are
/// checked at once, so that a referencing row never exists before the row it references (and
/// its change never reaches the replica first).
///
/// The columns of a composite key are declared NOT NULL here, and the key by the table's
/// `PRIMARY KEY (…)` constraint.
pub fn primary_column_in(table: &Table, col: &Column) -> String {
    let mut s = column_with_key(col, col.primary_key && !table.has_composite_key());
    if col
        .references
        .as_ref()
        .is_some_and(|r| r.table == table.name)
    {
        s.push_str(" DEFERRABLE INITIALLY DEFERRED");
    }
    s
}

/// The replica's foreign key of a referencing column: `(room_id, column)` to the referenced
/// table's `(room_id, key)`, so a reference never leaves its room. It always cascades, and is
/// checked when the batch commits: the room's own foreign key already decided what a delete
/// does, and every row it changed or deleted reaches the replica as a change of its own (capture
/// triggers); the replica's cascade only makes a referenced row's delete take its referencing
/// rows with it when a batch ends between the two.
///
/// A reference of a table to itself is not declared in the replica: a backfill copies a table in
/// key order, pages apart, and a row may reference one of a later page.
pub fn replica_foreign_key(table: &str, col: &Column) -> Option<String> {
    let r = col.references.as_ref().filter(|r| r.table != table)?;
    Some(format!(
        "FOREIGN KEY ({room}, {}) REFERENCES {} ({room}, {}) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
        quote(&col.name),
        quote(&r.table),
        quote(&r.column),
        room = quote(ROOM_COLUMN),
    ))
}

/// One column definition in the replica (keys are declared by the table's `PRIMARY KEY`).
pub fn replica_column(col: &Column) -> String {
    let mut s = format!("{} {}", quote(&col.name), col.sql_type().as_sql());
    push_constraints(&mut s, col);
    s
}

fn push_constraints(s: &mut String, col: &Column) {
    if !col.nullable || col.primary_key {
        s.push_str(" NOT NULL");
    }
    if let Some(default) = &col.default {
        s.push_str(" DEFAULT ");
        s.push_str(&default.to_sql());
    }
}

/// `CREATE TABLE` for the room's SQLite.
pub fn primary_table(table: &Table) -> String {
    primary_table_named(table, &table.name)
}

/// `CREATE TABLE` for the room's SQLite under another name (table rebuilds).
pub fn primary_table_named(table: &Table, name: &str) -> String {
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .map(|c| primary_column_in(table, c))
        .collect();
    if table.has_composite_key() {
        lines.push(format!("PRIMARY KEY ({})", key_list(table)));
    }
    lines.extend(table.checks.iter().map(|c| format!("CHECK ({c})")));
    create_table(name, &lines)
}

/// `CREATE TABLE` for the replica.
pub fn replica_table(table: &Table) -> String {
    replica_table_named(table, &table.name)
}

/// `CREATE TABLE` for the replica under another name (table rebuilds).
pub fn replica_table_named(table: &Table, name: &str) -> String {
    let mut lines = vec![format!("{} TEXT NOT NULL", quote(ROOM_COLUMN))];
    lines.extend(table.columns.iter().map(replica_column));
    lines.push(format!(
        "PRIMARY KEY ({}, {})",
        quote(ROOM_COLUMN),
        key_list(table)
    ));
    lines.extend(
        table
            .columns
            .iter()
            .filter_map(|c| replica_foreign_key(&table.name, c)),
    );
    lines.extend(table.checks.iter().map(|c| format!("CHECK ({c})")));
    create_table(name, &lines)
}

/// `"a", "b"`: the key's columns, quoted, in key order.
fn key_list(table: &Table) -> String {
    table
        .key_positions()
        .into_iter()
        .map(|i| quote(&table.columns[i].name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn create_table(name: &str, lines: &[String]) -> String {
    let mut s = format!("CREATE TABLE {} (\n", quote(name));
    for (i, line) in lines.iter().enumerate() {
        s.push_str("    ");
        s.push_str(line);
        if i + 1 < lines.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s.push_str(");");
    s
}

/// `CREATE INDEX` for the room's SQLite.
pub fn primary_index(table: &str, index: &Index) -> String {
    create_index(table, index, false)
}

/// `CREATE INDEX` for the replica: `room_id` leads.
pub fn replica_index(table: &str, index: &Index) -> String {
    create_index(table, index, true)
}

fn create_index(table: &str, index: &Index, with_room: bool) -> String {
    let mut cols: Vec<String> = Vec::new();
    if with_room {
        cols.push(quote(ROOM_COLUMN));
    }
    cols.extend(index.columns.iter().map(|c| quote(c)));
    format!(
        "CREATE {}INDEX {} ON {} ({}){};",
        if index.unique { "UNIQUE " } else { "" },
        quote(&index.name),
        quote(table),
        cols.join(", "),
        index
            .predicate
            .as_ref()
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default()
    )
}

/// The whole DDL of a table in the room's SQLite: table, then indexes, one statement a line
/// group, separated by blank lines.
pub fn primary_ddl(table: &Table) -> String {
    let mut parts = vec![primary_table(table)];
    parts.extend(table.indexes.iter().map(|i| primary_index(&table.name, i)));
    parts.join("\n")
}

/// The whole DDL of a table in the replica.
pub fn replica_ddl(table: &Table) -> String {
    let mut parts = vec![replica_table(table)];
    parts.extend(table.indexes.iter().map(|i| replica_index(&table.name, i)));
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Index, Literal};

    fn task() -> Table {
        Table::new(
            "tasks",
            "Task",
            vec![
                Column::new("id", ValueKind::I64).primary_key(),
                Column::new("status", ValueKind::String).default(Literal::Text("open".into())),
                Column::new("due", ValueKind::I64).nullable(),
            ],
        )
        .with_index(Index::new("tasks_status_idx", &["status"], false))
    }

    #[test]
    fn primary() {
        assert_eq!(
            primary_ddl(&task()),
            "CREATE TABLE \"tasks\" (\n    \"id\" INTEGER PRIMARY KEY,\n    \"status\" TEXT NOT NULL DEFAULT 'open',\n    \"due\" INTEGER\n);\nCREATE INDEX \"tasks_status_idx\" ON \"tasks\" (\"status\");"
        );
    }

    #[test]
    fn replica() {
        assert_eq!(
            replica_ddl(&task()),
            "CREATE TABLE \"tasks\" (\n    \"room_id\" TEXT NOT NULL,\n    \"id\" INTEGER NOT NULL,\n    \"status\" TEXT NOT NULL DEFAULT 'open',\n    \"due\" INTEGER,\n    PRIMARY KEY (\"room_id\", \"id\")\n);\nCREATE INDEX \"tasks_status_idx\" ON \"tasks\" (\"room_id\", \"status\");"
        );
    }
}
