//! The current schema, learned by replaying the migration files into an in-memory SQLite and
//! reading the result back with `PRAGMA table_info`, `index_list` and `index_info`.
//!
//! Replaying rather than keeping a snapshot of the schema beside the files: the files are what
//! D1 and the Durable Objects actually run, so what they build is the truth. A hand-edited or
//! hand-written migration (a backfill, an extra index, a fix) is read for what it does, with no
//! snapshot to forget to update, and nothing else is committed that could disagree with them.

use nanotype_schema::ddl::{REPLICA_META, ROOMS_TABLE};
use nanotype_schema::migration::shape::{self, ColumnShape, IndexShape, TableShape};
use nanotype_schema::{Table, RESERVED_PREFIX};
use rusqlite::Connection;

use crate::layout::{self, Layout, MigrationFile};

/// What the migrations build today.
#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    /// The tables, read from the Durable Object's migrations (their key types are exact).
    pub tables: Vec<Table>,
    pub primary_files: Vec<MigrationFile>,
    pub replica_files: Vec<MigrationFile>,
    /// Whether the D1 migrations create the replica's `_nt_rooms`.
    pub replica_meta: bool,
    /// Where the two folders disagree: each is a sentence.
    pub disagreements: Vec<String>,
    /// `(child, parent)` for every foreign key a hand-written migration declared. nanotype
    /// declares none; a table rebuild drops the old table, which would cascade along these.
    pub foreign_keys: Vec<(String, String)>,
}

/// Replay both folders of `layout` and compare them.
pub fn current(layout: &Layout) -> Result<Current, String> {
    let primary_files = layout::list(&layout.primary)?;
    let replica_files = layout::list(&layout.replica)?;
    let primary_db = replay(&primary_files)?;
    let replica_db = replay(&replica_files)?;
    let shown = |e: rusqlite::Error| format!("cannot read the replayed schema: {e}");
    let primary_shapes = introspect(&primary_db).map_err(shown)?;
    let replica_shapes = introspect(&replica_db).map_err(shown)?;

    let mut disagreements = layout::unpaired(&replica_files, &primary_files);
    let mut tables = Vec::new();
    for p in &primary_shapes {
        tables.push(shape::to_table(p).map_err(|e| format!("Durable Object migrations: {e}"))?);
    }
    for t in &tables {
        let expected = shape::replica(t);
        match replica_shapes.iter().find(|r| r.name == t.name) {
            None => disagreements.push(format!(
                "table `{}` is created by the Durable Object migrations but not by the D1 migrations",
                t.name
            )),
            Some(actual) => disagreements.extend(
                shape::differences(&expected, actual)
                    .into_iter()
                    .map(|d| format!("D1: {d}")),
            ),
        }
    }
    for r in &replica_shapes {
        if !tables.iter().any(|t| t.name == r.name) {
            disagreements.push(format!(
                "table `{}` is created by the D1 migrations but not by the Durable Object migrations",
                r.name
            ));
        }
    }

    let mut foreign_keys = references(&primary_db).map_err(shown)?;
    foreign_keys.extend(references(&replica_db).map_err(shown)?);
    foreign_keys.sort();
    foreign_keys.dedup();

    let replica_meta = has_table(&replica_db, ROOMS_TABLE).map_err(shown)?;
    if replica_meta {
        let expected = rooms_shape().map_err(shown)?;
        let actual = introspect_table(&replica_db, ROOMS_TABLE).map_err(shown)?;
        disagreements.extend(
            shape::differences(&expected, &actual)
                .into_iter()
                .map(|d| format!("D1: {d} (the sync engine's table)")),
        );
    }
    Ok(Current {
        tables,
        primary_files,
        replica_files,
        replica_meta,
        disagreements,
        foreign_keys,
    })
}

