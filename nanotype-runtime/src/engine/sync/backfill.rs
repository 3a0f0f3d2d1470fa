//! Backfill and resync: copy a room's tables to the replica in keyset pages.
//!
//! Each page is read from the primary at one seq and sent as one guarded batch that upserts the
//! page's rows and deletes the room's replica rows in the page's key range that the primary does
//! not have. The cursor moves (in the primary) only after the batch applied, so a crash or a
//! failed batch resumes from the last applied page. Live writes go on meanwhile: they reach the
//! replica through the outbox in later batches, which carry a later read seq.
//!
//! A full resync first *claims* the room (its `_nt_rooms` row names this primary, watermark 0),
//! pages every table, drops the outbox records the pages already covered (those up to the claim's
//! seq), and finally sets the watermark to just below the oldest pending change.

use super::statements::{self, Watermark};
use super::{as_replica, meta_get, meta_set, Engine, META_RESYNC};

const META_RESYNC_FROM: &str = "resync_from";
use crate::clock::Scheduler;
use crate::error::Result;
use crate::key::KeyColumns;
use crate::primary::Primary;
use crate::replica::Replica;
use crate::value::{Row, Value};
use nanotype_schema::ident::quote;
use nanotype_schema::Table as TableDef;

const CLAIMED: &str = "2";

impl<P: Primary, R: Replica, S: Scheduler> Engine<P, R, S> {
    /// Whether a registered table still needs copying.
    pub(crate) fn backfill_pending(&self) -> Result<bool> {
        if self.resync_in_progress()? {
            return Ok(true);
        }
        Ok(self.next_table()?.is_some())
    }

    fn next_table(&self) -> Result<Option<(usize, Option<Value>)>> {
        let rows = self.primary.query(
            "SELECT \"tbl\", \"cursor\" FROM \"_nt_backfill\" WHERE \"done\" = 0",
            &[],
        )?;
        let mut best: Option<(usize, Option<Value>)> = None;
        for row in rows {
            let mut it = row.into_iter();
            let Some(Value::Text(name)) = it.next() else {
                continue;
            };
            let cursor = match it.next() {
                None | Some(Value::Null) => None,
                Some(v) => Some(v),
            };
            if let Some(pos) = self.primary.tables.iter().position(|t| t.name == name) {
                if best.as_ref().is_none_or(|(b, _)| pos < *b) {
                    best = Some((pos, cursor));
                }
            }
        }
        Ok(best)
    }

