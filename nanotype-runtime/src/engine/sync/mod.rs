//! The sync engine: replication from a room's SQLite (primary) to the shared replica (D1).
//!
//! * **Write path** ([`crate::write`]): a row change and its outbox record commit together.
//! * **Flush**: pending changes go in bounded batches; each row is sent in its
//!   current state (several writes to a row between flushes send it once); each batch is one
//!   replica transaction that also moves the room's watermark; only then may later changes take
//!   the outbox records it sent ([`crate::outbox`]).
//!   A failure drops nothing: the error is recorded and a retry scheduled with capped backoff.
//! * **Backfill / resync**: keyset-paged copies of a room's tables, resumable
//!   after a crash, correct while writes continue; a resync also deletes replica rows the
//!   primary does not have.
//! * **Reads** ([`EngineReads`]): room-scoped, with a consistency mode and fallback to the primary.
//! * **Health** ([`Health`]).
//!
//! # Replication metadata
//! In the primary: `_nt_outbox(seq, tbl, pk, at)`, `_nt_meta` (room id, primary
//! id, resync flag) and `_nt_backfill(tbl, cursor, done)`. In the replica, one `_nt_rooms` row per
//! room: `watermark` (every change with `seq <= watermark` is applied), `read_seq` (the primary's
//! seq when the newest applied batch was read: every batch is guarded by `read_seq <= its own`, so
//! a duplicated or late batch changes nothing) and `primary_id` (which primary owns the room: a
//! replaced or restored primary resyncs).
//!
//! ```
//! # #[cfg(feature = "native")] {
//! use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
//! use nanotype::sync::{Engine, SyncConfig};
//! use nanotype::{Consistency, Page, Primary};
//!
//! #[nanotype::table(name = "notes")]
//! #[derive(Debug, Clone, PartialEq)]
//! struct Note { #[nanotype(primary_key)] id: i64, text: String }
//!
//! let replica = NativeReplica::open_in_memory().unwrap();
//! replica.execute_batch(nanotype::schema::ddl::REPLICA_META).unwrap();
//! replica.execute_batch(Note::REPLICA_DDL).unwrap();
//! let primary = NativePrimary::open_in_memory().unwrap();
//! primary.execute_batch(Note::PRIMARY_DDL).unwrap();
//!
//! let engine = Engine::builder("room-1")
//!     .tables(vec![Note::table_def()])
//!     .replica(Some(replica))
//!     .open(primary, ManualScheduler::new())
//!     .unwrap();
//! pollster::block_on(async {
//!     engine.sync().await.unwrap();
//!     Note::insert(engine.primary(), &Note { id: 0, text: "hi".into() }).unwrap();
//!     // The write armed the delivery alarm; the host syncs now (fast path) or when it fires.
//!     assert_eq!(engine.scheduler().pending(), Some(SyncConfig::default().delivery_delay_ms));
//!     engine.sync().await.unwrap();
//!     let notes = Note::room_list(&engine.reads(Consistency::Replica), "room-1", &Page::first(10)).await.unwrap();
//!     assert_eq!(notes.len(), 1);
//! });
//! # }
//! ```

mod audit;
mod backfill;
mod flush;
mod health;
pub mod moves;
mod reads;
pub(crate) mod statements;

use std::cell::{Cell, RefCell};

use crate::clock::Scheduler;
use crate::error::{Error, Result};
use crate::feed::{FeedConfig, Message};
use crate::outbox;
use crate::primary::Primary;
use crate::read::check_room;
use crate::registry::TableEntry;
use crate::replica::Replica;
use crate::value::{Row, Value};
use nanotype_schema::Table as TableDef;
use serde_json::Value as Json;

pub use audit::AuditReport;
pub use health::Health;
pub use reads::{EngineReads, Source};
pub use statements::{Limits, RoomState};

/// Tuning of the engine.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// D1's limits and batch bounds.
    pub limits: Limits,
    /// Outbox records read per flush batch.
    pub max_changes_per_batch: usize,
    /// Rows per backfill page.
    pub backfill_page: usize,
    /// First retry delay after a failure.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_cap_ms: u64,
    /// Each failed retry waits up to this fraction less than its backoff (0 to 1), so rooms that
    /// failed together do not retry together.
    pub backoff_jitter: f64,
    /// Health turns unhealthy when the oldest unsynced change is older than this.
    pub max_healthy_age_ms: i64,
    /// How long after a write its flush starts, so that the writes of that window share one
    /// replica batch (the fast path; the Durable Object runs it after the response).
    pub flush_window_ms: u64,
    /// The delivery guarantee: every committed write arms the alarm this long after it (unless an
    /// earlier alarm is set), so it reaches the replica even if the host is evicted or dies
    /// before the fast path ran. Keep it above `flush_window_ms`.
    pub delivery_delay_ms: u64,
    /// The shortest time between two audits of the room by its alarm (anti-entropy, 5 min);
    /// `None`: only on request. An audit reads every row of the room once on each side, so a
    /// larger room waits longer ([`SyncConfig::audit_period_ms`]).
    pub audit_interval_ms: Option<u64>,
    /// How long the room waits after an audit per row it compared (120 ms): an audit of N rows
    /// reads 2N rows, and rows read cost a thousandth of a row written, so at this pace audits
    /// cost a room at most one row written per minute.
    pub audit_ms_per_row: u64,
    /// The longest time between two audits, however large the room (6 h).
    pub audit_max_interval_ms: u64,
    /// A change the replica refuses this many attempts in a row with the same code (a
    /// constraint, a missing table or column, a value too big or of the wrong type:
    /// [`crate::error::SqlKind::is_permanent`]) parks the room as [`Blocked`].
    pub block_after_refusals: u32,
    /// When the room's replication has failed for this long (blocked or not), the room is
    /// marked stale in the replica and its replica reads go to the primary until a batch
    /// applies again; `None`: never.
    pub stale_after_ms: Option<u64>,
}

