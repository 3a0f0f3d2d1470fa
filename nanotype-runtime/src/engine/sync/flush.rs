//! Flushing the outbox: pending changes → one guarded replica batch → marked applied → trimmed
//! when the drain ends.

use std::collections::HashMap;

use super::statements::{self, RoomState, Watermark};
use super::{as_replica, Engine};
use crate::clock::Scheduler;
use crate::error::{Error, Result};
use crate::key::KeyColumns;
pub(crate) use crate::key::KeyRepr;
use crate::primary::Primary;
use crate::replica::{Replica, Statement};
use crate::value::{Row, Value};
use nanotype_schema::ident::quote;
use nanotype_schema::Table as TableDef;

/// Read the rows of `def` with `keys` from the primary, keyed by their key.
pub(crate) fn read_rows<P: Primary>(
    db: &P,
    def: &TableDef,
    keys: &[Value],
    max_params: usize,
) -> Result<HashMap<KeyRepr, Row>> {
    let cols: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();
    let key = KeyColumns::of(def);
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks((max_params / key.arity()).max(1)) {
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            cols.join(", "),
            quote(&def.name),
            key.any_sql(1, chunk.len())
        );
        for row in db.query(&sql, &key.params(chunk)?)? {
            out.insert(key.row_repr(&row), row);
        }
    }
    Ok(out)
}

