use std::cell::Cell;
use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::primary::Primary;
use crate::value::{Row, Value};

/// A room's primary in a SQLite file (or in memory).
pub struct NativePrimary {
    conn: Connection,
    depth: Cell<u32>,
}

fn err(e: rusqlite::Error) -> Error {
    Error::Primary(super::sql_error(&e))
}

impl NativePrimary {
    /// Open (or create) the room's database file. WAL with `synchronous=FULL`: every commit is
    /// durable, as a Durable Object's writes are.
    pub fn open(path: impl AsRef<Path>) -> Result<NativePrimary> {
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        )
        .map_err(err)?;
        Ok(Self::from_connection(conn))
    }

    /// A private in-memory database.
    pub fn open_in_memory() -> Result<NativePrimary> {
        Ok(Self::from_connection(
            Connection::open_in_memory().map_err(err)?,
        ))
    }

    /// A primary over an open connection.
    pub fn from_connection(conn: Connection) -> NativePrimary {
        conn.set_prepared_statement_cache_capacity(128);
        // Foreign keys are enforced, as in a Durable Object and in D1 (where they cannot be off).
        let _ = conn.execute_batch("PRAGMA foreign_keys=ON");
        NativePrimary {
            conn,
            depth: Cell::new(0),
        }
    }

    /// The underlying connection (tests, benchmarks).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Run a statement without parameters through the prepared-statement cache.
    fn run_cached(&self, sql: &str) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        stmt.execute([]).map_err(err)?;
        Ok(())
    }
}

impl Primary for NativePrimary {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        super::query(&self.conn, sql, params).map_err(err)
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        stmt.execute(rusqlite::params_from_iter(params.iter()))
            .map(|n| n as u64)
            .map_err(err)
    }

    fn execute_batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(err)
    }

    fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        // Savepoints nest, and at the outermost level one starts a transaction. Every write
        // runs two of these statements: cached, they are not parsed again each time.
        let depth = self.depth.get();
        self.run_cached(&format!("SAVEPOINT nt_{depth}"))?;
        self.depth.set(depth + 1);
        let out = f();
        self.depth.set(depth);
        let name = format!("nt_{depth}");
        match out {
            Ok(v) => {
                self.run_cached(&format!("RELEASE {name}"))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
                Err(e)
            }
        }
    }

    fn hooks(&self) -> Option<&dyn crate::primary::WriteHooks> {
        None
    }
}
