//! The room's primary: the Durable Object's own SQLite (`ctx.storage.sql`).

use std::cell::Cell;

use js_sys::Array;
use wasm_bindgen::JsValue;
use worker::worker_sys::{SqlStorage, SqlStorageCursor};

use super::bindings::{storage_of, DoStorage};
use super::js_error_text;
use super::js_value::{params_to_js, row_from_array};
use crate::error::{Error, Result};
use crate::primary::Primary;
use crate::value::{Row, Value};

/// A Durable Object's SQLite as a room's [`Primary`]. Statements run synchronously, as
/// `sql.exec` does; [`Primary::transaction`] is `ctx.storage.transactionSync`, so a row and its
/// outbox record commit together or not at all.
///
/// ```ignore
/// let primary = nanotype::worker::DoPrimary::new(&state);
/// let task = Task::insert(&primary, &task)?;
/// ```
pub struct DoPrimary {
    storage: DoStorage,
    sql: SqlStorage,
    depth: Cell<u32>,
    meter: crate::billing::Meter,
}

thread_local! {
    /// `NANOTYPE_TRACE_BILLING`: log every statement's billed rows.
    static TRACE: Cell<bool> = const { Cell::new(false) };
}

/// Log every statement's billed rows from now on (the room sets it from its variables).
pub fn trace_billing(on: bool) {
    TRACE.with(|t| t.set(on));
}

fn err(e: JsValue) -> Error {
    Error::Primary(crate::error::SqlError::from_platform(js_error_text(&e)))
}

impl DoPrimary {
    /// The primary of the Durable Object whose state this is.
    pub fn new(state: &worker::State) -> DoPrimary {
        let storage = storage_of(state);
        let sql = storage.sql();
        DoPrimary {
            storage,
            sql,
            depth: Cell::new(0),
            meter: crate::billing::Meter::default(),
        }
    }

    /// What this instance's statements were billed for, since it started.
    pub fn billed(&self) -> crate::billing::Billed {
        self.meter.get()
    }

    /// Count a drained cursor's billed rows (and, with `NANOTYPE_TRACE_BILLING = "1"`, log each
    /// statement with them: how the bench's per-write figures break down).
    pub(crate) fn metered(&self, cursor: &SqlStorageCursor, sql: &str) {
        let (read, written) = (cursor.rows_read() as u64, cursor.rows_written() as u64);
        self.meter.statement(read, written);
        self.meter.crossed(2, 0);
        if TRACE.with(std::cell::Cell::get) {
            let head: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let head: String = head.chars().take(110).collect();
            worker::console_log!("billed read={read} written={written} :: {head}");
        }
    }

    /// Size of the room's database in bytes.
    pub fn database_size(&self) -> f64 {
        self.sql.database_size()
    }

    /// Whether a transaction is open (statements run inside it).
    pub fn in_transaction(&self) -> bool {
        self.depth.get() > 0
    }

    pub(crate) fn exec(&self, sql: &str, params: &[Value]) -> Result<SqlStorageCursor> {
        let bindings: Array = params_to_js(params).into_iter().collect();
        self.meter.crossed(1, params.len() as u64);
        self.sql.exec(sql, bindings).map_err(err)
    }

    /// Every row of `cursor` (running the statement to completion), at most `cap` when given;
    /// `Err(rows)` when the cap was reached with rows left.
    pub(crate) fn drain(
        &self,
        cursor: &SqlStorageCursor,
        cap: Option<usize>,
    ) -> Result<(Vec<Row>, bool)> {
        let it = cursor.raw();
        let mut rows: Vec<Row> = Vec::new();
        let count = |rows: &Vec<Row>, steps: u64| {
            let cells: usize = rows.iter().map(Vec::len).sum();
            // `raw`, then per step `next` and its result's `done` (and `value` for a row).
            self.meter
                .crossed(1 + 2 * steps + rows.len() as u64, cells as u64);
        };
        // A capped read (read-only SQL) is cut by bytes too.
        let mut bytes = 0;
        loop {
            let next = it.next().map_err(err)?;
            if next.done() {
                count(&rows, rows.len() as u64 + 1);
                return Ok((rows, false));
            }
            if cap.is_some_and(|c| rows.len() >= c) {
                count(&rows, rows.len() as u64 + 1);
                return Ok((rows, true));
            }
            let row = row_from_array(next.value());
            if cap.is_some() {
                bytes += crate::actor::analytics::row_bytes(&row);
                if bytes > crate::actor::analytics::MAX_RESULT_BYTES {
                    count(&rows, rows.len() as u64 + 1);
                    return Ok((rows, true));
                }
            }
            rows.push(row);
        }
    }

    /// `ctx.storage.transactionSync(body)`; `body`'s error is thrown so the transaction rolls back.
    pub(crate) fn transaction_sync<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out: Option<Result<T>> = None;
        let js = {
            let mut body = || -> std::result::Result<JsValue, JsValue> {
                let Some(f) = f.take() else {
                    return Err(JsValue::from_str("nanotype: transaction body ran twice"));
                };
                let r = f();
                let failed = r.is_err();
                out = Some(r);
                if failed {
                    Err(JsValue::from_str("nanotype: rolled back"))
                } else {
                    Ok(JsValue::UNDEFINED)
                }
            };
            self.depth.set(self.depth.get() + 1);
            self.meter.crossed(1, 0);
            let js = self.storage.transaction_sync(&mut body);
            self.depth.set(self.depth.get() - 1);
            js
        };
        match (out, js) {
            // The body's own error, whether or not the rollback reported one.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(_)) => Ok(v),
            (Some(Ok(_)), Err(e)) => Err(Error::Primary(crate::error::SqlError::from_platform(
                format!("the transaction did not commit: {}", js_error_text(&e)),
            ))),
            (None, Err(e)) => Err(err(e)),
            (None, Ok(_)) => Err(Error::Primary(
                "transactionSync returned without running its body".into(),
            )),
        }
    }
}

impl Primary for DoPrimary {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let cursor = self.exec(sql, params)?;
        let rows = self.drain(&cursor, None)?.0;
        self.metered(&cursor, sql);
        Ok(rows)
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let cursor = self.exec(sql, params)?;
        self.drain(&cursor, None)?;
        self.metered(&cursor, sql);
        // `rowsWritten` also counts index entries; SQLite's own count is what callers mean.
        let changes = self.query("SELECT changes()", &[])?;
        Ok(match changes.first().and_then(|r| r.first()) {
            Some(Value::Integer(n)) => (*n).max(0) as u64,
            _ => 0,
        })
    }

    fn execute_batch(&self, sql: &str) -> Result<()> {
        // `exec` runs every statement of a multi-statement string.
        let cursor = self.exec(sql, &[])?;
        self.drain(&cursor, None)?;
        self.metered(&cursor, sql);
        Ok(())
    }

    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.transaction_sync(f)
    }
    fn hooks(&self) -> Option<&dyn crate::primary::WriteHooks> {
        None
    }
}
