//! What the Durable Object's SQLite and D1 bill: rows read and rows written (an index entry
//! counts as a row written), counted as the platform reports them on every statement
//! (`cursor.rowsRead`/`rowsWritten`, D1's `meta.rows_read`/`rows_written`).
//!
//! The room's status (`GET /rooms/{room}/_sync`) reports both since its Durable Object instance
//! started, so an app can see what its writes cost, and `nanotype-bench` divides them by the
//! writes it made.

use std::cell::Cell;

/// Statements and the rows they were billed for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Billed {
    /// Statements run (for D1, statements in batches and queries).
    pub statements: u64,
    /// Batches sent (D1 only).
    pub batches: u64,
    /// Rows read, as billed.
    pub rows_read: u64,
    /// Rows written, as billed (index entries included).
    pub rows_written: u64,
    /// Calls from wasm into the Durable Object's SQL API (`exec`, the cursor's `raw`, each step
    /// of its iterator, its two counters, `transactionSync`): each crosses from wasm into
    /// JavaScript. Counted for the Durable Object only.
    pub calls: u64,
    /// Values carried across with those calls: bound parameters and result cells (each one or
    /// a few more crossings to convert).
    pub values: u64,
}

/// A running count of [`Billed`].
#[derive(Debug, Default)]
pub struct Meter(Cell<Billed>);

impl Meter {
    /// Count one statement.
    pub fn statement(&self, rows_read: u64, rows_written: u64) {
        let mut b = self.0.get();
        b.statements += 1;
        b.rows_read += rows_read;
        b.rows_written += rows_written;
        self.0.set(b);
    }

    /// Count `calls` crossings into the SQL API carrying `values` values.
    pub fn crossed(&self, calls: u64, values: u64) {
        let mut b = self.0.get();
        b.calls += calls;
        b.values += values;
        self.0.set(b);
    }

    /// Count one batch.
    pub fn batch(&self) {
        let mut b = self.0.get();
        b.batches += 1;
        self.0.set(b);
    }

    /// The counts so far.
    pub fn get(&self) -> Billed {
        self.0.get()
    }
}
