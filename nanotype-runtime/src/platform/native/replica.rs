use std::path::Path;
use std::rc::Rc;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::replica::{Replica, Statement};
use crate::value::Row;

/// The shared replica in a SQLite file (or in memory), like D1: a batch is one transaction.
/// Clones share the connection, so several rooms in one process write one replica.
#[derive(Clone)]
pub struct NativeReplica {
    conn: Rc<Connection>,
    /// Batches committed through this handle and its clones: the native bookmark (one copy,
    /// always at the newest state, so every session start is met at once).
    commits: Rc<std::cell::Cell<u64>>,
}

fn err(e: rusqlite::Error) -> Error {
    Error::Replica(super::sql_error(&e))
}

impl NativeReplica {
    /// The replica in the SQLite file at `path` (created if missing).
    pub fn open(path: impl AsRef<Path>) -> Result<NativeReplica> {
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )
        .map_err(err)?;
        Ok(Self::from_connection(conn))
    }

    /// A replica in memory (tests).
    pub fn open_in_memory() -> Result<NativeReplica> {
        Ok(Self::from_connection(
            Connection::open_in_memory().map_err(err)?,
        ))
    }

    /// A replica over an open connection.
    pub fn from_connection(conn: Connection) -> NativeReplica {
        conn.set_prepared_statement_cache_capacity(256);
        // Foreign keys are enforced, as in a Durable Object and in D1 (where they cannot be off).
        let _ = conn.execute_batch("PRAGMA foreign_keys=ON");
        NativeReplica {
            conn: Rc::new(conn),
            commits: Rc::default(),
        }
    }

    /// Run DDL (migrations) on the replica.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(err)
    }

    /// The underlying connection (tests inspect and tamper with the replica directly).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Apply a batch synchronously.
    pub fn batch_sync(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        let run = || -> rusqlite::Result<Vec<Vec<Row>>> {
            stmts
                .iter()
                .map(|s| super::query(&self.conn, &s.sql, &s.params))
                .collect()
        };
        match run() {
            Ok(rows) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => {
                    self.commits.set(self.commits.get() + 1);
                    Ok(rows)
                }
                // A check deferred to the commit (a foreign key) failed: nothing is kept, as
                // D1 keeps nothing of a batch that fails.
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(err(e))
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(err(e))
            }
        }
    }

    /// Run one read statement now (the native replica never waits).
    pub fn query_sync(&self, stmt: &Statement) -> Result<Vec<Row>> {
        super::query(&self.conn, &stmt.sql, &stmt.params).map_err(err)
    }
}

impl Replica for NativeReplica {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        self.query_sync(stmt)
    }

    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        self.batch_sync(stmts)
    }

    async fn session_batch(
        &self,
        _start: crate::replica::SessionStart<'_>,
        stmts: &[Statement],
    ) -> Result<crate::replica::SessionRows> {
        let rows = self.batch_sync(stmts)?;
        Ok(crate::replica::SessionRows {
            rows,
            bookmark: Some(format!("{:016x}", self.commits.get())),
            // One copy: the primary answers every session.
            served_by_primary: Some(true),
        })
    }
}