impl Default for SyncConfig {
    fn default() -> SyncConfig {
        SyncConfig {
            limits: Limits::default(),
            max_changes_per_batch: 500,
            backfill_page: 500,
            backoff_base_ms: 250,
            backoff_cap_ms: 30_000,
            backoff_jitter: 0.2,
            max_healthy_age_ms: 30_000,
            flush_window_ms: 50,
            delivery_delay_ms: 2_000,
            audit_interval_ms: Some(5 * 60 * 1000),
            audit_ms_per_row: 120,
            audit_max_interval_ms: 6 * 60 * 60 * 1000,
            block_after_refusals: 2,
            stale_after_ms: Some(30_000),
        }
    }
}

impl SyncConfig {
    /// The time from one audit to the next for a room of `rows` rows:
    /// [`SyncConfig::audit_interval_ms`] at least, [`SyncConfig::audit_ms_per_row`] per row, at
    /// most [`SyncConfig::audit_max_interval_ms`]; `None` when audits run only on request.
    ///
    /// ```
    /// let c = nanotype::sync::SyncConfig::default();
    /// assert_eq!(c.audit_period_ms(100), Some(5 * 60_000)); // a small room: every 5 minutes
    /// assert_eq!(c.audit_period_ms(10_000), Some(20 * 60_000)); // 10,000 rows: every 20 minutes
    /// assert_eq!(c.audit_period_ms(10_000_000), Some(6 * 3_600_000)); // capped at 6 h
    /// ```
    pub fn audit_period_ms(&self, rows: u64) -> Option<u64> {
        let shortest = self.audit_interval_ms?;
        Some(
            rows.saturating_mul(self.audit_ms_per_row)
                .max(shortest)
                .min(self.audit_max_interval_ms.max(shortest)),
        )
    }
}

/// The engine's counters. Kept in the room's SQLite (`_nt_meta`, key `health`): failures and
/// recoveries at once, syncs that worked at most every [`HEALTH_EVERY_MS`] and when the health
/// is read, so health survives eviction and restarts; `replica_available` and
/// `next_retry_ms` describe this instance and start afresh.
#[derive(Default, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub(crate) struct Stats {
    /// The seq through which the replica has applied the outbox ([`crate::outbox::APPLIED_FIELD`],
    /// read by the capture triggers: records up to it may be taken by later changes).
    pub outbox_applied: i64,
    pub total_syncs: u64,
    pub sync_errors: u64,
    pub last_sync_time: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    #[serde(skip)]
    pub replica_available: bool,
    #[serde(skip)]
    pub next_retry_ms: Option<u64>,
    pub rows_sent: u64,
    #[serde(default)]
    pub blocked: Option<Blocked>,
    #[serde(default)]
    pub audit: Option<AuditReport>,
    /// When the last failure happened (ms since the epoch).
    #[serde(default)]
    pub last_error_at: Option<i64>,
    /// Since when the room's sync has been failing (cleared by a success).
    #[serde(default)]
    pub failing_since: Option<i64>,
    /// The kind and code of the refusals in a row, and how many.
    #[serde(default)]
    pub refusal: Option<(String, u32)>,
    /// The room is marked stale in the replica (its replica reads fall back).
    #[serde(default)]
    pub stale: bool,
}

/// A change the replica refuses for good (a table or column the D1 migrations have not created
/// yet, a row over D1's limits). The room's changes wait in the outbox in order, retried with
/// backoff, until the cause is fixed; replica reads of the room go to its primary meanwhile.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    /// The replica's refusal.
    pub reason: String,
    /// SQLite's result code of the refusal, when the replica gave one.
    #[serde(default)]
    pub code: Option<String>,
    /// The oldest change waiting behind it.
    pub seq: i64,
    /// Since when (ms since the epoch).
    pub since: i64,
}

/// The refusal a replica error is, when retrying alone cannot fix it: its kind and code, by
/// which consecutive refusals are compared ([`crate::error::SqlKind::is_permanent`]).
pub(crate) fn refusal_of(e: &Error) -> Option<String> {
    match e {
        Error::Replica(f) if f.kind.is_permanent() => {
            Some(format!("{:?}/{}", f.kind, f.code.as_deref().unwrap_or("")))
        }
        _ => None,
    }
}

/// One room's replication: its primary, the shared replica, and the scheduler for retries.
///
/// Open it with [`Engine::builder`]; write through [`Engine::primary`] (every committed write arms
/// the delivery alarm); call [`Engine::sync`] after writes and whenever the alarm fires.
pub struct Engine<P, R, S> {
    primary: RoomDb<P, S>,
    replica: Option<R>,
    room: String,
    primary_id: RefCell<String>,
    config: SyncConfig,
    /// A flush/backfill is running (single flight: they never overlap, so batches stay ordered).
    busy: Cell<bool>,
    /// Work arrived while busy: the running loop goes round again.
    again: Cell<bool>,
    /// The replica's room state was checked since start-up.
    started: Cell<bool>,
    /// The replica's watermark as last read back (only grows, except on resync).
    watermark: Cell<i64>,
    /// The replica's bookmark after the newest applied batch (D1's Sessions API), if it gave one.
    bookmark: RefCell<Option<String>>,
    /// Every registered table is copied and no resync is under way.
    backfill_idle: Cell<bool>,
    /// Whether a resync is under way, as last read from the primary.
    resync: Cell<Option<bool>>,
    /// Outbox records up to this seq are recorded as applied in the room (the health row's
    /// mark, which the capture triggers read).
    trimmed_through: Cell<i64>,
    stats: RefCell<Stats>,
    /// The counters changed since they were last stored, in a way worth a row now: a failure,
    /// a recovery, an audit.
    stats_changed: Cell<bool>,
    /// Only the routine counters changed (a sync that worked, the applied mark): stored at most
    /// every [`HEALTH_EVERY_MS`], when the mark moved [`outbox::KEEP`] / 2, or when the health
    /// is read.
    stats_pending: Cell<bool>,
    /// When the counters were last stored (the scheduler's clock), and the mark they stored.
    stats_stored: Cell<(i64, i64)>,
    /// An audit is asked for: the next sync runs one.
    audit_requested: Cell<bool>,
    /// State of the retry jitter's generator.
    jitter: Cell<u64>,
    /// Replaced by another engine of the same room (a move to another shard): syncs nothing
    /// more, so that no change goes to the old shard after the new one's copy began.
    retired: Cell<bool>,
}

