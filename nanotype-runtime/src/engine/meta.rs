//! The runtime's own tables (`_nt_*`), in one place.
//!
//! In each room's SQLite (the Durable Object):
//! * `_nt_outbox(seq, tbl, pk, at)`: the room's one change log, for the replica and the feed: a
//!   ring whose records a later change takes once D1 has them (and, with the feed on, once the
//!   feed's retention lets go of them); `seq` is the rowid and only grows (see
//!   [`crate::outbox`]). (`_nt_changes`, the feed's separate log before it, is dropped.)
//! * `_nt_meta(key, value)`: the room id, the primary's identity, the resync state, how far the
//!   replica has applied the outbox;
//! * `_nt_backfill(tbl, cursor, done)`: where a backfill or resync of each table stands;
//! * `_nt_timers(name, at)`: the app's timers over the room's one alarm ([`crate::timers`]);
//! * `_nt_keys(tbl, hwm)`: per table with assigned keys, the largest key ever deleted while it
//!   was the largest, so keys are never handed out twice ([`crate::table::TableSql::retire_key`]);
//! * `_nt_idempotency(key, request, status, body, seq, at)`: the replies of writes sent with an
//!   `Idempotency-Key`, for a day ([`crate::api::idempotency`]);
//! * `_nt_migrations(name, checksum, applied_at)`: the migration ledger ([`crate::migrate`]).
//!
//! In the D1 replica, `_nt_rooms` ([`REPLICA_DDL`]), one row per room, created by the first D1
//! migration that `gen-migrations` writes.

/// The engine's tables in the room's SQLite. Idempotent; created when an engine opens.
pub const PRIMARY_DDL: &str = "\
CREATE TABLE IF NOT EXISTS \"_nt_outbox\" (
    \"seq\" INTEGER PRIMARY KEY,
    \"tbl\" TEXT NOT NULL,
    \"pk\" NOT NULL,
    \"at\" INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE TABLE IF NOT EXISTS \"_nt_meta\" (
    \"key\" TEXT PRIMARY KEY NOT NULL,
    \"value\"
);
CREATE TABLE IF NOT EXISTS \"_nt_backfill\" (
    \"tbl\" TEXT PRIMARY KEY NOT NULL,
    \"cursor\",
    \"done\" INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS \"_nt_timers\" (
    \"name\" TEXT PRIMARY KEY NOT NULL,
    \"at\" INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS \"_nt_keys\" (
    \"tbl\" TEXT PRIMARY KEY NOT NULL,
    \"hwm\" INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS \"_nt_idempotency\" (
    \"key\" TEXT PRIMARY KEY NOT NULL,
    \"request\" TEXT NOT NULL,
    \"status\" INTEGER NOT NULL,
    \"body\" TEXT NOT NULL,
    \"seq\" INTEGER,
    \"at\" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS \"_nt_idempotency_at\" ON \"_nt_idempotency\" (\"at\");
DROP TABLE IF EXISTS \"_nt_changes\";";

/// The migration ledger. Idempotent. `applied_at` is in ms since the epoch.
pub const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS \"_nt_migrations\" (
    \"name\" TEXT PRIMARY KEY NOT NULL,
    \"checksum\" TEXT NOT NULL,
    \"applied_at\" INTEGER
);";

/// The replica's per-room replication state (`_nt_rooms`).
pub const REPLICA_DDL: &str = nanotype_schema::ddl::REPLICA_META;
