//! Complete change capture: every change to a replicated table reaches the outbox, whoever made
//! it — the generated functions, raw SQL in the Durable Object (a hook, a timer, read-write SQL
//! of the app's own), `REPLACE`, or a foreign key's `ON DELETE CASCADE`.
//!
//! The engine installs SQL triggers on each table of its schema when it opens
//! (`install`), so they exist in every room whatever its migrations did (a rebuild drops a
//! table's triggers with it; the next open puts them back):
//!
//! * `AFTER INSERT` and `AFTER DELETE` record the row's key (a delete also keeps a deleted
//!   assigned key as the table's high-water mark, so raw deletes never free a key for reuse);
//! * `AFTER UPDATE` records the new key, and the old one too when the key changed;
//! * `BEFORE INSERT`, only on a table with unique indexes, records the keys of rows an
//!   `INSERT OR REPLACE` is about to delete for a unique conflict (SQLite fires no delete trigger
//!   for those unless `recursive_triggers` is on; it costs one index probe per unique index per
//!   insert, and finds nothing for an insert that conflicts with no row).
//!
//! A trigger runs inside the statement that changed the row, so the record commits or rolls back
//! with it, and the generated writes no longer send a second statement for the outbox: one
//! `exec` per write fewer between wasm and the Durable Object's SQLite. Each trigger's name
//! carries a hash of its SQL, so a changed definition (a renamed key column) replaces the old one;
//! triggers of tables outside the schema are dropped (their records would stop the flush).

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::key::KeyColumns;
use crate::outbox::Retention;
use crate::primary::Primary;
use crate::value::Value;
use nanotype_schema::ident::{quote, quote_string};
use nanotype_schema::Table as TableDef;

/// The prefix of every capture trigger's name.
pub const PREFIX: &str = "_nt_capture_";

/// The capture triggers of `def`: `(name, CREATE TRIGGER statement)`. `retain` is what the ring
/// keeps for the feed, when the room's feed is on.
pub(crate) fn triggers(def: &TableDef, retain: Option<Retention>) -> Vec<(String, String)> {
    let table = quote(&def.name);
    let name = quote_string(&def.name);
    // The key as one value: a column, or `json_array(…)` of a composite key's columns.
    let keys = KeyColumns::of(def);
    let new_key = keys.expr("NEW.");
    let old_key = keys.expr("OLD.");
    // One row written per change: the oldest record the replica has, or a new one.
    let record = |expr: &str| crate::outbox::record_sql(&name, expr, "1", retain);
    let mut bodies = vec![
        (
            "ins",
            format!("AFTER INSERT ON {table} BEGIN {} END", record(&new_key)),
        ),
        (
            "upd",
            format!(
                "AFTER UPDATE ON {table} BEGIN {} {} END",
                crate::outbox::record_sql(
                    &name,
                    &old_key,
                    &format!("{old_key} IS NOT {new_key}"),
                    retain
                ),
                record(&new_key)
            ),
        ),
        (
            "del",
            format!(
                "AFTER DELETE ON {table} BEGIN {}{} END",
                record(&old_key),
                // A key SQLite assigns is never handed out again: the largest one deleted is
                // kept as the table's high-water mark (`_nt_keys`), whoever deleted it.
                if def.key_is_rowid() {
                    format!(" {};", crate::table::retire_key_sql(def, &old_key))
                } else {
                    String::new()
                }
            ),
        ),
    ];
    let uniques: Vec<String> = def
        .indexes
        .iter()
        .filter(|i| i.unique)
        .map(|i| {
            let cols: Vec<String> = i
                .columns
                .iter()
                .map(|c| format!("{q} = NEW.{q}", q = quote(c)))
                .collect();
            format!("({})", cols.join(" AND "))
        })
        .collect();
    if !uniques.is_empty() {
        bodies.push((
            "rep",
            format!(
                "BEFORE INSERT ON {table} BEGIN INSERT INTO \"_nt_outbox\" (\"tbl\", \"pk\") \
                 SELECT {name}, {} FROM {table} WHERE ({}) AND {} IS NOT {new_key}; END",
                keys.expr(""),
                uniques.join(" OR "),
                keys.expr(""),
            ),
        ));
    }
    let hash = {
        let mut h = Sha256::new();
        for (_, body) in &bodies {
            h.update(body.as_bytes());
        }
        h.finalize()
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    bodies
        .into_iter()
        .map(|(kind, body)| {
            let trigger = format!("{PREFIX}{}_{kind}_{hash}", def.name);
            let sql = format!("CREATE TRIGGER {} {body}", quote(&trigger));
            (trigger, sql)
        })
        .collect()
}

/// Make the room's capture triggers exactly those of `tables`: missing ones created, outdated
/// ones and those of other tables dropped. Reads `sqlite_master` once; writes only what differs.
/// `retain` is what the ring keeps for the feed ([`crate::outbox::Retention`]), part of the
/// triggers' SQL: turning the feed on or changing its retention replaces them.
pub(crate) fn install<P: Primary>(
    db: &P,
    tables: &[&TableDef],
    retain: Option<Retention>,
) -> Result<()> {
    let existing: Vec<String> = db
        .query(
            // Not LIKE: `_` is its wildcard, and another trigger must never match.
            "SELECT \"name\" FROM \"sqlite_master\" WHERE \"type\" = 'trigger' \
             AND substr(\"name\", 1, ?1) = ?2",
            &[
                Value::Integer(PREFIX.len() as i64),
                Value::Text(PREFIX.to_owned()),
            ],
        )?
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(Value::Text(name)) => Some(name),
            _ => None,
        })
        .collect();
    let wanted: Vec<(String, String)> = tables.iter().flat_map(|t| triggers(t, retain)).collect();
    db.transaction(|| {
        for name in &existing {
            if !wanted.iter().any(|(w, _)| w == name) {
                db.execute_batch(&format!("DROP TRIGGER IF EXISTS {}", quote(name)))?;
            }
        }
        for (name, sql) in &wanted {
            if !existing.contains(name) {
                db.execute_batch(sql)?;
            }
        }
        Ok(())
    })
}
