//! A table's [`TableShape`] read from a live SQLite database with `PRAGMA` statements and
//! `sqlite_master`, through whatever runs SQL there: `gen-migrations` on the databases it
//! replays migrations into (rusqlite), and the runtime on a room's own database (adopting one
//! made without nanotype's ledger). Only plain `PRAGMA` statements are used, which both SQLite
//! and a Durable Object's SQLite allow.

use crate::ident::{quote, quote_string};
use crate::migration::shape::{
    self, checks_of, normalize_default, ColumnShape, IndexShape, TableShape,
};
use crate::ROOM_COLUMN;

/// A value of a catalog row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogValue {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text (other types are read as text).
    Text(String),
}

impl CatalogValue {
    fn text(&self) -> Option<&str> {
        match self {
            CatalogValue::Text(t) => Some(t),
            _ => None,
        }
    }

    fn int(&self) -> i64 {
        match self {
            CatalogValue::Int(i) => *i,
            CatalogValue::Text(t) => t.parse().unwrap_or(0),
            CatalogValue::Null => 0,
        }
    }
}

/// Runs one statement with no parameters and returns its rows.
pub type Run<'a> = dyn FnMut(&str) -> Result<Vec<Vec<CatalogValue>>, String> + 'a;

fn cell(row: &[CatalogValue], i: usize) -> &CatalogValue {
    row.get(i).unwrap_or(&CatalogValue::Null)
}

/// The names of the tables of the database, sorted.
pub fn table_names(run: &mut Run<'_>) -> Result<Vec<String>, String> {
    Ok(
        run("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
            .iter()
            .filter_map(|r| cell(r, 0).text().map(str::to_owned))
            .collect(),
    )
}

/// One table as SQLite reports it. Only indexes made by `CREATE INDEX` are listed (a key's or
/// `UNIQUE` constraint's implicit index is part of the table).
pub fn table(run: &mut Run<'_>, table: &str) -> Result<TableShape, String> {
    let mut columns: Vec<ColumnShape> = run(&format!("PRAGMA table_info({})", quote(table)))?
        .iter()
        // cid, name, type, notnull, dflt_value, pk
        .map(|r| ColumnShape {
            name: cell(r, 1).text().unwrap_or_default().to_owned(),
            declared_type: cell(r, 2).text().unwrap_or_default().to_ascii_uppercase(),
            not_null: cell(r, 3).int() != 0,
            default: cell(r, 4)
                .text()
                .map(normalize_default)
                .or(match cell(r, 4) {
                    CatalogValue::Int(i) => Some(i.to_string()),
                    _ => None,
                }),
            key_position: cell(r, 5).int() as u32,
            references: None,
        })
        .collect();
    // Foreign keys: a one-column key as written, or the replica's `(room_id, column)`.
    // id, seq, table, from, to, on_update, on_delete, match
    let keys = run(&format!("PRAGMA foreign_key_list({})", quote(table)))?;
    let mut ids: Vec<i64> = keys.iter().map(|k| cell(k, 0).int()).collect();
    ids.dedup();
    for id in ids {
        let pairs: Vec<&Vec<CatalogValue>> = keys
            .iter()
            .filter(|k| cell(k, 0).int() == id && cell(k, 3).text() != Some(ROOM_COLUMN))
            .collect();
        if let [k] = pairs.as_slice() {
            let from = cell(k, 3).text().unwrap_or_default();
            if let Some(c) = columns.iter_mut().find(|c| c.name == from) {
                c.references = Some(shape::reference_text(
                    cell(k, 2).text().unwrap_or_default(),
                    cell(k, 4).text().unwrap_or("rowid"),
                    cell(k, 6).text().unwrap_or("NO ACTION"),
                ));
            }
        }
    }
    // seq, name, unique, origin, partial
    let mut indexes = Vec::new();
    for r in run(&format!("PRAGMA index_list({})", quote(table)))? {
        if cell(&r, 3).text() != Some("c") {
            continue;
        }
        let name = cell(&r, 1).text().unwrap_or_default().to_owned();
        // seqno, cid, name (NULL for an expression; nanotype makes none, show it as such)
        let mut info = run(&format!("PRAGMA index_info({})", quote(&name)))?;
        crate::sort::sort_by_key(&mut info, |i| cell(i, 0).int());
        let cols = info
            .iter()
            .map(|i| cell(i, 2).text().unwrap_or("<expression>").to_owned())
            .collect();
        // A partial index's condition: SQLite keeps the statement as written.
        let sql = run(&format!(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = {}",
            quote_string(&name)
        ))?;
        let predicate = sql
            .first()
            .and_then(|r| cell(r, 0).text().map(str::to_owned))
            .and_then(|sql| {
                let at = sql.to_ascii_uppercase().rfind(" WHERE ")?;
                Some(shape::normalize_sql(
                    sql[at + 7..].trim().trim_end_matches(';'),
                ))
            });
        indexes.push(IndexShape {
            name,
            columns: cols,
            unique: cell(&r, 2).int() != 0,
            predicate,
        });
    }
    let create = run(&format!(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = {}",
        quote_string(table)
    ))?;
    let checks = create
        .first()
        .and_then(|r| cell(r, 0).text())
        .map(checks_of)
        .unwrap_or_default();
    crate::sort::sort_by(&mut columns, |a, b| a.name.cmp(&b.name));
    Ok(TableShape {
        name: table.to_owned(),
        columns,
        indexes,
        checks,
    }
    .normalized())
}
