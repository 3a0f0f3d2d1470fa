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
    /// The engine's duties around every generated write ([`WriteHooks`]), or `None` for a
    /// backend on its own. Required, with no default: a wrapper forwards its inner database's
    /// or says it has none, so it cannot silently drop them.
    fn hooks(&self) -> Option<&dyn WriteHooks>;
}

/// What the engine does around every generated write: a room's database (the engine's) refuses
/// tables outside the schema, records the change for the feed, arms delivery, and gives the
/// clock and the caller to validation. Its change capture is the triggers', so a database with
/// hooks appends nothing to the outbox itself.
pub trait WriteHooks {
    /// Refuse a write to a table the room does not replicate.
    fn check_table(&self, table: &str) -> Result<()>;
    /// Inside the write's transaction: the change (with its stored row, none for a delete).
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()>;
    /// After the write committed.
    fn changed(&self);
    /// The room's clock (ms since the epoch).
    fn clock_ms(&self) -> i64;
    /// Who is writing, when known (app code's [`Database`] of a request).
    fn caller(&self) -> Option<crate::api::Caller>;
    /// The seq through which the replica has applied the room's changes, as the engine knows
    /// it (the room stores it later, [`crate::outbox::applied`]); `None` when no engine runs.
    fn applied(&self) -> Option<i64> {
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
    fn hooks(&self) -> Option<&dyn WriteHooks> {
        (**self).hooks()
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
    fn hooks(&self) -> Option<&dyn WriteHooks> {
        (**self).hooks()
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
    fn hooks(&self) -> Option<&dyn WriteHooks>;
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
    fn hooks(&self) -> Option<&dyn WriteHooks> {
        Primary::hooks(self)
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
    /// The inner database's hooks, with this handle's caller.
    fn hooks(&self) -> Option<&dyn WriteHooks> {
        self.db.hooks().map(|_| self as &dyn WriteHooks)
    }
}

impl WriteHooks for Database {
    fn check_table(&self, table: &str) -> Result<()> {
        self.db.hooks().map_or(Ok(()), |h| h.check_table(table))
    }
    fn record(&self, seq: Option<i64>, table: &str, key: &Value, row: Option<&Row>) -> Result<()> {
        self.db
            .hooks()
            .map_or(Ok(()), |h| h.record(seq, table, key, row))
    }
    fn changed(&self) {
        if let Some(h) = self.db.hooks() {
            h.changed();
        }
    }
    fn clock_ms(&self) -> i64 {
        self.db.hooks().map_or(0, WriteHooks::clock_ms)
    }
    fn caller(&self) -> Option<crate::api::Caller> {
        self.caller
            .as_deref()
            .cloned()
            .or_else(|| self.db.hooks().and_then(WriteHooks::caller))
    }
}
