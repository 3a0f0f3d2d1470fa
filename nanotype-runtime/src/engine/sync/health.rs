//! Health of a room's replication, as the original design reported it plus lag and queue depth.

use serde::Serialize;

use super::Engine;
use crate::clock::Scheduler;
use crate::error::Result;
use crate::primary::Primary;
use crate::replica::Replica;
use crate::value::Value;

/// A snapshot of a room's replication. Field names are camelCase in JSON (`isHealthy`, …).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Replica reachable, last attempt succeeded, oldest unsynced change younger than the limit.
    pub is_healthy: bool,
    /// When a batch last applied (ms since the epoch).
    pub last_sync_time: Option<i64>,
    /// Batches applied since the host started.
    pub total_syncs: u64,
    /// Failed attempts since the host started.
    pub sync_errors: u64,
    /// `sync_errors / (total_syncs + sync_errors)`.
    pub error_rate: f64,
    /// Changes not yet known applied: `current_seq - watermark`.
    pub lag: i64,
    /// The newest seq assigned in the room.
    pub current_seq: i64,
    /// The replica's watermark as last read back.
    pub watermark: i64,
    /// Changes waiting in the outbox.
    pub outbox_depth: i64,
    /// Age of the oldest change in the outbox (ms), if any.
    pub oldest_unsynced_age_ms: Option<i64>,
    /// The last failure's message (kept after the room recovers: see `last_error_at` and
    /// `failing`).
    pub last_error: Option<String>,
    /// When the last failure happened (ms since the epoch).
    pub last_error_at: Option<i64>,
    /// Whether the room's sync is failing now (the last attempt failed); `false` with a
    /// `last_error` means that error is past.
    pub failing: bool,
    /// Since when the room's sync has been failing, if it is.
    pub failing_since: Option<i64>,
    /// The room's replication has failed for longer than its staleness bound: its replica
    /// reads go to the primary until a batch applies.
    pub stale: bool,
    /// Whether the last replica call succeeded.
    pub replica_available: bool,
    /// A full resync is under way.
    pub resync_in_progress: bool,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// The delay of the scheduled retry, if one is pending.
    pub next_retry_ms: Option<u64>,
    /// Rows (or deletes) sent in the room's life.
    pub rows_sent: u64,
    /// The replica refuses a change for good: why, and the oldest change waiting behind it.
    pub blocked: Option<super::Blocked>,
    /// What the last audit of the replica against the room found.
    pub last_audit: Option<super::AuditReport>,
}

impl<P: Primary, R: Replica, S: Scheduler> Engine<P, R, S> {
    /// The room's replication health.
    pub fn health(&self) -> Result<Health> {
        // What is shown is stored: counters a reader saw never go back after a restart.
        self.store_stats(true)?;
        let current_seq = self.current_seq()?;
        let rows = self.primary.query(
            "SELECT COUNT(*), MIN(\"at\"), MIN(\"seq\") FROM \"_nt_outbox\" \
             WHERE \"seq\" > ?1 AND \"tbl\" <> ''",
            &[Value::Integer(self.primary.applied.get())],
        )?;
        let (depth, oldest, oldest_seq) = match rows.first().map(std::vec::Vec::as_slice) {
            Some([Value::Integer(n), Value::Integer(at), Value::Integer(seq)]) => {
                (*n, Some(*at), Some(*seq))
            }
            Some([Value::Integer(n), ..]) => (*n, None, None),
            _ => (0, None, None),
        };
        let now = self.primary.scheduler.now_ms();
        let age = oldest.map(|at| (now - at).max(0));
        let st = self.stats.borrow();
        let attempts = st.total_syncs + st.sync_errors;
        let resync = self.resync_in_progress()?;
        // Everything before the oldest record still in the outbox was applied (records are
        // deleted only once applied), so a room just restarted, before its first sync read the
        // replica back, reports what it knows rather than 0. Not during a resync: the replica
        // is being rebuilt.
        let known = if resync {
            0
        } else {
            oldest_seq.map_or(current_seq, |s| s - 1)
        };
        let watermark = self.watermark.get().max(known);
        Ok(Health {
            is_healthy: self.replica.is_some()
                && st.blocked.is_none()
                && !st.stale
                && st.replica_available
                && st.consecutive_failures == 0
                && age.is_none_or(|a| a <= self.config.max_healthy_age_ms),
            last_sync_time: st.last_sync_time,
            total_syncs: st.total_syncs,
            sync_errors: st.sync_errors,
            error_rate: if attempts == 0 {
                0.0
            } else {
                st.sync_errors as f64 / attempts as f64
            },
            lag: (current_seq - watermark).max(0),
            current_seq,
            watermark,
            outbox_depth: depth,
            oldest_unsynced_age_ms: age,
            last_error: st.last_error.clone(),
            last_error_at: st.last_error_at,
            failing: st.consecutive_failures > 0,
            failing_since: st.failing_since,
            stale: st.stale,
            replica_available: self.replica.is_some() && st.replica_available,
            resync_in_progress: resync,
            consecutive_failures: st.consecutive_failures,
            next_retry_ms: st.next_retry_ms,
            rows_sent: st.rows_sent,
            blocked: st.blocked.clone(),
            last_audit: st.audit.clone(),
        })
    }
}