struct Pending {
    /// Per table, keys in first-seen order.
    tables: Vec<(&'static TableDef, Vec<Value>)>,
    /// Highest seq covered: every outbox record up to it is in this batch.
    hi: i64,
}

impl<P: Primary, R: Replica, S: Scheduler> Engine<P, R, S> {
    fn pending(&self, limit: usize) -> Result<Option<Pending>> {
        let entries = self.primary.query(
            "SELECT \"seq\", \"tbl\", \"pk\" FROM \"_nt_outbox\" WHERE \"seq\" > ?2 AND \"tbl\" <> '' \
             ORDER BY \"seq\" LIMIT ?1",
            &[Value::Integer(limit as i64), Value::Integer(self.primary.applied.get())],
        )?;
        if entries.is_empty() {
            return Ok(None);
        }
        let mut tables: Vec<(&'static TableDef, Vec<Value>)> = Vec::new();
        let mut seen: HashMap<(String, KeyRepr), ()> = HashMap::new();
        let mut hi = 0;
        for e in entries {
            let mut it = e.into_iter();
            let Some(Value::Integer(seq)) = it.next() else {
                continue;
            };
            let tbl = match it.next() {
                Some(Value::Text(t)) => t,
                _ => String::new(),
            };
            let key = it.next().unwrap_or(Value::Null);
            hi = seq;
            // Never skipped: a change the engine cannot send stays queued and says why.
            let Some(def) = self.table(&tbl) else {
                return Err(Error::UnregisteredTable { table: tbl });
            };
            let repr = if def.has_composite_key() {
                KeyColumns::of(def).repr(&key)
            } else {
                KeyRepr::of(&key)
            };
            if seen.insert((tbl.clone(), repr), ()).is_some() {
                continue;
            }
            match tables.iter_mut().find(|(d, _)| d.name == tbl) {
                Some((_, keys)) => keys.push(key),
                None => tables.push((def, vec![key])),
            }
        }
        Ok(Some(Pending { tables, hi }))
    }

    /// Add to `upserts` (per table, in dependency order) the rows its rows reference that have a
    /// change after `hi` (so are not in the replica yet, nor in this batch), and theirs in turn.
    /// Returns how many rows it added.
    pub(crate) fn referenced_rows(
        &self,
        upserts: &mut [(&'static TableDef, Vec<Row>)],
        hi: i64,
    ) -> Result<usize> {
        let mut added = 0;
        // Children come after their parents: walk back, so a parent added here is itself
        // looked at when its own turn comes.
        for i in (0..upserts.len()).rev() {
            let (def, rows) = (upserts[i].0, &upserts[i].1);
            let mut wanted: Vec<(usize, Value)> = Vec::new();
            for (c, col) in def.columns.iter().enumerate() {
                let Some(r) = &col.references else { continue };
                let Some(p) = upserts[..i].iter().position(|(t, _)| t.name == r.table) else {
                    continue; // a reference to itself, or to a table after it (a cycle)
                };
                for row in rows {
                    let v = &row[c];
                    if !matches!(v, Value::Null) && !wanted.iter().any(|(q, w)| *q == p && w == v) {
                        wanted.push((p, v.clone()));
                    }
                }
            }
            let mut parents: Vec<usize> = wanted.iter().map(|(p, _)| *p).collect();
            nanotype_schema::sort::sort(&mut parents);
            parents.dedup();
            for p in parents {
                // A referenced table has a one-column key (a composite key cannot be).
                let parent = upserts[p].0;
                let key = KeyColumns::of(parent);
                let have: Vec<KeyRepr> = upserts[p].1.iter().map(|r| key.row_repr(r)).collect();
                let later: Vec<KeyRepr> = self
                    .primary
                    .query(
                        "SELECT \"pk\" FROM \"_nt_outbox\" WHERE \"seq\" > ?1 AND \"tbl\" = ?2",
                        &[Value::Integer(hi), Value::Text(parent.name.to_string())],
                    )?
                    .into_iter()
                    .filter_map(|r| r.into_iter().next())
                    .map(|v| KeyRepr::of(&v))
                    .collect();
                let keys: Vec<Value> = wanted
                    .iter()
                    .filter(|(q, v)| {
                        *q == p
                            && later.contains(&KeyRepr::of(v))
                            && !have.contains(&KeyRepr::of(v))
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                let found = read_rows(&self.primary, parent, &keys, self.config.limits.max_params)?;
                added += found.len();
                upserts[p].1.extend(found.into_values());
            }
        }
        Ok(added)
    }

    /// Send one batch of pending changes. `Ok(true)` when a batch went (more may be pending).
    pub(crate) async fn flush_step(&self, replica: &R) -> Result<bool> {
        let limits = &self.config.limits;
        let mut limit = self.config.max_changes_per_batch.max(1);
        // Read phase: synchronous, so the rows, the outbox and the seq are one consistent view.
        let (stmts, hi, rows_sent, read_seq) = loop {
            let Some(pending) = self.pending(limit)? else {
                return Ok(false);
            };
            let read_seq = self.current_seq()?;
            let guard = self.guard(read_seq);
            // Deletes go first, referencing tables before the tables they reference: a row
            // deleted in the room frees its unique values for the rows upserted after it. Then
            // upserts, referenced tables first (the engine keeps its tables in that order).
            let mut deletes: Vec<Vec<Statement>> = Vec::new();
            let mut rows_sent = 0;
            let tables = self.tables();
            let mut pending_tables: Vec<_> = pending.tables.iter().collect();
            nanotype_schema::sort::sort_by_key(&mut pending_tables, |(def, _)| {
                tables
                    .iter()
                    .position(|t| t.name == def.name)
                    .unwrap_or(usize::MAX)
            });
            // Per table (in the engine's order): the rows to upsert.
            let mut upsert_rows: Vec<(&'static TableDef, Vec<Row>)> =
                tables.iter().map(|t| (*t, Vec::new())).collect();
            for (def, keys) in pending_tables {
                let mut found = read_rows(&self.primary, def, keys, limits.max_params)?;
                let key = KeyColumns::of(def);
                let mut rows = Vec::with_capacity(found.len());
                let mut gone = Vec::new();
                for k in keys {
                    match found.remove(&key.repr(k)) {
                        Some(row) => rows.push(row),
                        None => gone.push(k.clone()),
                    }
                }
                rows_sent += rows.len() + gone.len();
                if let Some(slot) = upsert_rows.iter_mut().find(|(t, _)| t.name == def.name) {
                    slot.1.extend(rows);
                }
                deletes.push(statements::deletes(def, &gone, &guard, limits)?);
            }
            // A row is sent as it is now, and may reference a row written after this batch's
            // last change (its change comes in a later batch): that row comes along, or the
            // replica's foreign key would refuse the batch.
            rows_sent += self.referenced_rows(&mut upsert_rows, pending.hi)?;
            let mut upserts: Vec<Statement> = Vec::new();
            for (def, rows) in upsert_rows {
                if !rows.is_empty() {
                    let referenced = super::is_referenced(tables, def);
                    upserts.extend(statements::upserts(def, rows, referenced, &guard, limits));
                }
            }
            let mut stmts: Vec<Statement> = deletes.into_iter().rev().flatten().collect();
            stmts.extend(upserts);
            if stmts.len() + 2 > limits.max_statements && limit > 1 {
                limit = (limit / 2).max(1);
                continue;
            }
            let watermark = if self.resync_in_progress()? {
                Watermark::Keep
            } else {
                Watermark::AtLeast(pending.hi)
            };
            stmts.push(statements::room_update(
                &guard,
                watermark,
                self.primary.scheduler.now_ms(),
            ));
            break (stmts, pending.hi, rows_sent, read_seq);
        };

        // In a session on D1's primary: its bookmark after the batch is where a read that must
        // see these changes can start.
        let (results, bookmark) = match replica
            .session_batch(crate::replica::SessionStart::Primary, &stmts)
            .await
        {
            Ok(r) => (r.rows, r.bookmark),
            Err(e) => return Err(self.refused(replica, as_replica(e), read_seq).await),
        };
        match self.applied(&results, read_seq) {
            Some(state) => {
                if bookmark.is_some() {
                    *self.bookmark.borrow_mut() = bookmark;
                }
                self.mark_applied(hi);
                self.record_success(rows_sent, &state);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A batch failed. When the replica refuses it the same way on
    /// [`super::SyncConfig::block_after_refusals`] attempts in a row (by its SQLite code, whatever
    /// the message says), say so in the room's health (the oldest change waiting, and why) and
    /// mark the room in the replica so its reads go to the primary. When the room's sync has
    /// failed for longer than [`super::SyncConfig::stale_after_ms`], for any reason, mark it
    /// stale there likewise. The changes stay queued and retried either way.
    pub(crate) async fn refused(&self, replica: &R, e: Error, read_seq: i64) -> Error {
        let now = self.primary.scheduler.now_ms();
        let refusal = super::refusal_of(&e);
        let (block, stale) = {
            let mut st = self.stats.borrow_mut();
            st.refusal = match (refusal, st.refusal.take()) {
                (Some(r), Some((last, n))) if r == last => Some((r, n.saturating_add(1))),
                (Some(r), _) => Some((r, 1)),
                (None, _) => None,
            };
            let since = *st.failing_since.get_or_insert(now);
            let block = st
                .refusal
                .as_ref()
                .is_some_and(|(_, n)| *n >= self.config.block_after_refusals.max(1));
            let stale = !block
                && !st.stale
                && self
                    .config
                    .stale_after_ms
                    .is_some_and(|ms| now.saturating_sub(since) >= ms as i64);
            (block, stale)
        };
        if !block && !stale {
            return e;
        }
        if block {
            let oldest = self
                .primary
                .query(
                    "SELECT MIN(\"seq\") FROM \"_nt_outbox\" WHERE \"seq\" > ?1 AND \"tbl\" <> ''",
                    &[Value::Integer(self.primary.applied.get())],
                )
                .ok()
                .and_then(|rows| match rows.first().and_then(|r| r.first()) {
                    Some(Value::Integer(s)) => Some(*s),
                    _ => None,
                })
                .unwrap_or(read_seq);
            let mut st = self.stats.borrow_mut();
            let since = st.blocked.as_ref().map_or(now, |b| b.since);
            st.blocked = Some(super::Blocked {
                reason: e.to_string(),
                code: e.sql().and_then(|f| f.code.clone()),
                seq: oldest,
                since,
            });
        }
        // Best effort: if even this fails, the replica is down, not refusing (and its reads
        // fail over to the primary by themselves).
        let mark = if block {
            statements::mark_blocked(&self.guard(read_seq))
        } else {
            statements::mark_stale(&self.guard(read_seq))
        };
        if replica.batch(&[mark]).await.is_ok() && stale {
            self.stats.borrow_mut().stale = true;
        }
        e
    }

    /// The room state read back at the end of a batch, if the batch applied under this primary.
    /// Otherwise the replica's record of the room changed under us (wiped, tampered with, or
    /// claimed by another primary): the start-up check runs again and resyncs.
    pub(crate) fn applied(&self, results: &[Vec<Row>], read_seq: i64) -> Option<RoomState> {
        let state = results.last().and_then(|rows| RoomState::from_rows(rows));
        match state {
            Some(s) if s.primary_id == *self.primary_id.borrow() && s.read_seq == read_seq => {
                Some(s)
            }
            _ => {
                self.started.set(false);
                self.again.set(true);
                None
            }
        }
    }

    /// The replica applied every change up to `hi`. The room records it when the current drain
    /// ends ([`Engine::trim_applied`]): one primary commit per drain, not per batch. If the
    /// host dies first, the replica's watermark says the same on the next start.
    pub(crate) fn mark_applied(&self, hi: i64) {
        if hi > self.primary.applied.get() {
            self.primary.applied.set(hi);
        }
    }

    /// Record in the room that the outbox records known applied may be taken by later changes:
    /// in the health row the sync writes when it ends (one row written for both).
    pub(crate) fn trim_applied(&self) -> Result<()> {
        let through = self.primary.applied.get();
        if through > self.trimmed_through.get() {
            crate::outbox::trim(&self.primary, through, self.primary.outbox_keep())?;
            self.trimmed_through.set(through);
            self.stats.borrow_mut().outbox_applied = through;
            self.stats_pending.set(true);
        }
        Ok(())
    }
}
