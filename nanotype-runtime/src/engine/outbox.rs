//! The outbox: the room's one change log, in its own SQLite. Replication reads it from the
//! replica's watermark; the change feed ([`crate::feed`]) resumes its clients from it.
//!
//! A write records `(seq, table, key)` in the same statement as the row change (the capture
//! triggers, [`crate::capture`]). `seq` is the rowid, so records are read in seq order from any
//! point. The flush reads the rows' *current* state when it sends them, so several writes to one
//! row between flushes send the latest state once, and the outbox stays one small row per change.
//!
//! **One row written per change, never a delete.** The room stores how far the replica has
//! applied ([`APPLIED_FIELD`] of the engine's health row, written with the counters at most
//! every 10 s, not per change). A change takes the oldest record when the replica
//! has it, and gives it the next seq in place (`UPDATE … SET seq = MAX(seq) + 1`: one row
//! written, as an insert is); only when every record is still unsent does it insert a new one. So the outbox is a ring of about one batch of
//! records that grows by itself while the replica lags, and the change that a naive outbox pays
//! twice (its insert, and its delete once D1 has it) is paid once. Seq only grows: a record taken
//! is given `MAX(seq) + 1`, and the newest record is never deleted. After a long lag the flush
//! gives back the records beyond [`KEEP`] that the replica has.
//!
//! **The feed's log is the same records.** With the room's feed on, a change takes the oldest
//! record only once the ring also holds the feed's retention (`retain_changes` records, or the
//! oldest is older than `retain_ms`): the ring grows to that size once and then turns in place,
//! still one row written per change, and a resuming client reads the records after its seq with
//! the rows as they are now. The feed adds no row per write.

use crate::error::Result;
use crate::primary::Primary;
use crate::value::Value;

const APPEND: &str =
    "INSERT INTO \"_nt_outbox\" (\"tbl\", \"pk\") VALUES (?1, ?2) RETURNING \"seq\"";

/// Where the room records the seq through which the replica has applied its changes: a field of
/// the engine's health row (`_nt_meta`, key `health`), so that a sync writes one row for both.
pub const APPLIED_FIELD: &str = "outbox_applied";

/// That seq, in SQL (`NULL` when the room has recorded none, or its health row is unreadable).
const APPLIED_SQL: &str = "(SELECT json_extract(\"value\", '$.outbox_applied') FROM \"_nt_meta\" \
     WHERE \"key\" = 'health' AND json_valid(\"value\"))";

/// Records the flush keeps after a lag, once the replica has them: beyond these, applied records
/// are deleted (one row written each), so a ring grown while D1 was down shrinks back.
pub const KEEP: i64 = 1024;

/// Create the runtime's tables in the room's SQLite if they are missing
/// ([`crate::meta::PRIMARY_DDL`]), and the applied mark: in a room whose outbox predates it,
/// everything before its oldest unsent record (the ones marked with an empty `tbl` are sent).
pub fn install<P: Primary>(db: &P) -> Result<()> {
    db.execute_batch(crate::meta::PRIMARY_DDL)?;
    let before = "COALESCE((SELECT MIN(\"seq\") - 1 FROM \"_nt_outbox\" WHERE \"tbl\" <> ''), \
                  (SELECT MAX(\"seq\") FROM \"_nt_outbox\"), 0)";
    db.execute(
        &format!(
            "INSERT INTO \"_nt_meta\" (\"key\", \"value\") \
             VALUES ('health', json_object('{APPLIED_FIELD}', {before})) \
             ON CONFLICT (\"key\") DO UPDATE SET \"value\" = \
             json_set(\"value\", '$.{APPLIED_FIELD}', {before}) \
             WHERE json_valid(\"value\") AND json_extract(\"value\", '$.{APPLIED_FIELD}') IS NULL"
        ),
        &[],
    )?;
    Ok(())
}

/// What the ring keeps for the change feed's resuming clients, when the room's feed is on
/// ([`crate::feed::FeedConfig::retain_changes`] and `retain_ms`): a record the replica has is
/// taken by a later change only once the ring holds `changes` records, or once it is older
/// than `ms`. Without it, a record is taken as soon as the replica has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retention {
    /// Records kept at least (while they are younger than `ms`).
    pub changes: i64,
    /// Age in ms past which the oldest record is taken whatever the count.
    pub ms: i64,
}

impl Retention {
    /// The feed's retention.
    pub fn of(config: &crate::feed::FeedConfig) -> Self {
        Retention {
            changes: config.retain_changes.min(i64::MAX as u64) as i64,
            ms: config.retain_ms.min(i64::MAX as u64) as i64,
        }
    }
}

/// The applied records the flush keeps after a lag: [`KEEP`], or the feed's retention.
pub(crate) fn keep(retain: Option<Retention>) -> i64 {
    retain.map_or(KEEP, |r| r.changes.max(KEEP))
}

