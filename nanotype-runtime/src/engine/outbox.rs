//! The outbox: the room's changes waiting to reach the replica, in the room's own SQLite.
//!
//! A write appends `(seq, table, key)` in the same transaction as the row change (see
//! [`crate::write`]). `seq` is the rowid: SQLite gives each new record the largest seq + 1, and
//! the newest record is never deleted (once applied it stays as a marker with an empty `tbl`), so
//! seq increases for the life of the room without the extra page an `AUTOINCREMENT` counter
//! costs every write. The flush reads the rows' *current* state when it sends them, so several
//! writes to one row between flushes send the latest state once, and the outbox stays one small
//! row per write.

use crate::error::Result;
use crate::primary::Primary;
use crate::value::Value;

const APPEND: &str =
    "INSERT INTO \"_nt_outbox\" (\"tbl\", \"pk\") VALUES (?1, ?2) RETURNING \"seq\"";

/// Create the runtime's tables in the room's SQLite if they are missing
/// ([`crate::meta::PRIMARY_DDL`]).
pub fn install<P: Primary>(db: &P) -> Result<()> {
    db.execute_batch(crate::meta::PRIMARY_DDL)
}

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

/// Number of changes waiting.
pub fn depth<P: Primary>(db: &P) -> Result<i64> {
    int(db.query(
        "SELECT COUNT(*) FROM \"_nt_outbox\" WHERE \"tbl\" <> ''",
        &[],
    )?)
}

/// Forget the changes up to `through`, which the replica has applied. The newest record is kept
/// (marked applied) so that seq never goes back.
pub fn trim<P: Primary>(db: &P, through: i64) -> Result<()> {
    let through = [Value::Integer(through)];
    db.transaction(|| {
        db.query(
            "DELETE FROM \"_nt_outbox\" WHERE \"seq\" <= ?1 \
             AND \"seq\" < (SELECT MAX(\"seq\") FROM \"_nt_outbox\")",
            &through,
        )?;
        db.query(
            "UPDATE \"_nt_outbox\" SET \"tbl\" = '' WHERE \"seq\" <= ?1 AND \"tbl\" <> ''",
            &through,
        )?;
        Ok(())
    })
}

fn int(rows: Vec<crate::value::Row>) -> Result<i64> {
    Ok(match rows.first().and_then(|r| r.first()) {
        Some(Value::Integer(i)) => *i,
        Some(Value::Real(f)) => *f as i64,
        _ => 0,
    })
}
