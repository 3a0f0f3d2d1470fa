//! Read-only SQL against the room's primary, for analytics and admin dashboards.
//!
//! [`ReadOnlySql::query_readonly`] runs exactly one statement that SQLite itself reports as
//! read-only, binds its parameters, and returns at most a capped number of rows. Whether a
//! statement reads or writes is never decided by looking at its text (no keyword lists, no
//! regexes): comments, `WITH` clauses, odd casing and `;` inside strings are SQLite's problem,
//! and SQLite's compiler knows exactly what the statement does.
//!
//! Any table may be read, nanotype's own included (the outbox, `_nt_outbox`, is a useful thing to
//! watch).
//!
//! # What "enforced by SQLite" means
//!
//! **Native backend** (`native::NativePrimary`), before anything runs:
//! 1. *One statement.* SQLite's prepare reports the unparsed tail of the text; if the tail holds
//!    another statement the call is refused (`SELECT 1; DELETE FROM t` never runs either part).
//!    A tail of only whitespace or comments is fine.
//! 2. *Read-only.* `sqlite3_stmt_readonly` must be true: any INSERT/UPDATE/DELETE/REPLACE,
//!    DDL, `PRAGMA x = y` that writes the file, and so on is refused.
//! 3. *No connection changes.* SQLite also calls `ATTACH`, `DETACH`, `BEGIN`/`COMMIT`/
//!    `ROLLBACK`/`SAVEPOINT` and setting pragmas such as `foreign_keys` "read-only", since they
//!    write no page, yet they would change the primary's connection under the engine. So the
//!    statement is compiled and run under a SQLite *authorizer* (`sqlite3_set_authorizer`)
//!    that allows only reading: `SELECT`, reading a column, calling a function, recursive CTEs.
//!    `PRAGMA` statements are refused; their table-valued form (`SELECT * FROM
//!    pragma_table_info('tasks')`), which SQLite offers only for pragmas without side effects,
//!    passes here (the route's budget refuses table-valued functions before this runs). (SQLite's table-valued pragmas compile a `PRAGMA` of their own while the
//!    statement runs; that one is allowed, since it can only read.)
//! 4. *Nothing persists anyway.* The statement runs inside a savepoint that is rolled back, and
//!    the connection's change counter must not move, the native twin of the Durable Object's
//!    rolled-back `transactionSync` and `rowsWritten` below. Safe inside a caller's transaction.
//!
//! **Durable Object backend**: `ctx.storage.sql.exec` already refuses `ATTACH`, transaction
//! statements and most pragmas through workerd's own authorizer. The statement runs inside
//! `ctx.storage.transactionSync(..)` whose callback always throws after reading at most
//! `max_rows + 1` rows, so SQLite rolls back whatever it did; the cursor's `rowsWritten` must be
//! 0, otherwise the call is refused with the same "this statement writes" message. `sql.exec`
//! runs every statement in a string and returns the last one's cursor, so there "exactly one
//! statement" is guaranteed by the rollback: a second statement can read but nothing it does
//! survives. That is why the trait method is synchronous and returns owned rows: it must be
//! answerable entirely inside one `transactionSync`.
//!
//! ```
//! # #[cfg(feature = "native")] {
//! use nanotype::actor::ReadOnlySql;
//! use nanotype::native::NativePrimary;
//! use nanotype::{Primary, Value};
//!
//! let db = NativePrimary::open_in_memory()?;
//! db.execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);")?;
//!
//! let out = db.query_readonly("SELECT n FROM t WHERE n >= ?1 ORDER BY n", &[Value::Integer(2)], 1)?;
//! assert_eq!(out.columns, ["n"]);
//! assert_eq!(out.rows, [vec![Value::Integer(2)]]);
//! assert!(out.truncated); // a third row existed beyond the cap
//!
//! let err = db.query_readonly("DELETE FROM t", &[], 10).unwrap_err();
//! assert!(err.to_string().contains("this statement writes"));
//! # }
//! # Ok::<(), nanotype::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::value::{Row, Value};

/// The result of a read-only query: column names, at most `max_rows` rows, and whether more rows
/// were left out. Serializes as `{"columns": [..], "rows": [[..], ..], "truncated": bool}`, each
/// value as in [`Value::to_json`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOnlyRows {
    /// Column names, in the statement's order.
    pub columns: Vec<String>,
    /// Rows, at most the cap given.
    pub rows: Vec<Row>,
    /// True when the statement had more than `max_rows` rows.
    pub truncated: bool,
}

/// A database that runs one read-only statement on behalf of an untrusted caller (an analytics
/// dashboard, an admin console).
///
/// Contract for every implementation: either returns the rows of exactly one statement that
/// SQLite deems read-only, or returns [`Error::Rejected`]; in no case does anything the
/// statement did persist or change the connection. Other SQLite errors (syntax, unknown table)
/// come back as [`Error::Primary`]. See the [module docs](self) for how each backend ensures it.
pub trait ReadOnlySql {
    /// Run `sql` with `params` bound (`?`, `?N`, `:name` placeholders in order) and return at
    /// most `max_rows` rows; [`ReadOnlyRows::truncated`] says whether there were more.
    fn query_readonly(&self, sql: &str, params: &[Value], max_rows: usize) -> Result<ReadOnlyRows>;
}