/// The room's database as the engine hands it out ([`Engine::primary`]). It is the primary, plus
/// two duties of the write path: a write to a table outside the schema is refused
/// ([`Error::UnregisteredTable`]), and every committed write arms the delivery alarm
/// ([`SyncConfig::delivery_delay_ms`]) before the write returns, so before any response leaves.
pub struct RoomDb<P, S> {
    inner: P,
    scheduler: S,
    tables: Vec<&'static TableDef>,
    delivery_delay_ms: u64,
    written: Cell<bool>,
    feed: Option<Feed>,
    /// Feed messages of the write transaction in progress.
    staged: RefCell<Vec<(i64, String)>>,
    /// Transactions open (they nest).
    depth: Cell<u32>,
    /// Feed messages of committed writes, not yet sent.
    ready: RefCell<Vec<(i64, String)>>,
    /// The newest seq the feed has staged: the outbox records after it are not fed yet.
    logged_through: Cell<i64>,
    /// The seq through which the replica has applied the outbox, as the engine knows it (the
    /// room records it later, in the health row, so that later changes may take the records).
    applied: Cell<i64>,
}

/// The feed's settings and how to turn a stored row into its struct's JSON.
#[derive(Clone)]
struct Feed {
    config: FeedConfig,
    table: fn(&str) -> Option<&'static TableEntry>,
}

impl<P, S> RoomDb<P, S> {
    /// The underlying database (for what the [`Primary`] trait does not cover).
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Whether a write committed since the last call (the host then schedules the fast flush).
    pub fn take_written(&self) -> bool {
        self.written.replace(false)
    }

    /// The applied outbox records the flush keeps after a lag: more when the feed keeps them
    /// for its clients.
    pub(crate) fn outbox_keep(&self) -> i64 {
        outbox::keep(self.feed.as_ref().map(|f| outbox::Retention::of(&f.config)))
    }

    /// The room's feed settings, when its feed is on ([`EngineBuilder::feed`]).
    pub fn feed_config(&self) -> Option<&FeedConfig> {
        self.feed.as_ref().map(|f| &f.config)
    }

    /// The feed messages of the writes committed since the last call, in seq order: the host
    /// sends them to the room's WebSocket clients.
    pub fn take_feed(&self) -> Vec<(i64, String)> {
        let mut ready = std::mem::take(&mut *self.ready.borrow_mut());
        nanotype_schema::sort::sort_by_key(&mut ready, |(seq, _)| *seq);
        ready
    }

    /// Put in the feed the changes the capture triggers recorded outside the generated writes
    /// (raw SQL of a custom route or a timer), with their rows as they are now: the host calls
    /// it after running app code (a custom route, the timers) and before a client catches up.
    /// A generated write does the same inside its own transaction, so what it cascades to is
    /// fed with it. One read of the outbox records after the last change fed (usually none);
    /// nothing when the feed is off.
    pub fn feed_captured(&self) -> Result<()>
    where
        P: Primary,
        S: Scheduler,
    {
        if self.feed.is_none() {
            return Ok(());
        }
        self.transaction(|| self.log_captured(None))
    }

    /// What a feed client connecting with `since` gets first ([`crate::feed::catch_up`]): the
    /// room's changes after it, read from the outbox (the room's one change log) with each row as
    /// it is now, then [`Message::Live`]; or a [`Message::Reset`] when the log no longer holds
    /// them all, `since` is `None` or ahead of `current` (the room's seq), or the feed is off.
    pub(crate) fn catch_up(&self, since: Option<i64>, current: i64) -> Result<Vec<Message>>
    where
        P: Primary,
    {
        let reset = |reason: &str| {
            Ok(vec![Message::Reset {
                seq: current,
                reason: reason.to_owned(),
            }])
        };
        let Some(feed) = &self.feed else {
            return reset("the room's feed is off: load a snapshot");
        };
        let Some(since) = since else {
            return reset("no seq given: load a snapshot");
        };
        if since > current {
            return reset("the seq given is ahead of the room (a different room, or a reset one)");
        }
        const GONE: &str = "the changes after that seq are no longer kept: load a snapshot";
        let records = if since < current {
            // The oldest record kept must be the one right after `since` or older: otherwise
            // later changes took the records the client needs.
            let oldest = self
                .inner
                .query("SELECT MIN(\"seq\") FROM \"_nt_outbox\"", &[])?;
            match oldest.first().and_then(|r| r.first()) {
                Some(Value::Integer(s)) if *s <= since + 1 => {}
                _ => return reset(GONE),
            }
            self.inner.query(
                "SELECT \"seq\", \"tbl\", \"pk\" FROM \"_nt_outbox\" WHERE \"seq\" > ?1 \
                 ORDER BY \"seq\"",
                &[Value::Integer(since)],
            )?
        } else {
            Vec::new()
        };
        // Every seq from `since + 1` to `current` must be there, once: a client applies them in
        // order and cannot tell a missing change from one that never happened. A row changed
        // several times is read once, as it is now.
        let mut out: Vec<Message> = Vec::with_capacity(records.len() + 1);
        let mut rows: std::collections::BTreeMap<(String, String), Option<Json>> =
            std::collections::BTreeMap::new();
        let mut expect = since + 1;
        for record in records {
            let (Some(Value::Integer(seq)), Some(Value::Text(table)), Some(key)) =
                (record.first(), record.get(1), record.get(2))
            else {
                return reset("the room's change log holds an unreadable record: load a snapshot");
            };
            if *seq != expect {
                return reset("the changes after that seq are not all kept: load a snapshot");
            }
            let Some(entry) = (feed.table)(table) else {
                // A record of a table no longer in the schema (or a marker from before the ring).
                return reset(GONE);
            };
            let key_json = entry.sql().key_json(key);
            let slot = (table.clone(), key_json.to_string());
            let json = if let Some(json) = rows.get(&slot) {
                json.clone()
            } else {
                let row = self
                    .inner
                    .query(&entry.sql().get, &entry.sql().key_parts(key)?)?
                    .into_iter()
                    .next();
                let json = match row {
                    Some(row) => Some(entry.row_to_json(row)?),
                    None => None,
                };
                rows.insert(slot, json.clone());
                json
            };
            let text = crate::feed::change_text(
                *seq,
                table,
                key_json,
                json,
                feed.config.max_message_bytes,
            );
            out.push(Message::Change { seq: *seq, text });
            expect += 1;
        }
        if expect != current + 1 {
            return reset("the changes after that seq are not all kept: load a snapshot");
        }
        out.push(Message::Live { seq: current });
        Ok(out)
    }