    /// One step of backfill/resync. `Ok(true)` when a batch went and more may follow.
    pub(crate) async fn backfill_step(&self, replica: &R) -> Result<bool> {
        let resync = meta_get(&self.primary, META_RESYNC)?;
        let now = self.primary.scheduler.now_ms();
        if resync.as_deref() == Some("1") {
            let read_seq = self.current_seq()?;
            let guard = self.guard(read_seq);
            // A small room (a new one above all) goes whole, in one batch.
            if let Some((stmts, rows)) = self.whole_room(&guard, now)? {
                let results = match replica.batch(&stmts).await {
                    Ok(r) => r,
                    Err(e) => return Err(self.refused(replica, as_replica(e), read_seq).await),
                };
                let Some(state) = self.applied(&results, read_seq) else {
                    return Ok(false);
                };
                self.primary.transaction(|| {
                    self.resync_changed();
                    self.primary.execute(
                        "UPDATE \"_nt_backfill\" SET \"cursor\" = NULL, \"done\" = 1",
                        &[],
                    )?;
                    meta_set(&self.primary, META_RESYNC, "0")
                })?;
                // Every change up to the snapshot's seq is in it.
                self.mark_applied(read_seq);
                self.record_success(rows, &state);
                return Ok(true);
            }
            // Claim the room for this primary before copying.
            let stmts = vec![statements::claim(&guard, now)];
            let results = replica.batch(&stmts).await.map_err(as_replica)?;
            return match self.applied(&results, read_seq) {
                Some(state) => {
                    self.primary.transaction(|| {
                        self.resync_changed();
                        meta_set(&self.primary, META_RESYNC, CLAIMED)?;
                        meta_set(&self.primary, META_RESYNC_FROM, &read_seq.to_string())
                    })?;
                    self.record_success(0, &state);
                    Ok(true)
                }
                None => Ok(false),
            };
        }

        let Some((pos, cursor)) = self.next_table()? else {
            if resync.as_deref() == Some(CLAIMED) {
                return self.finish_resync(replica).await;
            }
            return Ok(false);
        };
        let def = self.primary.tables[pos];
        let limits = &self.config.limits;
        let per_stmt = ((limits.max_params - 3) / def.columns.len().max(1)).max(1);
        let mut page = self
            .config
            .backfill_page
            .min(per_stmt * (limits.max_statements - 3))
            .max(1);
        let key = KeyColumns::of(def);
        let cols: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();

        let (stmts, read_seq, last_key, done, n) = loop {
            let (sql, params) =
                key.page(&quote(&def.name), &cols.join(", "), cursor.as_ref(), page)?;
            let rows = self.primary.query(&sql, &params)?;
            let read_seq = self.current_seq()?;
            let guard = self.guard(read_seq);
            let done = rows.len() < page;
            let keys: Vec<Value> = rows.iter().map(|r| key.of_row(r)).collect();
            let last_key = keys.last().cloned();
            let up_to = if done { None } else { last_key.as_ref() };
            let n = rows.len();
            // The rows this page references that changed after their own table was copied
            // (their changes still in the outbox) come along, or the replica's foreign keys
            // would refuse the page.
            let tables = self.tables();
            let mut with: Vec<(&'static TableDef, Vec<Row>)> = tables
                .iter()
                .map(|t| {
                    (
                        *t,
                        if t.name == def.name {
                            rows.clone()
                        } else {
                            Vec::new()
                        },
                    )
                })
                .collect();
            self.referenced_rows(&mut with, 0)?;
            let mut stmts = Vec::new();
            for (t, rows) in with {
                if !rows.is_empty() {
                    let referenced = super::is_referenced(tables, t);
                    stmts.extend(statements::upserts(t, rows, referenced, &guard, limits));
                }
            }
            stmts.push(statements::sweep(
                def,
                cursor.as_ref(),
                up_to,
                &keys,
                &guard,
            )?);
            if stmts.len() + 2 > limits.max_statements && page > 1 {
                page = (page / 2).max(1);
                continue;
            }
            stmts.push(statements::room_update(&guard, Watermark::Keep, now));
            break (stmts, read_seq, last_key, done, n);
        };

        let results = match replica.batch(&stmts).await {
            Ok(r) => r,
            Err(e) => return Err(self.refused(replica, as_replica(e), read_seq).await),
        };
        let Some(state) = self.applied(&results, read_seq) else {
            return Ok(false);
        };
        let new_cursor = last_key.or(cursor).unwrap_or(Value::Null);
        self.primary.execute(
            "UPDATE \"_nt_backfill\" SET \"cursor\" = ?2, \"done\" = ?3 WHERE \"tbl\" = ?1",
            &[
                Value::Text(def.name.to_string()),
                new_cursor,
                Value::Integer(i64::from(done)),
            ],
        )?;
        self.record_success(n, &state);
        Ok(true)
    }

    /// The whole room as one batch, when it holds at most [`super::SyncConfig::backfill_page`]
    /// rows and the batch fits D1's limits: the claim, each table's sweep (children first) and
    /// rows (parents first), and the watermark set to the seq all of it was read at (nothing
    /// runs between these reads, so every change up to that seq is in them). One D1 call where
    /// the paged copy makes two plus one per table; `None` for a larger room.
    fn whole_room(
        &self,
        guard: &statements::Guard,
        now: i64,
    ) -> Result<Option<(Vec<crate::replica::Statement>, usize)>> {
        let limit = self.config.backfill_page;
        let tables = self.tables();
        let mut copied: Vec<(&'static TableDef, Vec<Row>)> = Vec::with_capacity(tables.len());
        let mut total = 0;
        for def in tables {
            let key = KeyColumns::of(def);
            let cols: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();
            let (sql, params) =
                key.page(&quote(&def.name), &cols.join(", "), None, limit - total + 1)?;
            let rows = self.primary.query(&sql, &params)?;
            total += rows.len();
            if total > limit {
                return Ok(None);
            }
            copied.push((*def, rows));
        }
        let mut stmts = vec![statements::claim(guard, now)];
        for (def, rows) in copied.iter().rev() {
            let key = KeyColumns::of(def);
            let keys: Vec<Value> = rows.iter().map(|r| key.of_row(r)).collect();
            stmts.push(statements::sweep(def, None, None, &keys, guard)?);
        }
        let limits = &self.config.limits;
        for (def, rows) in copied {
            if !rows.is_empty() {
                let referenced = super::is_referenced(tables, def);
                stmts.extend(statements::upserts(def, rows, referenced, guard, limits));
            }
        }
        stmts.push(statements::room_update(
            guard,
            Watermark::Set(guard.read_seq),
            now,
        ));
        Ok((stmts.len() <= limits.max_statements).then_some((stmts, total)))
    }

    /// Every table copied: the replica holds the room as of each page, and every change since
    /// is still in the outbox. So everything before the oldest pending change is applied.
    async fn finish_resync(&self, replica: &R) -> Result<bool> {
        // Every page was read after the claim, so every change up to the claim's seq is in the
        // copied rows (or in a sweep): those outbox records need not be sent again.
        if let Some(from) =
            meta_get(&self.primary, META_RESYNC_FROM)?.and_then(|s| s.parse::<i64>().ok())
        {
            // Through the outbox's own applied mark: those records may be taken by later changes.
            self.mark_applied(from);
            self.trim_applied()?;
        }
        let read_seq = self.current_seq()?;
        let oldest = self.primary.query(
            "SELECT MIN(\"seq\") FROM \"_nt_outbox\" WHERE \"seq\" > ?1 AND \"tbl\" <> ''",
            &[Value::Integer(self.primary.applied.get())],
        )?;
        let watermark = match oldest.first().and_then(|r| r.first()) {
            Some(Value::Integer(min)) => min - 1,
            _ => read_seq,
        };
        let guard = self.guard(read_seq);
        let stmts = vec![statements::room_update(
            &guard,
            Watermark::Set(watermark),
            self.primary.scheduler.now_ms(),
        )];
        let results = replica.batch(&stmts).await.map_err(as_replica)?;
        let Some(state) = self.applied(&results, read_seq) else {
            return Ok(false);
        };
        self.resync_changed();
        meta_set(&self.primary, META_RESYNC, "0")?;
        self.record_success(0, &state);
        Ok(false)
    }
}