/// `(child, parent)` of every foreign key in `conn`.
pub fn references(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT m.name, f.\"table\" FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
         WHERE m.type = 'table'",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A fresh in-memory database with `files` applied in order.
pub fn replay(files: &[MigrationFile]) -> Result<Connection, String> {
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    for f in files {
        let sql = std::fs::read_to_string(&f.path)
            .map_err(|e| format!("cannot read {}: {e}", f.path.display()))?;
        conn.execute_batch(&sql)
            .map_err(|e| format!("{} does not apply: {e}", f.path.display()))?;
    }
    Ok(conn)
}

/// Is this a table the user's structs declare (not SQLite's, nanotype's, Cloudflare's or
/// wrangler's own)?
pub fn is_user_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(lower.starts_with("sqlite_")
        || lower.starts_with(RESERVED_PREFIX)
        || lower.starts_with("_cf_")
        || lower == "d1_migrations")
}

/// Every user table of `conn`, sorted by name.
pub fn introspect(conn: &Connection) -> rusqlite::Result<Vec<TableShape>> {
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .iter()
        .filter(|n| is_user_table(n))
        .map(|n| introspect_table(conn, n))
        .collect()
}

pub fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// One table as SQLite reports it. Only indexes made by `CREATE INDEX` are listed (a key's or
/// `UNIQUE` constraint's implicit index is part of the table).
pub fn introspect_table(conn: &Connection, table: &str) -> rusqlite::Result<TableShape> {
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid",
    )?;
    let columns = stmt
        .query_map([table], |r| {
            Ok(ColumnShape {
                name: r.get(0)?,
                declared_type: r.get::<_, String>(1)?.to_ascii_uppercase(),
                not_null: r.get::<_, i64>(2)? != 0,
                default: r
                    .get::<_, Option<String>>(3)?
                    .map(|d| shape::normalize_default(&d)),
                key_position: r.get(4)?,
                references: None,
            })
        })?
        .collect::<rusqlite::Result<Vec<ColumnShape>>>()?;
    // Foreign keys: a one-column key as written, or the replica's `(room_id, column)`.
    let mut columns = columns;
    let mut stmt = conn.prepare(
        "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?;
    let keys = stmt
        .query_map([table], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
    ids.dedup();
    for id in ids {
        let pairs: Vec<_> = keys
            .iter()
            .filter(|k| k.0 == id && k.2 != nanotype_schema::ROOM_COLUMN)
            .collect();
        if let [(_, parent, from, to, on_delete)] = pairs.as_slice() {
            if let Some(c) = columns.iter_mut().find(|c| c.name == *from) {
                c.references = Some(shape::reference_text(
                    parent,
                    to.as_deref().unwrap_or("rowid"),
                    on_delete,
                ));
            }
        }
    }
    let mut stmt = conn.prepare(
        "SELECT name, \"unique\" FROM pragma_index_list(?1) WHERE origin = 'c' ORDER BY name",
    )?;
    let listed = stmt
        .query_map([table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut indexes = Vec::new();
    for (name, unique) in listed {
        let mut stmt = conn.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
        let columns = stmt
            .query_map([&name], |r| {
                // NULL for an expression; nanotype makes none, show it as such.
                Ok(r.get::<_, Option<String>>(0)?
                    .unwrap_or_else(|| "<expression>".to_owned()))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // A partial index's condition: SQLite keeps the statement as written.
        let sql: Option<String> = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                [&name],
                |r| r.get(0),
            )
            .unwrap_or(None);
        let predicate = sql.and_then(|sql| {
            let upper = sql.to_ascii_uppercase();
            let at = upper.rfind(" WHERE ")?;
            Some(shape::normalize_sql(
                sql[at + 7..].trim().trim_end_matches(';'),
            ))
        });
        indexes.push(IndexShape {
            name,
            columns,
            unique,
            predicate,
        });
    }
    let create: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap_or(None);
    Ok(TableShape {
        name: table.to_owned(),
        columns,
        indexes,
        checks: create.as_deref().map(shape::checks_of).unwrap_or_default(),
    }
    .normalized())
}

/// `_nt_rooms` as [`REPLICA_META`] creates it.
fn rooms_shape() -> rusqlite::Result<TableShape> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(REPLICA_META)?;
    introspect_table(&conn, ROOMS_TABLE)
}