    /// Stage for sending every outbox record after the last one fed, in seq order:
    /// the write's own change and everything its statement captured with it (cascaded deletes,
    /// rows an `INSERT OR REPLACE` removed, raw SQL before it). `own` is the write's table, key
    /// and stored row, so its row is not read again. Call inside a transaction.
    fn log_captured(&self, own: Option<(&str, &Value, Option<&Row>)>) -> Result<()>
    where
        P: Primary,
    {
        let Some(feed) = &self.feed else {
            return Ok(());
        };
        let records = self.inner.query(
            "SELECT \"seq\", \"tbl\", \"pk\" FROM \"_nt_outbox\" WHERE \"seq\" > ?1 \
             AND \"tbl\" <> '' ORDER BY \"seq\"",
            &[Value::Integer(self.logged_through.get())],
        )?;
        // The write's own record is its key's last one (an earlier one of the same key was
        // superseded by it, and reads the same row now).
        let own_seq = own.and_then(|(table, key, _)| {
            let entry = (feed.table)(table)?;
            let want = entry.sql().key_json(key);
            records
                .iter()
                .rev()
                .find_map(|r| match (r.first(), r.get(1), r.get(2)) {
                    (Some(Value::Integer(seq)), Some(Value::Text(t)), Some(pk))
                        if t == table && entry.sql().key_json(pk) == want =>
                    {
                        Some(*seq)
                    }
                    _ => None,
                })
        });
        for record in records {
            let (Some(Value::Integer(seq)), Some(Value::Text(table)), Some(key)) =
                (record.first(), record.get(1), record.get(2))
            else {
                continue;
            };
            let Some(entry) = (feed.table)(table) else {
                return Err(Error::UnregisteredTable {
                    table: table.clone(),
                });
            };
            let row = match own {
                Some((_, _, row)) if Some(*seq) == own_seq => row.cloned(),
                _ => self
                    .inner
                    .query(&entry.sql().get, &entry.sql().key_parts(key)?)?
                    .into_iter()
                    .next(),
            };
            let json = match row {
                Some(row) => Some(entry.row_to_json(row)?),
                None => None,
            };
            let text = crate::feed::change_text(
                *seq,
                table,
                entry.sql().key_json(key),
                json,
                feed.config.max_message_bytes,
            );
            self.logged_through.set(*seq);
            self.staged.borrow_mut().push((*seq, text));
        }
        Ok(())
    }
}

impl<P: Primary, S: Scheduler> Primary for RoomDb<P, S> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<crate::value::Row>> {
        self.inner.query(sql, params)
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.inner.execute(sql, params)
    }
    fn execute_batch(&self, sql: &str) -> Result<()> {
        self.inner.execute_batch(sql)
    }
    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let staged = self.staged.borrow().len();
        let logged = self.logged_through.get();
        self.depth.set(self.depth.get() + 1);
        let out = self.inner.transaction(f);
        self.depth.set(self.depth.get() - 1);
        if out.is_err() {
            // Rolled back: its changes never happened, so they are never sent.
            self.staged.borrow_mut().truncate(staged);
            self.logged_through.set(logged);
        } else if self.depth.get() == 0 {
            // Committed (an inner transaction commits only with the outermost one).
            let staged = std::mem::take(&mut *self.staged.borrow_mut());
            self.ready.borrow_mut().extend(staged);
        }
        out
    }
    fn hooks(&self) -> Option<&dyn crate::primary::WriteHooks> {
        Some(self)
    }
}

impl<P: Primary, S: Scheduler> crate::primary::WriteHooks for RoomDb<P, S> {
    fn check_table(&self, table: &str) -> Result<()> {
        if self.tables.iter().any(|t| t.name == table) {
            Ok(())
        } else {
            Err(Error::UnregisteredTable {
                table: table.to_owned(),
            })
        }
    }
    fn changed(&self) {
        self.written.set(true);
        self.scheduler.schedule(self.delivery_delay_ms);
    }
    fn clock_ms(&self) -> i64 {
        self.scheduler.now_ms()
    }
    fn caller(&self) -> Option<crate::api::Caller> {
        None
    }
    fn applied(&self) -> Option<i64> {
        Some(self.applied.get())
    }
    fn record(&self, _seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        if self.feed.is_some() {
            // The triggers recorded the change (and whatever it cascaded to) in the outbox:
            // every record after the last one fed is fed, so none is ever skipped.
            self.log_captured(Some((table, key, row)))?;
        }
        Ok(())
    }
}

/// `tables` with every referenced table before the tables that reference it (stable otherwise):
/// the order the replica receives upserts and backfills in; deletes go the other way.
fn dependency_order(mut tables: Vec<&'static TableDef>) -> Vec<&'static TableDef> {
    let mut out: Vec<&'static TableDef> = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables
            .iter()
            .position(|t| {
                t.columns.iter().all(|c| match &c.references {
                    Some(r) if r.table != t.name => {
                        out.iter().any(|o| o.name == r.table)
                            || !tables.iter().any(|o| o.name == r.table)
                    }
                    _ => true,
                })
            })
            // A cycle: take the rest as listed (the replica checks references at commit).
            .unwrap_or(0);
        out.push(tables.remove(ready));
    }
    out
}

