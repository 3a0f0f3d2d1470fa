//! The primary: the room's own SQLite, synchronous (like a Durable Object's `sql.exec`).

use crate::error::Result;
use crate::value::{Row, Value};

/// The room's SQLite database, the source of truth. Every method runs to completion before it
/// returns, as `ctx.storage.sql.exec` does in a Durable Object.
pub trait Primary {
    /// Run one statement and return its rows (empty for statements that return none).
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Run one statement for its effect; returns the number of rows it changed.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Run several statements (DDL, no parameters) in order.
    fn execute_batch(&self, sql: &str) -> Result<()>;

    /// Run `f` atomically: every statement it runs is committed if it returns `Ok` and rolled
    /// back if it returns `Err`.
    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T>;

    /// Asked before a write to `table`: a room's engine refuses tables that are not in its
    /// schema ([`crate::Error::UnregisteredTable`]); a bare database accepts every table.
    fn check_table(&self, _table: &str) -> Result<()> {
        Ok(())
    }

    /// Told after a write committed a change to the outbox: a room's engine arms the alarm that
    /// guarantees delivery.
    fn changed(&self) {}

    /// Whether the database records every change of a replicated table in the outbox itself,
    /// with triggers ([`crate::capture`]): a room's engine does, so the generated writes send no
    /// outbox statement of their own. A bare database does not.
    fn captures_changes(&self) -> bool {
        false
    }

    /// Told inside a write's transaction, after its outbox record: the change's seq (`None` when
    /// a trigger recorded it: then it is the room's current seq), table, key and the row as
    /// stored (`None` for a delete). A room whose feed is on logs it for its WebSocket clients
    /// ([`crate::feed`]); an error rolls the write back.
    fn record(
        &self,
        _seq: Option<i64>,
        _table: &str,
        _key: &Value,
        _row: Option<&Row>,
    ) -> Result<()> {
        Ok(())
    }
}

impl<P: Primary + ?Sized> Primary for &P {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        (**self).query(sql, params)
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        (**self).execute(sql, params)
    }
    fn execute_batch(&self, sql: &str) -> Result<()> {
        (**self).execute_batch(sql)
    }
    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        (**self).transaction(f)
    }
    fn check_table(&self, table: &str) -> Result<()> {
        (**self).check_table(table)
    }
    fn changed(&self) {
        (**self).changed()
    }
    fn captures_changes(&self) -> bool {
        (**self).captures_changes()
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        (**self).record(seq, table, key, row)
    }
}

impl<P: Primary + ?Sized> Primary for std::rc::Rc<P> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        (**self).query(sql, params)
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        (**self).execute(sql, params)
    }
    fn execute_batch(&self, sql: &str) -> Result<()> {
        (**self).execute_batch(sql)
    }
    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        (**self).transaction(f)
    }
    fn check_table(&self, table: &str) -> Result<()> {
        (**self).check_table(table)
    }
    fn changed(&self) {
        (**self).changed()
    }
    fn captures_changes(&self) -> bool {
        (**self).captures_changes()
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        (**self).record(seq, table, key, row)
    }
}