impl<D: ReadOnlySql + ?Sized> ReadOnlySql for &D {
    fn query_readonly(&self, sql: &str, params: &[Value], max_rows: usize) -> Result<ReadOnlyRows> {
        (**self).query_readonly(sql, params, max_rows)
    }
}

impl<D: ReadOnlySql + ?Sized> ReadOnlySql for std::rc::Rc<D> {
    fn query_readonly(&self, sql: &str, params: &[Value], max_rows: usize) -> Result<ReadOnlyRows> {
        (**self).query_readonly(sql, params, max_rows)
    }
}

// The refusals, worded once for every backend.

#[cfg_attr(not(any(feature = "native", feature = "worker")), allow(dead_code))]
pub(crate) fn rejected_writes() -> Error {
    Error::Rejected(
        "only one read-only statement is allowed: this statement writes (SQLite reports it is not read-only)"
            .into(),
    )
}

// Only the native backend refuses these before running the statement.
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub(crate) fn rejected_several() -> Error {
    Error::Rejected(
        "only one read-only statement is allowed: the SQL holds more than one statement; send them one at a time"
            .into(),
    )
}

// Only the native backend refuses these before running the statement.
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub(crate) fn rejected_empty() -> Error {
    Error::Rejected("only one read-only statement is allowed: the SQL holds no statement".into())
}

// Only the native backend refuses these before running the statement.
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub(crate) fn rejected_params(expected: usize, given: usize) -> Error {
    Error::Rejected(format!(
        "the statement has {expected} parameter(s) but {given} value(s) were given; bind one value per placeholder"
    ))
}

/// The most bytes a read-only query returns (its values' sizes summed: text and blobs by their
/// length, numbers as 8): past it the result is cut like one past `maxRows`, `truncated: true`,
/// so a caller cannot make the room hold a huge answer in memory.
pub const MAX_RESULT_BYTES: usize = 4 << 20;

/// The bytes `row` counts for against [`MAX_RESULT_BYTES`].
pub(crate) fn row_bytes(row: &Row) -> usize {
    row.iter()
        .map(|v| match v {
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
            _ => 8,
        })
        .sum()
}

/// Collects at most `max_rows` rows (and [`MAX_RESULT_BYTES`]) from `rows`, reading one more to
/// learn whether the result was truncated (and no further).
// Only the native backend refuses these before running the statement.
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub(crate) fn cap_rows(
    rows: impl Iterator<Item = Result<Row>>,
    max_rows: usize,
) -> Result<(Vec<Row>, bool)> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let row = row?;
        bytes += row_bytes(&row);
        if out.len() == max_rows || bytes > MAX_RESULT_BYTES {
            return Ok((out, true));
        }
        out.push(row);
    }
    Ok((out, false))
}

impl serde::Serialize for ReadOnlyRows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        struct Cell<'a>(&'a Value);
        impl serde::Serialize for Cell<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                match self.0 {
                    Value::Null => s.serialize_unit(),
                    Value::Integer(i) => s.serialize_i64(*i),
                    // JSON has no NaN or infinity: they become null, as in `Value::to_json`.
                    Value::Real(f) if !f.is_finite() => s.serialize_unit(),
                    Value::Real(f) => s.serialize_f64(*f),
                    Value::Text(t) => s.serialize_str(t),
                    Value::Blob(b) => s.collect_seq(b.iter()),
                }
            }
        }
        struct Cells<'a>(&'a [Value]);
        impl serde::Serialize for Cells<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(Cell))
            }
        }
        struct Rows<'a>(&'a [Row]);
        impl serde::Serialize for Rows<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|r| Cells(r)))
            }
        }

        let mut st = s.serialize_struct("ReadOnlyRows", 3)?;
        st.serialize_field("columns", &self.columns)?;
        st.serialize_field("rows", &Rows(&self.rows))?;
        st.serialize_field("truncated", &self.truncated)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_rows_reads_one_past_the_cap() {
        let rows = |n: i64| (0..n).map(|i| Ok(vec![Value::Integer(i)]));
        assert!(!cap_rows(rows(3), 3).unwrap().1);
        let (got, truncated) = cap_rows(rows(4), 3).unwrap();
        assert_eq!(got.len(), 3);
        assert!(truncated);
        let (got, truncated) = cap_rows(rows(1), 0).unwrap();
        assert!(got.is_empty() && truncated);
        assert_eq!(cap_rows(rows(0), 0).unwrap(), (vec![], false));

        // Reading stops one row past the cap.
        let mut pulled = 0;
        let counted = std::iter::from_fn(|| {
            pulled += 1;
            Some(Ok(vec![Value::Null]))
        });
        let _ = cap_rows(counted, 5).unwrap();
        assert_eq!(pulled, 6);
    }

    #[test]
    fn serializes_like_to_json() {
        let out = ReadOnlyRows {
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec![Value::Integer(1), Value::Text("x".into())],
                vec![Value::Real(f64::NAN), Value::Blob(vec![1, 2])],
                vec![Value::Null, Value::Real(1.5)],
            ],
            truncated: true,
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({
                "columns": ["a", "b"],
                "rows": [[1, "x"], [null, [1, 2]], [null, 1.5]],
                "truncated": true,
            })
        );
    }
}