/// Whether another table of `tables` references `def` (then the replica never replaces its
/// rows: a replaced row would take the rows referencing it along, by `ON DELETE CASCADE`).
pub(crate) fn is_referenced(tables: &[&'static TableDef], def: &TableDef) -> bool {
    tables.iter().any(|t| {
        t.name != def.name
            && t.columns
                .iter()
                .any(|c| c.references.as_ref().is_some_and(|r| r.table == def.name))
    })
}

/// Clears the single-flight flag when a sync ends, also when its future is dropped half-way.
struct InFlight<'a>(&'a Cell<bool>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Options of [`Engine::builder`]: the tables (or a whole [`crate::Schema`]), the replica and
/// the tuning; [`EngineBuilder::open`] opens the engine.
pub struct EngineBuilder<R> {
    room: String,
    tables: Vec<&'static TableDef>,
    entries: Option<fn(&str) -> Option<&'static TableEntry>>,
    feed: Option<FeedConfig>,
    replica: Option<R>,
    config: SyncConfig,
}

impl<R> EngineBuilder<R> {
    /// Replicate the tables of `S`, in its order.
    pub fn schema<Sc: crate::Schema>(mut self) -> Self {
        self.tables = Sc::defs();
        self.entries = Some(Sc::table);
        self
    }

    /// Turn the room's change feed on (or off with `None`): every write is also sent to the
    /// room's WebSocket clients, and the outbox keeps the feed's retention of changes for those
    /// that reconnect ([`crate::feed`]). Needs [`EngineBuilder::schema`].
    pub fn feed(mut self, feed: Option<FeedConfig>) -> Self {
        self.feed = feed;
        self
    }

    /// Replicate these tables (the schema's list, given by hand).
    pub fn tables(mut self, tables: Vec<&'static TableDef>) -> Self {
        self.tables = tables;
        self
    }

    /// The shared replica (none: changes queue in the outbox and reads use the primary).
    pub fn replica(mut self, replica: Option<R>) -> Self {
        self.replica = replica;
        self
    }

    /// Tuning (defaults: [`SyncConfig::default`]).
    pub fn config(mut self, config: SyncConfig) -> Self {
        self.config = config;
        self
    }

    /// Open the engine over an already-migrated primary. Installs the engine's own tables,
    /// stores the room id (refusing a different one: a primary holds exactly one room) and
    /// registers the tables for replication.
    pub fn open<P: Primary, S: Scheduler>(self, primary: P, scheduler: S) -> Result<Engine<P, R, S>>
    where
        R: Replica,
    {
        let feed = match (self.feed, self.entries) {
            (None, _) => None,
            (Some(config), Some(table)) => Some(Feed { config, table }),
            (Some(_), None) => {
                return Err(Error::Rejected(
                    "the feed needs the schema (`.schema::<App>()`), not a table list".into(),
                ))
            }
        };
        Engine::open(
            primary,
            self.replica,
            scheduler,
            &self.room,
            self.tables,
            self.config,
            feed,
        )
    }
}

const META_ROOM: &str = "room_id";
const META_PRIMARY_ID: &str = "primary_id";
const META_RESYNC: &str = "resync";
pub(crate) const META_HEALTH: &str = "health";
/// How often, at most, syncs that worked store the health row (ms): a failure or a recovery is
/// stored at once, and reading the health stores what is pending.
const HEALTH_EVERY_MS: i64 = 10_000;
const META_SHARD: &str = "shard";
const META_MOVE_FROM: &str = "move_from";

/// The room id the engine stored in this primary, if any (a Durable Object's `alarm` gets no
/// request to learn it from). Reads only: asking about a room never written leaves no trace.
pub fn stored_room<P: Primary>(db: &P) -> Result<Option<String>> {
    let engine_tables = db.query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_nt_meta'",
        &[],
    )?;
    if engine_tables.is_empty() {
        return Ok(None);
    }
    meta_get(db, META_ROOM)
}

/// The shard (D1 binding) the room in `db` replicates to, if it has recorded one.
pub fn stored_shard<P: Primary>(db: &P) -> Result<Option<String>> {
    if stored_room(db)?.is_none() {
        return Ok(None);
    }
    meta_get(db, META_SHARD)
}

/// The shard the room in `db` is moving away from, while its move is under way.
pub fn stored_move_from<P: Primary>(db: &P) -> Result<Option<String>> {
    if stored_room(db)?.is_none() {
        return Ok(None);
    }
    meta_get(db, META_MOVE_FROM)
}

/// Record that the room in `db` is moving away from `from` (`None`: the move is over).
pub fn store_move_from<P: Primary>(db: &P, from: Option<&str>) -> Result<()> {
    if let Some(from) = from {
        return meta_set(db, META_MOVE_FROM, from);
    }
    db.query(
        "DELETE FROM \"_nt_meta\" WHERE \"key\" = ?1",
        &[Value::Text(META_MOVE_FROM.into())],
    )?;
    Ok(())
}

/// Record the shard the room in `db` replicates to (the engine's tables exist).
pub fn store_shard<P: Primary>(db: &P, shard: &str) -> Result<()> {
    meta_set(db, META_SHARD, shard)
}

/// The replica's watermark for `room`: every change with a seq up to it is applied (0 when the
/// replica has not seen the room).
pub async fn replica_watermark<R: Replica>(replica: &R, room: &str) -> Result<i64> {
    check_room(room)?;
    let rows = replica.query(&statements::room_state(room)).await?;
    Ok(RoomState::from_rows(&rows).map_or(0, |s| s.watermark))
}

/// The replica's record of `room` (`None` when the replica has not seen it): what the gateway
/// reads in the same transaction as a replica read's rows.
pub async fn replica_room_state<R: Replica>(replica: &R, room: &str) -> Result<Option<RoomState>> {
    check_room(room)?;
    let rows = replica.query(&statements::room_state(room)).await?;
    Ok(RoomState::from_rows(&rows))
}