/// The SQL of a capture trigger's record of the key `key` (an SQL expression) of `table` (an SQL
/// string literal), when `when` (an SQL condition) holds: take the oldest record if the replica
/// has it (and, with `retain`, the ring holds what the feed keeps, or the record is older than it
/// keeps), else insert one. Two statements; the second sees the first's `changes()`.
pub(crate) fn record_sql(table: &str, key: &str, when: &str, retain: Option<Retention>) -> String {
    // The ring holds MAX - MIN + 1 records; taking the oldest keeps that count.
    let kept = match retain {
        None => String::new(),
        Some(r) => format!(
            " AND (\"seq\" <= (SELECT MAX(\"seq\") FROM \"_nt_outbox\") + 1 - {} \
             OR \"at\" < {NOW_MS} - {})",
            r.changes, r.ms
        ),
    };
    format!(
        "UPDATE \"_nt_outbox\" SET \"seq\" = (SELECT MAX(\"seq\") FROM \"_nt_outbox\") + 1, \
         \"tbl\" = {table}, \"pk\" = {key}, \"at\" = {NOW_MS} \
         WHERE ({when}) AND \"seq\" = (SELECT MIN(\"seq\") FROM \"_nt_outbox\") \
         AND \"seq\" <= {APPLIED_SQL}{kept}; \
         INSERT INTO \"_nt_outbox\" (\"tbl\", \"pk\") SELECT {table}, {key} \
         WHERE ({when}) AND changes() = 0;"
    )
}

/// Now, in ms since the epoch, in SQL (the outbox's `at` default).
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// Record a change of `table`'s row `key`. Call inside the transaction that changed the row.
/// Returns the change's seq.
pub fn append<P: Primary>(db: &P, table: &str, key: Value) -> Result<i64> {
    // `query`, not `execute`: no change count is needed, and a backend may pay for one.
    int(db.query(APPEND, &[Value::Text(table.to_owned()), key])?)
}

/// The newest seq ever assigned in this room (0 before the first write).
pub fn current_seq<P: Primary>(db: &P) -> Result<i64> {
    int(db.query("SELECT MAX(\"seq\") FROM \"_nt_outbox\"", &[])?)
}

/// The seq through which the room has recorded the replica's progress (0 before any).
pub fn applied<P: Primary>(db: &P) -> Result<i64> {
    int(db.query(&format!("SELECT COALESCE({APPLIED_SQL}, 0)"), &[])?)
}

/// Number of changes waiting: the records after the seq the replica applied (as the room's
/// engine knows it, or else as the room stored it).
pub fn depth<P: Primary>(db: &P) -> Result<i64> {
    if let Some(applied) = db.hooks().and_then(crate::primary::WriteHooks::applied) {
        return int(db.query(
            "SELECT COUNT(*) FROM \"_nt_outbox\" WHERE \"tbl\" <> '' AND \"seq\" > ?1",
            &[Value::Integer(applied)],
        )?);
    }
    int(db.query(
        &format!(
            "SELECT COUNT(*) FROM \"_nt_outbox\" WHERE \"tbl\" <> '' \
             AND \"seq\" > COALESCE({APPLIED_SQL}, 0)"
        ),
        &[],
    )?)
}

/// After the replica has applied every change up to `through` (which the engine records in its
/// health row): delete the applied records beyond the newest `keep` ([`KEEP`], or what the feed
/// keeps), which only a lag leaves (one row written each, once). The newest record always
/// stays, so seq never goes back.
pub fn trim<P: Primary>(db: &P, through: i64, keep: i64) -> Result<()> {
    // One bound on the rowid, so SQLite visits only the records it deletes: with two, it scans
    // every record up to one of them (the whole ring, billed a row read each) to test the other.
    db.query(
        "DELETE FROM \"_nt_outbox\" WHERE \"seq\" <= \
         min(?1, (SELECT MAX(\"seq\") FROM \"_nt_outbox\") - ?2)",
        &[Value::Integer(through), Value::Integer(keep.max(1))],
    )?;
    Ok(())
}

fn int(rows: Vec<crate::value::Row>) -> Result<i64> {
    Ok(match rows.first().and_then(|r| r.first()) {
        Some(Value::Integer(i)) => *i,
        Some(Value::Real(f)) => *f as i64,
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    /// The triggers read the applied mark where the engine writes it: the field of its health
    /// row that its counters serialize to.
    #[test]
    fn the_triggers_read_the_mark_the_engine_writes() {
        let stats = crate::sync::Stats {
            outbox_applied: 7,
            ..Default::default()
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json[super::APPLIED_FIELD], 7);
        assert!(super::APPLIED_SQL.contains(&format!("'$.{}'", super::APPLIED_FIELD)));
        assert!(super::APPLIED_SQL.contains(&format!("= '{}'", crate::sync::META_HEALTH)));
    }
}
