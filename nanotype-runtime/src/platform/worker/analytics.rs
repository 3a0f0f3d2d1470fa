//! Read-only SQL on the Durable Object's SQLite (see [`crate::actor::analytics`]).

use std::cell::RefCell;

use super::primary::DoPrimary;
use crate::actor::analytics::{rejected_writes, ReadOnlyRows, ReadOnlySql};
use crate::error::{Error, Result};
use crate::value::Value;

impl ReadOnlySql for DoPrimary {
    /// Runs inside `transactionSync`, which is always rolled back: nothing the SQL did survives,
    /// and a cursor that reports `rowsWritten > 0` is refused. workerd's own authorizer already
    /// refuses `ATTACH`, transaction statements and most pragmas.
    fn query_readonly(&self, sql: &str, params: &[Value], max_rows: usize) -> Result<ReadOnlyRows> {
        let out: RefCell<Option<Result<ReadOnlyRows>>> = RefCell::new(None);
        let rolled_back = self.transaction_sync(|| -> Result<()> {
            let run = || -> Result<ReadOnlyRows> {
                let cursor = self.exec(sql, params)?;
                let (rows, truncated) = self.drain(&cursor, Some(max_rows))?;
                self.metered(&cursor, sql);
                if cursor.rows_written() > 0.0 {
                    return Err(rejected_writes());
                }
                let columns = cursor
                    .column_names()
                    .iter()
                    .map(|c| c.as_string().unwrap_or_default())
                    .collect();
                Ok(ReadOnlyRows {
                    columns,
                    rows,
                    truncated,
                })
            };
            *out.borrow_mut() = Some(run());
            Err(Error::Rejected("rolled back".into()))
        });
        match out.into_inner() {
            Some(result) => result,
            None => Err(rolled_back
                .err()
                .unwrap_or_else(|| Error::Primary("the read-only query did not run".into()))),
        }
    }
}