pub(crate) fn meta_get<P: Primary>(db: &P, key: &str) -> Result<Option<String>> {
    let rows = db.query(
        "SELECT \"value\" FROM \"_nt_meta\" WHERE \"key\" = ?1",
        &[Value::Text(key.into())],
    )?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .and_then(|v| match v {
            Value::Text(s) => Some(s),
            Value::Integer(i) => Some(i.to_string()),
            _ => None,
        }))
}

pub(crate) fn meta_set<P: Primary>(db: &P, key: &str, value: &str) -> Result<()> {
    // `query`, not `execute`: no change count is needed, and the Durable Object's backend pays
    // a statement for one (this runs for the health row).
    db.query(
        "INSERT INTO \"_nt_meta\" (\"key\", \"value\") VALUES (?1, ?2) ON CONFLICT (\"key\") DO UPDATE SET \"value\" = excluded.\"value\"",
        &[Value::Text(key.into()), Value::Text(value.into())],
    )?;
    Ok(())
}

fn new_primary_id(room: &str, now_ms: i64, seq: i64) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(room.as_bytes());
    h.update(now_ms.to_le_bytes());
    h.update(seq.to_le_bytes());
    let addr = &raw const h as usize;
    h.update(addr.to_le_bytes());
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<R> Engine<(), R, ()> {
    /// Start opening the engine of `room`.
    ///
    /// ```
    /// # #[nanotype::table(name = "tasks")]
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # pub struct Task { #[nanotype(primary_key)] pub id: i64 }
    /// # nanotype::schema!(App = [Task]);
    /// use std::rc::Rc;
    /// use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
    /// use nanotype::{sync::Engine, Primary};
    ///
    /// let primary = NativePrimary::open_in_memory()?;
    /// primary.execute_batch(Task::PRIMARY_DDL)?;
    /// let d1 = NativeReplica::open_in_memory()?;
    /// let engine = Engine::builder("room-1")
    ///     .schema::<App>()
    ///     .replica(Some(d1))
    ///     .open(primary, Rc::new(ManualScheduler::new()))?;
    /// assert_eq!(engine.room(), "room-1");
    /// # Ok::<(), nanotype::Error>(())
    /// ```
    pub fn builder(room: &str) -> EngineBuilder<R> {
        EngineBuilder {
            room: room.to_owned(),
            tables: Vec::new(),
            entries: None,
            feed: None,
            replica: None,
            config: SyncConfig::default(),
        }
    }
}

impl<P: Primary, R: Replica, S: Scheduler> Engine<P, R, S> {
    fn open(
        primary: P,
        replica: Option<R>,
        scheduler: S,
        room: &str,
        tables: Vec<&'static TableDef>,
        config: SyncConfig,
        feed: Option<Feed>,
    ) -> Result<Self> {
        check_room(room)?;
        if tables.is_empty() {
            return Err(Error::Rejected(
                "the engine has no tables: give it the schema (`.schema::<App>()`)".into(),
            ));
        }
        for (i, t) in tables.iter().enumerate() {
            if tables[..i].iter().any(|o| o.name == t.name) {
                return Err(Error::Rejected(format!(
                    "table `{}` is listed twice",
                    t.name
                )));
            }
        }
        let owned: Vec<TableDef> = tables.iter().map(|t| (*t).clone()).collect();
        let problems: Vec<String> = nanotype_schema::check::check_schema(&owned)
            .into_iter()
            .map(|(_, p)| p.message)
            .collect();
        if !problems.is_empty() {
            return Err(Error::Rejected(problems.join("; ")));
        }
        let tables = dependency_order(tables);
        outbox::install(&primary)?;
        // What the room last recorded as applied: records up to it are not sent again.
        let applied = outbox::applied(&primary)?;
        crate::capture::install(
            &primary,
            &tables,
            feed.as_ref().map(|f| outbox::Retention::of(&f.config)),
        )?;
        let primary_id = primary.transaction(|| {
            match meta_get(&primary, META_ROOM)? {
                Some(own) if own != room => {
                    return Err(Error::WrongRoom { asked: room.to_owned(), own });
                }
                Some(_) => {}
                None => meta_set(&primary, META_ROOM, room)?,
            }
            let id = if let Some(id) = meta_get(&primary, META_PRIMARY_ID)? { id } else {
                let id = new_primary_id(room, scheduler.now_ms(), outbox::current_seq(&primary)?);
                meta_set(&primary, META_PRIMARY_ID, &id)?;
                id
            };
            for t in &tables {
                primary.execute(
                    "INSERT INTO \"_nt_backfill\" (\"tbl\", \"cursor\", \"done\") VALUES (?1, NULL, 0) ON CONFLICT (\"tbl\") DO NOTHING",
                    &[Value::Text(t.name.to_string())],
                )?;
            }
            Ok(id)
        })?;
        let replica_available = replica.is_some();
        // Counters of earlier instances: health is monotonic across evictions and restarts.
        let stored_stats: Stats = meta_get(&primary, META_HEALTH)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let now_ms = scheduler.now_ms();
        let seed = primary_id
            .bytes()
            .fold(scheduler.now_ms() as u64 | 1, |h, b| {
                h.rotate_left(5) ^ u64::from(b)
            });
        // Live messages start at the room's seq: changes the triggers captured before it and
        // never fed (a host that died between a raw write and its `feed_captured`) reach a
        // client when it resumes from the log, which is the outbox itself.
        let logged_through = match &feed {
            None => 0,
            Some(_) => outbox::current_seq(&primary)?,
        };
        let primary = RoomDb {
            inner: primary,
            scheduler,
            tables,
            delivery_delay_ms: config.delivery_delay_ms,
            written: Cell::new(false),
            feed,
            staged: RefCell::new(Vec::new()),
            depth: Cell::new(0),
            logged_through: Cell::new(logged_through),
            applied: Cell::new(applied),
            ready: RefCell::new(Vec::new()),
        };
        Ok(Engine {
            primary,
            replica,
            room: room.to_owned(),
            primary_id: RefCell::new(primary_id),
            config,
            busy: Cell::new(false),
            again: Cell::new(false),
            started: Cell::new(false),
            watermark: Cell::new(0),
            bookmark: RefCell::new(None),
            backfill_idle: Cell::new(false),
            resync: Cell::new(None),
            trimmed_through: Cell::new(applied),
            stats: RefCell::new(Stats {
                replica_available,
                outbox_applied: applied,
                ..stored_stats
            }),
            stats_changed: Cell::new(false),
            stats_pending: Cell::new(false),
            stats_stored: Cell::new((now_ms, applied)),
            retired: Cell::new(false),
            audit_requested: Cell::new(false),
            jitter: Cell::new(seed | 1),
        })
    }

