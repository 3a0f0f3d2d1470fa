//! Anti-entropy: the room's rows compared with the replica's, without being asked.
//!
//! An audit walks every table in keyset pages of the primary. For each page it reads the
//! replica's rows of the room in the same key range (one room-scoped index range) and compares
//! them with the page, column by column. Rows the replica lacks or holds differently are upserted
//! and rows only the replica holds are deleted, in one guarded batch per page that differs: only
//! what differs is written, and a page that matches writes nothing. A batch is one D1
//! transaction, so the replica goes from divergent to repaired at once; if a repair cannot apply,
//! the room is resynced (its replica reads fall back to the primary meanwhile).
//!
//! Keys with a change still in the outbox are skipped: the flush is about to send them, and the
//! replica is allowed to lag. The audit runs inside the engine's single flight, so no flush
//! interleaves with it. Cost: every row of the room is read once in the primary and once in the
//! replica (`rowsRead` in the report); nothing is written unless something differs.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::statements::{self, Watermark};
use super::{as_replica, Engine};
use crate::clock::Scheduler;
use crate::error::Result;
use crate::key::{KeyColumns, KeyRepr};
use crate::primary::Primary;
use crate::replica::{Replica, Statement};
use crate::value::{Row, Value};
use nanotype_schema::ident::quote;
use nanotype_schema::{Table as TableDef, ROOM_COLUMN};

/// What the last audit found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// When it finished (ms since the epoch).
    pub at: i64,
    /// Rows of the room compared.
    pub rows_compared: u64,
    /// Rows read to compare them, primary and replica together: what an audit costs.
    pub rows_read: u64,
    /// Rows found missing, different or extra in the replica.
    pub divergent: u64,
    /// Of those, rows repaired by this audit (the rest by the resync it requested).
    pub repaired: u64,
}

impl<P: Primary, R: Replica, S: Scheduler> Engine<P, R, S> {
    /// Ask for an audit: the next [`Engine::sync`] compares the room with the replica and repairs
    /// what differs. The room's alarm asks for one every [`super::SyncConfig::audit_interval_ms`].
    pub fn request_audit(&self) {
        self.audit_requested.set(true);
    }

    /// The last audit's report, if the room was ever audited.
    pub fn last_audit(&self) -> Option<AuditReport> {
        self.stats.borrow().audit.clone()
    }

    /// One audit of every table (see the module docs).
    pub(crate) async fn audit(&self, replica: &R) -> Result<()> {
        let mut report = AuditReport::default();
        let mut unrepaired = false;
        for &def in &self.primary.tables {
            let key = KeyColumns::of(def);
            let cols: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();
            let cols = cols.join(", ");
            let table = quote(&def.name);
            let page = self.config.backfill_page.max(1);
            let mut cursor: Option<Value> = None;
            loop {
                // Between pages the room serves its requests.
                self.primary.scheduler.yield_now().await;
                let (sql, params) = key.page(&table, &cols, cursor.as_ref(), page)?;
                let rows = self.primary.query(&sql, &params)?;
                let read_seq = self.current_seq()?;
                let pending = self.pending_keys(def)?;
                let done = rows.len() < page;
                let up_to = if done {
                    None
                } else {
                    rows.last().map(|r| key.of_row(r))
                };

                let mut rparams = vec![Value::Text(self.room.clone())];
                let mut rsql = format!(
                    "SELECT {cols} FROM {table} WHERE {} = ?1",
                    quote(ROOM_COLUMN)
                );
                key.push_range(&mut rsql, &mut rparams, cursor.as_ref(), up_to.as_ref())?;
                rsql.push_str(&format!(" ORDER BY {}", key.order_sql("ASC")));
                let theirs = replica
                    .query(&Statement::new(rsql, rparams))
                    .await
                    .map_err(as_replica)?;
                report.rows_compared += rows.len() as u64;
                report.rows_read += (rows.len() + theirs.len()) as u64;

                let (upserts, deletes) = diff(&rows, theirs, &key, &pending);
                let n = (upserts.len() + deletes.len()) as u64;
                if n > 0 {
                    report.divergent += n;
                    let guard = self.guard(read_seq);
                    let limits = &self.config.limits;
                    let mut stmts = statements::upserts(
                        def,
                        upserts,
                        super::is_referenced(self.tables(), def),
                        &guard,
                        limits,
                    );
                    stmts.extend(statements::deletes(def, &deletes, &guard, limits)?);
                    stmts.push(statements::room_update(
                        &guard,
                        Watermark::Keep,
                        self.primary.scheduler.now_ms(),
                    ));
                    let applied = match replica.batch(&stmts).await {
                        Ok(results) => self.applied(&results, read_seq).is_some(),
                        Err(_) => false,
                    };
                    if applied {
                        report.repaired += n;
                    } else {
                        unrepaired = true;
                    }
                }
                cursor = up_to;
                if done {
                    break;
                }
            }
        }
        report.at = self.primary.scheduler.now_ms();
        self.stats_changed.set(true);
        self.stats.borrow_mut().audit = Some(report);
        if unrepaired {
            // Known divergent and not repaired: rebuild the room; its replica reads fall back to
            // the primary until the rebuild completes.
            self.request_resync()?;
        }
        Ok(())
    }

