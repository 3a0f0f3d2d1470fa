//! The current schema, learned by replaying the migration files into an in-memory SQLite and
//! reading the result back with `PRAGMA table_info`, `index_list` and `index_info`.
//!
//! Replaying rather than keeping a snapshot of the schema beside the files: the files are what
//! D1 and the Durable Objects actually run, so what they build is the truth. A hand-edited or
//! hand-written migration (a backfill, an extra index, a fix) is read for what it does, with no
//! snapshot to forget to update, and nothing else is committed that could disagree with them.

use nanotype_schema::ddl::{REPLICA_META, ROOMS_TABLE};
use nanotype_schema::migration::expand::{self, TableExpansion};
use nanotype_schema::migration::introspect::{self, CatalogValue};
use nanotype_schema::migration::shape::{self, TableShape};
use nanotype_schema::{Table, RESERVED_PREFIX, ROOM_COLUMN};
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
    /// An expand step whose contract is not written yet.
    pub pending: Option<PendingExpand>,
}

/// An expand step ([`expand`]) waiting for its contract: D1 holds its tables expanded.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingExpand {
    /// The expand migration's name (`0005_expand_rename_tasks_title`).
    pub file: String,
    /// What it expanded, per table.
    pub tables: Vec<TableExpansion>,
}

/// The expand step among `files` (D1) that no later contract completes, with its tables.
fn pending_expand(
    files: &[MigrationFile],
) -> Result<Option<(String, Vec<TableExpansion>)>, String> {
    let mut pending = None;
    for f in files {
        let text = std::fs::read_to_string(&f.path)
            .map_err(|e| format!("cannot read {}: {e}", f.path.display()))?;
        if text.lines().any(|l| l.starts_with(expand::CONTRACT_MARKER)) {
            pending = None;
        }
        let tables = TableExpansion::parse_all(&text);
        if !tables.is_empty() {
            pending = Some((f.name.clone(), tables));
        }
    }
    Ok(pending)
}

/// The model of a replica table's shape, without `room_id` (in its columns, key and indexes).
fn model_of_replica(s: &TableShape) -> Result<Table, String> {
    let mut t = shape::to_table(s)?;
    t.columns.to_mut().retain(|c| c.name != ROOM_COLUMN);
    for i in t.indexes.to_mut().iter_mut() {
        if i.columns.first().is_some_and(|c| c == ROOM_COLUMN) {
            i.columns.to_mut().remove(0);
        }
    }
    Ok(t)
}

/// Replay both folders of `layout` and compare them.
pub fn current(layout: &Layout) -> Result<Current, String> {
    let primary_files = layout::list(&layout.primary)?;
    let replica_files = layout::list(&layout.replica)?;
    let primary_db = replay(&primary_files)?;
    let replica_db = replay(&replica_files)?;
    let shown = |e: String| format!("cannot read the replayed schema: {e}");
    let sql = |e: rusqlite::Error| shown(e.to_string());
    let primary_shapes = introspect(&primary_db).map_err(shown)?;
    let replica_shapes = introspect(&replica_db).map_err(shown)?;

    let mut disagreements = layout::unpaired(&replica_files, &primary_files);
    let mut tables = Vec::new();
    for p in &primary_shapes {
        tables.push(shape::to_table(p).map_err(|e| format!("Durable Object migrations: {e}"))?);
    }
    let pending =
        pending_expand(&replica_files)?.map(|(file, tables)| PendingExpand { file, tables });
    for t in &tables {
        let mut expected = shape::replica(t);
        // A table an expand step holds with both versions' columns until its contract.
        if let Some(p) = &pending {
            let actual = replica_shapes.iter().find(|r| r.name == t.name);
            if let (Some(e), Some(actual)) =
                (p.tables.iter().find(|e| e.table == t.name.as_ref()), actual)
            {
                let old = model_of_replica(actual).map_err(|e| format!("D1 migrations: {e}"))?;
                expected = shape::replica(&e.expanded(t, &old));
            }
        }
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

    let mut foreign_keys = references(&primary_db).map_err(sql)?;
    foreign_keys.extend(references(&replica_db).map_err(sql)?);
    foreign_keys.sort();
    foreign_keys.dedup();

    let replica_meta = has_table(&replica_db, ROOMS_TABLE).map_err(sql)?;
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
        pending,
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
pub fn introspect(conn: &Connection) -> Result<Vec<TableShape>, String> {
    let names = introspect::table_names(&mut catalog(conn))?;
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

/// One table as SQLite reports it ([`nanotype_schema::migration::introspect::table`]).
pub fn introspect_table(conn: &Connection, table: &str) -> Result<TableShape, String> {
    introspect::table(&mut catalog(conn), table)
}

/// Runs catalog statements on `conn` for [`introspect`].
fn catalog(conn: &Connection) -> impl FnMut(&str) -> Result<Vec<Vec<CatalogValue>>, String> + '_ {
    move |sql: &str| {
        let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => CatalogValue::Null,
                            rusqlite::types::ValueRef::Integer(v) => CatalogValue::Int(v),
                            rusqlite::types::ValueRef::Real(v) => CatalogValue::Text(v.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                CatalogValue::Text(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| e.to_string())
    }
}

/// `_nt_rooms` as [`REPLICA_META`] creates it.
fn rooms_shape() -> Result<TableShape, String> {
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    conn.execute_batch(REPLICA_META)
        .map_err(|e| e.to_string())?;
    introspect_table(&conn, ROOMS_TABLE)
}