    /// The room's database: pass it to generated writes (`Task::insert(engine.primary(), ..)`).
    pub fn primary(&self) -> &RoomDb<P, S> {
        &self.primary
    }

    /// The replica, if one is configured.
    pub fn replica(&self) -> Option<&R> {
        self.replica.as_ref()
    }

    /// The scheduler (the engine's alarm and clock).
    pub fn scheduler(&self) -> &S {
        &self.primary.scheduler
    }

    /// The tables the engine replicates.
    pub fn tables(&self) -> &[&'static TableDef] {
        &self.primary.tables
    }

    /// The room this engine replicates.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The engine's tuning.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// The newest seq assigned in this room: what a read-your-writes read waits for.
    pub fn current_seq(&self) -> Result<i64> {
        outbox::current_seq(&self.primary)
    }

    /// The replica's watermark as last seen by this engine.
    pub fn known_watermark(&self) -> i64 {
        self.watermark.get()
    }

    /// Stop this engine's replication for good: a batch in flight completes (and trims only what
    /// it sent), no sync starts or goes round again. For a room whose host opened another engine
    /// over the same database.
    pub fn retire(&self) {
        self.retired.set(true);
    }

    /// The replica's bookmark after the newest batch this engine applied: a session that starts
    /// at it sees every change up to [`Self::known_watermark`] (`None` until a batch applied on
    /// a backend with bookmarks).
    pub fn bookmark(&self) -> Option<String> {
        self.bookmark.borrow().clone()
    }

    /// Whether a full resync is under way (replica reads fall back to the primary meanwhile).
    pub fn resync_in_progress(&self) -> Result<bool> {
        // Asked on every flush and every replica read: kept in memory, loaded once.
        if let Some(known) = self.resync.get() {
            return Ok(known);
        }
        let on = matches!(
            meta_get(&self.primary, META_RESYNC)?.as_deref(),
            Some("1" | "2")
        );
        self.resync.set(Some(on));
        Ok(on)
    }

    /// The persisted resync state is about to change: load it again next time.
    pub(crate) fn resync_changed(&self) {
        self.resync.set(None);
        self.backfill_idle.set(false);
    }

    /// Mark a full resync of this room: every table is copied again and replica rows the primary
    /// does not have are deleted. Persisted, so it resumes after a restart. Run it with
    /// [`Engine::sync`] (or [`Engine::resync`]).
    pub fn request_resync(&self) -> Result<()> {
        self.primary.transaction(|| {
            self.resync_changed();
            meta_set(&self.primary, META_RESYNC, "1")?;
            self.primary.execute("UPDATE \"_nt_backfill\" SET \"cursor\" = NULL, \"done\" = 0", &[])?;
            for t in &self.primary.tables {
                self.primary.execute(
                    "INSERT INTO \"_nt_backfill\" (\"tbl\", \"cursor\", \"done\") VALUES (?1, NULL, 0) ON CONFLICT (\"tbl\") DO NOTHING",
                    &[Value::Text(t.name.to_string())],
                )?;
            }
            Ok(())
        })
    }

    /// Force a full resync now and run it to completion (or until the replica fails, in which
    /// case a retry is scheduled and the error returned).
    pub async fn resync(&self) -> Result<()> {
        self.request_resync()?;
        self.sync().await
    }

    /// Everything outstanding, in order: the start-up check of the replica's view of the room
    /// (new replica, another or restored primary → full resync), backfill/resync pages, then the
    /// outbox. Call it after writes (the fast path) and when the alarm fires (the guarantee).
    ///
    /// Single flight: a call while another runs makes that one go round again and returns at
    /// once, so batches never overlap or reorder. A failure drops nothing: it is recorded, a
    /// retry is scheduled with backoff and jitter, and the error returned.
    pub async fn sync(&self) -> Result<()> {
        if self.retired.get() {
            return Ok(());
        }
        if self.busy.get() {
            self.again.set(true);
            return Ok(());
        }
        self.busy.set(true);
        let mut out = {
            let _in_flight = InFlight(&self.busy);
            self.drive_inner().await
        };
        if let Err(e) = self.trim_applied() {
            out = out.and(Err(e));
        }
        let out = match out {
            Ok(()) => {
                let mut st = self.stats.borrow_mut();
                if st.consecutive_failures > 0 {
                    st.consecutive_failures = 0;
                    self.stats_changed.set(true);
                }
                st.next_retry_ms = None;
                Ok(())
            }
            Err(e) => {
                let e = match &self.replica {
                    Some(r) => e.of_replica(r).await,
                    None => e,
                };
                self.record_failure(&e);
                Err(e)
            }
        };
        // One row written per failure or recovery; for syncs that worked, at most one every
        // `HEALTH_EVERY_MS` — never per write.
        let stored = self.store_stats(false);
        out.and(stored)
    }