    /// Keys of `table` with a change still waiting in the outbox.
    fn pending_keys(&self, def: &TableDef) -> Result<HashSet<KeyRepr>> {
        let rows = self.primary.query(
            "SELECT \"pk\" FROM \"_nt_outbox\" WHERE \"tbl\" = ?1 AND \"seq\" > ?2",
            &[
                Value::Text(def.name.to_string()),
                Value::Integer(self.primary.applied.get()),
            ],
        )?;
        let key = KeyColumns::of(def);
        Ok(rows
            .iter()
            .filter_map(|r| r.first())
            .map(|k| key.repr(k))
            .collect())
    }
}

/// What the replica must receive for `ours` (one page of the primary) given `theirs` (the
/// replica's rows of the same key range): rows to upsert, keys to delete. Keys in `pending` are
/// left to the flush.
fn diff(
    ours: &[Row],
    theirs: Vec<Row>,
    key: &KeyColumns,
    pending: &HashSet<KeyRepr>,
) -> (Vec<Row>, Vec<Value>) {
    let mut theirs: HashMap<KeyRepr, Row> =
        theirs.into_iter().map(|r| (key.row_repr(&r), r)).collect();
    let mut upserts = Vec::new();
    for row in ours {
        let k = key.row_repr(row);
        let same = theirs.remove(&k).is_some_and(|t| t == *row);
        if !same && !pending.contains(&k) {
            upserts.push(row.clone());
        }
    }
    let deletes = theirs
        .into_iter()
        .filter(|(k, _)| !pending.contains(k))
        .map(|(_, r)| key.of_row(&r))
        .collect();
    (upserts, deletes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_finds_missing_changed_and_extra_rows_and_leaves_pending_keys() {
        let row = |k: i64, v: &str| vec![Value::Integer(k), Value::Text(v.into())];
        let ours = vec![row(1, "a"), row(2, "b"), row(3, "c"), row(4, "d")];
        let theirs = vec![
            row(1, "a"),
            row(2, "tampered"),
            row(5, "invented"),
            row(6, "x"),
        ];
        let pending: HashSet<KeyRepr> = [KeyRepr::Int(4), KeyRepr::Int(6)].into();
        let def = TableDef::new(
            "t",
            "T",
            vec![
                nanotype_schema::Column::new("id", nanotype_schema::ValueKind::I64).primary_key(),
                nanotype_schema::Column::new("v", nanotype_schema::ValueKind::String),
            ],
        );
        let (up, del) = diff(&ours, theirs, &KeyColumns::of(&def), &pending);
        assert_eq!(up, vec![row(2, "b"), row(3, "c")]);
        assert_eq!(del, vec![Value::Integer(5)]);
    }
}
