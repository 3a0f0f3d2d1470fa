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

    /// The room's clock (ms since the epoch) where the database knows it (the engine's does),
    /// for the validation of the typed writes ([`crate::Validate`]).
    fn clock_ms(&self) -> Option<i64> {
        None
    }

    /// Who is writing through this database, where it knows (app code's [`Database`]).
    fn caller(&self) -> Option<crate::api::Caller> {
        None
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
        (**self).changed();
    }
    fn captures_changes(&self) -> bool {
        (**self).captures_changes()
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        (**self).record(seq, table, key, row)
    }
    fn clock_ms(&self) -> Option<i64> {
        (**self).clock_ms()
    }
    fn caller(&self) -> Option<crate::api::Caller> {
        (**self).caller()
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
        (**self).changed();
    }
    fn captures_changes(&self) -> bool {
        (**self).captures_changes()
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        (**self).record(seq, table, key, row)
    }
    fn clock_ms(&self) -> Option<i64> {
        (**self).clock_ms()
    }
    fn caller(&self) -> Option<crate::api::Caller> {
        (**self).caller()
    }
}

/// The room's database as app code gets it ([`crate::api::RoomCtx::db`]): one type whatever the
/// backend, so a route or a timer is written once. Every generated write through it is captured
/// and replicates like the gateway's; clones share the database.
#[derive(Clone)]
pub struct Database {
    db: std::rc::Rc<dyn DynPrimary>,
    caller: Option<std::rc::Rc<crate::api::Caller>>,
}

impl Database {
    /// `db` behind the one type.
    pub fn new(db: impl Primary + 'static) -> Database {
        Database {
            db: std::rc::Rc::new(db),
            caller: None,
        }
    }

    /// The same database, writing for `caller` (what validation sees).
    pub fn for_caller(mut self, caller: std::rc::Rc<crate::api::Caller>) -> Database {
        self.caller = Some(caller);
        self
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

/// [`Primary`] with its transaction taking a closure object, so it can sit behind `dyn`.
trait DynPrimary {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64>;
    fn execute_batch(&self, sql: &str) -> Result<()>;
    fn transaction_dyn(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()>;
    fn check_table(&self, table: &str) -> Result<()>;
    fn changed(&self);
    fn captures_changes(&self) -> bool;
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()>;
    fn clock_ms(&self) -> Option<i64>;
}

impl<P: Primary> DynPrimary for P {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        Primary::query(self, sql, params)
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        Primary::execute(self, sql, params)
    }
    fn execute_batch(&self, sql: &str) -> Result<()> {
        Primary::execute_batch(self, sql)
    }
    fn transaction_dyn(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        Primary::transaction(self, f)
    }
    fn check_table(&self, table: &str) -> Result<()> {
        Primary::check_table(self, table)
    }
    fn changed(&self) {
        Primary::changed(self);
    }
    fn captures_changes(&self) -> bool {
        Primary::captures_changes(self)
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        Primary::record(self, seq, table, key, row)
    }
    fn clock_ms(&self) -> Option<i64> {
        Primary::clock_ms(self)
    }
}

impl Primary for Database {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.db.query(sql, params)
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.db.execute(sql, params)
    }
    fn execute_batch(&self, sql: &str) -> Result<()> {
        self.db.execute_batch(sql)
    }
    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let (mut f, mut out) = (Some(f), None);
        self.db.transaction_dyn(&mut || {
            if let Some(f) = f.take() {
                out = Some(f()?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| {
            crate::Error::Primary(crate::error::SqlError::other(
                "the transaction's closure did not run",
            ))
        })
    }
    fn check_table(&self, table: &str) -> Result<()> {
        self.db.check_table(table)
    }
    fn changed(&self) {
        self.db.changed();
    }
    fn captures_changes(&self) -> bool {
        self.db.captures_changes()
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        self.db.record(seq, table, key, row)
    }
    fn clock_ms(&self) -> Option<i64> {
        self.db.clock_ms()
    }
    fn caller(&self) -> Option<crate::api::Caller> {
        self.caller.as_deref().cloned()
    }
}