    /// Keep the counters in the room's SQLite: now if they changed in a way worth a row (or
    /// `force`, when someone reads them), and routine ones when [`HEALTH_EVERY_MS`] passed or
    /// the applied mark moved [`outbox::KEEP`] / 2 since the last store. A mark stored late only
    /// keeps records from being taken for a while (the ring grows, at no cost per write); the
    /// replica's watermark says how far it applied after a restart, so nothing is sent twice.
    pub(crate) fn store_stats(&self, force: bool) -> Result<()> {
        let pending = self.stats_pending.get();
        let now = self.primary.scheduler.now_ms();
        let (at, mark) = self.stats_stored.get();
        let applied = self.stats.borrow().outbox_applied;
        let due = pending
            && (force
                || now.saturating_sub(at) >= HEALTH_EVERY_MS
                || applied.saturating_sub(mark) >= outbox::KEEP / 2);
        if !self.stats_changed.get() && !due {
            return Ok(());
        }
        let json = serde_json::to_string(&*self.stats.borrow())
            .map_err(|e| Error::Primary(format!("health counters: {e}").into()))?;
        meta_set(&self.primary, META_HEALTH, &json)?;
        self.stats_changed.set(false);
        self.stats_pending.set(false);
        self.stats_stored.set((now, applied));
        Ok(())
    }

    async fn drive_inner(&self) -> Result<()> {
        let Some(replica) = self.replica.as_ref() else {
            return Err(Error::Replica("no replica is configured".into()));
        };
        // Bounded: a replica whose record of the room keeps changing under us is an error,
        // not a reason to spin.
        for _ in 0..64 {
            if self.retired.get() {
                return Ok(());
            }
            self.again.set(false);
            if !self.started.get() {
                self.check_room_state(replica).await?;
                self.started.set(true);
            }
            // Once nothing is left to copy the flush path skips the backfill table entirely;
            // `request_resync` clears this.
            if !self.backfill_idle.get() {
                while self.backfill_step(replica).await? {
                    self.primary.scheduler.yield_now().await;
                }
                self.backfill_idle.set(!self.backfill_pending()?);
            }
            while self.flush_step(replica).await? {}
            if self.audit_requested.get() {
                // Cleared only once it ran: a failed audit runs again with the retry.
                self.audit(replica).await?;
                self.audit_requested.set(false);
                if !self.backfill_idle.get() {
                    // The audit asked for a resync.
                    self.again.set(true);
                }
            }
            if !self.again.get() {
                return Ok(());
            }
        }
        Err(Error::Replica(
            format!(
                "the replica's record of room `{}` kept changing during sync",
                self.room
            )
            .into(),
        ))
    }

    fn record_failure(&self, e: &Error) {
        self.stats_changed.set(true);
        let mut st = self.stats.borrow_mut();
        st.sync_errors += 1;
        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
        st.last_error = Some(e.to_string());
        let now = self.primary.scheduler.now_ms();
        st.last_error_at = Some(now);
        st.failing_since.get_or_insert(now);
        if matches!(e, Error::Replica(_) | Error::ReplicaNotMigrated) {
            st.replica_available = false;
        }
        let exp = st.consecutive_failures.saturating_sub(1).min(20);
        let full = self
            .config
            .backoff_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.config.backoff_cap_ms);
        let delay = full
            - (full as f64 * self.config.backoff_jitter.clamp(0.0, 1.0) * self.unit_random())
                as u64;
        st.next_retry_ms = Some(delay);
        drop(st);
        self.primary.scheduler.schedule(delay);
    }

    /// A number in [0, 1) from a xorshift generator seeded per room (jitter needs no quality).
    fn unit_random(&self) -> f64 {
        let mut x = self.jitter.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn record_success(&self, rows: usize, state: &RoomState) {
        let mut st = self.stats.borrow_mut();
        // A recovery (or the end of a block) is stored at once; a routine success later.
        if st.blocked.is_some() || st.failing_since.is_some() || st.refusal.is_some() || st.stale {
            self.stats_changed.set(true);
        } else {
            self.stats_pending.set(true);
        }
        st.blocked = None;
        st.failing_since = None;
        st.refusal = None;
        // The batch raised the replica's watermark from -1 or -2 (`MAX`): reads go there again.
        st.stale = false;
        st.total_syncs += 1;
        st.rows_sent += rows as u64;
        st.last_sync_time = Some(self.primary.scheduler.now_ms());
        st.replica_available = true;
        drop(st);
        self.watermark.set(state.watermark.max(0));
    }

    /// Compare the replica's record of the room with this primary; mark a resync when they
    /// disagree.
    async fn check_room_state(&self, replica: &R) -> Result<()> {
        let rows = replica
            .query(&statements::room_state(&self.room))
            .await
            .map_err(as_replica)?;
        let seq = self.current_seq()?;
        match RoomState::from_rows(&rows) {
            None => self.request_resync()?,
            Some(state) if state.primary_id != *self.primary_id.borrow() => {
                self.request_resync()?;
            }
            Some(state) if state.read_seq > seq || state.watermark > seq => {
                // The primary is behind what the replica saw: it was restored from an earlier
                // point. It becomes a new primary identity and overwrites the room.
                let id = new_primary_id(&self.room, self.primary.scheduler.now_ms(), seq);
                meta_set(&self.primary, META_PRIMARY_ID, &id)?;
                *self.primary_id.borrow_mut() = id;
                self.request_resync()?;
            }
            Some(state) => {
                // Everything up to the watermark is applied: not sent again after a restart.
                self.watermark.set(state.watermark.max(0));
                self.mark_applied(state.watermark);
            }
        }
        Ok(())
    }

    pub(crate) fn guard(&self, read_seq: i64) -> statements::Guard {
        statements::Guard {
            room: self.room.clone(),
            primary_id: self.primary_id.borrow().clone(),
            read_seq,
        }
    }

    pub(crate) fn table(&self, name: &str) -> Option<&'static TableDef> {
        self.primary.tables.iter().copied().find(|t| t.name == name)
    }
}

/// Failures of the replica are `Error::Replica` (the change stays queued).
pub(crate) fn as_replica(e: Error) -> Error {
    match e {
        Error::Replica(_) => e,
        other => Error::Replica(other.to_string().into()),
    }
}
