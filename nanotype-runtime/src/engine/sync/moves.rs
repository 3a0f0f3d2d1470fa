//! A room's D1 copy moved to another shard: what is left to do on the shard it leaves.
//!
//! The move itself is a full resync into the new shard, by a new engine over the room's database
//! (the old one retired, so nothing more reaches the old shard). Reads meanwhile stay whole: the
//! old shard's copy is a complete earlier state (its watermark stops), the new one's `_nt_rooms`
//! row says "being rebuilt" (its reads go to the room) until the copy ends. Then, on the old
//! shard, the room's `_nt_rooms` row is marked moved ([`MOVED_WATERMARK`]: a read there goes to
//! the room, whose answer names the new shard) and its rows are deleted in pages. Each step is
//! idempotent and the move is recorded in the room's `_nt_meta`, so a crash resumes it.

use crate::error::Result;
use crate::replica::{Replica, Statement};
use crate::value::Value;
use nanotype_schema::ddl::ROOMS_TABLE;
use nanotype_schema::ident::quote;
use nanotype_schema::{Table as TableDef, ROOM_COLUMN};

/// The watermark of a room's `_nt_rooms` row on a shard it moved away from.
pub const MOVED_WATERMARK: i64 = -3;

/// Rows deleted from the old shard per statement.
pub const CLEAN_PAGE: usize = 500;

/// Mark `room` moved on the shard `old`, then delete its rows there, page by page, tables that
/// reference others first; the number of rows deleted.
pub async fn clean_old_shard<R: Replica>(
    old: &R,
    room: &str,
    tables: &[&'static TableDef],
    now_ms: i64,
) -> Result<u64> {
    let room_value = || Value::Text(room.to_owned());
    old.batch(&[Statement::new(
        format!(
            "UPDATE {} SET \"watermark\" = ?2, \"updated_at\" = ?3 WHERE {} = ?1",
            quote(ROOMS_TABLE),
            quote(ROOM_COLUMN)
        ),
        vec![
            room_value(),
            Value::Integer(MOVED_WATERMARK),
            Value::Integer(now_ms),
        ],
    )])
    .await?;
    let mut deleted = 0u64;
    for def in tables.iter().rev() {
        let sql = crate::table::TableSql::new(def);
        let stmt = Statement::new(
            format!(
                "DELETE FROM {t} WHERE {room} = ?1 AND ({key}) IN (SELECT {key} FROM {t} WHERE {room} = ?1 LIMIT ?2) RETURNING 1",
                t = sql.table,
                room = quote(ROOM_COLUMN),
                key = sql.key_columns,
            ),
            vec![room_value(), Value::Integer(CLEAN_PAGE as i64)],
        );
        // Bounded: a table of the room holds at most what was copied before the move.
        for _ in 0..1_000_000 {
            let gone = old.batch(std::slice::from_ref(&stmt)).await?;
            let n = gone.first().map_or(0, Vec::len);
            deleted += n as u64;
            if n < CLEAN_PAGE {
                break;
            }
        }
    }
    Ok(deleted)
}
