//! Read-only SQL on the native backend ([`ReadOnlySql`] for [`NativePrimary`]): SQLite's
//! authorizer and `sqlite3_stmt_readonly` decide, as the Durable Object's SQL API does in a Worker
//! (`platform/worker/analytics.rs`).

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};

use rusqlite::ffi;

use crate::actor::analytics::{
    cap_rows, rejected_empty, rejected_params, rejected_several, rejected_writes, ReadOnlyRows,
    ReadOnlySql,
};
use crate::error::{Error, Result};
use crate::native::NativePrimary;
use crate::value::{Row, Value};

fn sqlite_err(e: rusqlite::Error) -> Error {
    Error::Primary(crate::native::sql_error(&e))
}

impl ReadOnlySql for NativePrimary {
    fn query_readonly(&self, sql: &str, params: &[Value], max_rows: usize) -> Result<ReadOnlyRows> {
        let conn = self.connection();

        // 1 and 2: one statement, which SQLite says is read-only. Preparing compiles and
        // runs nothing. Not the statement cache: analytics SQL is one-off.
        {
            let stmt = conn.prepare(sql).map_err(|e| match e {
                rusqlite::Error::MultipleStatement => rejected_several(),
                rusqlite::Error::Empty => rejected_empty(),
                e => sqlite_err(e),
            })?;
            if !stmt.readonly() {
                return Err(rejected_writes());
            }
            if stmt.parameter_count() != params.len() {
                return Err(rejected_params(stmt.parameter_count(), params.len()));
            }
        }

        // 3: compile again and run under an authorizer that allows only reading, inside a
        // savepoint that is rolled back, as the Durable Object backend does.
        let before = conn.total_changes();
        conn.execute_batch("SAVEPOINT nt_readonly")
            .map_err(sqlite_err)?;
        let out = run_authorized(conn, sql, params, max_rows);
        let rolled_back = conn
            .execute_batch("ROLLBACK TO nt_readonly; RELEASE nt_readonly")
            .map_err(sqlite_err);
        let out = out?;
        rolled_back?;
        // Unreachable with the checks above, but cheap: the Durable Object's `rowsWritten`.
        if conn.total_changes() != before {
            return Err(rejected_writes());
        }
        Ok(out)
    }
}

fn run_authorized(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
    max_rows: usize,
) -> Result<ReadOnlyRows> {
    let auth = AuthState {
        running: Cell::new(false),
        denied: Cell::new(None),
    };
    let _guard = ReadOnlyAuthorizer::install(conn, &auth);
    let fail = |e: rusqlite::Error| match auth.denied.take() {
        Some(d) => d.into_error(),
        None => sqlite_err(e),
    };
    let mut stmt = conn.prepare(sql).map_err(fail)?;
    auth.running.set(true);
    let columns = stmt.column_names().map(str::to_owned).collect::<Vec<_>>();
    let n = columns.len();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(fail)?;
    let iter = std::iter::from_fn(|| match rows.next() {
        Ok(Some(row)) => Some(
            (0..n)
                .map(|i| row.get_ref(i).map(crate::native::value_of))
                .collect::<rusqlite::Result<Row>>()
                .map_err(sqlite_err),
        ),
        Ok(None) => None,
        Err(e) => Some(Err(fail(e))),
    });
    let (rows, truncated) = cap_rows(iter, max_rows)?;
    Ok(ReadOnlyRows {
        columns,
        rows,
        truncated,
    })
}

/// What the authorizer callback sees.
struct AuthState {
    /// False while the statement is compiled, true while it runs.
    running: Cell<bool>,
    /// The first thing refused, for the error message.
    denied: Cell<Option<Denial>>,
}

/// What the authorizer refused first: SQLite's action code and its first argument (a
/// pragma's or table's name).
struct Denial {
    action: c_int,
    name: Option<String>,
}

impl Denial {
    fn into_error(self) -> Error {
        let name = self.name.unwrap_or_default();
        let why = match self.action {
            ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH => {
                "ATTACH and DETACH change the database connection".to_owned()
            }
            ffi::SQLITE_TRANSACTION | ffi::SQLITE_SAVEPOINT => {
                "transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) would take over the primary's transaction".to_owned()
            }
            ffi::SQLITE_PRAGMA => format!(
                "PRAGMA statements may change the connection; read `{name}` with its table-valued form, e.g. SELECT * FROM pragma_{name}"
            ),
            _ => "this statement writes (SQLite's authorizer was asked to allow a change)"
                .to_owned(),
        };
        Error::Rejected(format!("only one read-only statement is allowed: {why}"))
    }
}

/// Installs the read-only authorizer on a connection for as long as it lives.
///
/// It replaces any authorizer the connection had (NativePrimary installs none) and clears
/// it on drop. Installing one makes SQLite re-prepare cached statements on their next use,
/// which is harmless: by then the authorizer is gone.
struct ReadOnlyAuthorizer<'c> {
    conn: &'c rusqlite::Connection,
}

impl<'c> ReadOnlyAuthorizer<'c> {
    fn install(conn: &'c rusqlite::Connection, state: &'c AuthState) -> Self {
        // SAFETY: the handle is that of a live connection borrowed for 'c; `state` outlives
        // the guard (both borrowed for 'c), and the guard clears the callback before either
        // goes away. The callback only reads its arguments and `state`'s cells.
        unsafe {
            ffi::sqlite3_set_authorizer(
                conn.handle(),
                Some(authorize),
                std::ptr::from_ref::<AuthState>(state) as *mut c_void,
            );
        }
        ReadOnlyAuthorizer { conn }
    }
}

impl Drop for ReadOnlyAuthorizer<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `install`; removing the callback needs no user data.
        unsafe {
            ffi::sqlite3_set_authorizer(self.conn.handle(), None, std::ptr::null_mut());
        }
    }
}

/// SQLite's authorizer callback, called while SQLite compiles a statement: allow reading,
/// deny everything else, and remember the first thing denied for the error message.
///
/// One exception while the statement runs: SQLite's table-valued pragma functions
/// (`pragma_table_info('t')`) compile a `PRAGMA` statement of their own at that point. They
/// exist only for pragmas that return results, and take only the argument that selects
/// what to read (`SELECT * FROM pragma_user_version(7)` is an error), so they are allowed;
/// a `PRAGMA` in the caller's own statement was refused when it was compiled.
unsafe extern "C" fn authorize(
    user: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    _arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: `user` is the `AuthState` passed by `ReadOnlyAuthorizer::install`, alive while
    // the callback is installed.
    let state = unsafe { &*(user as *const AuthState) };
    match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_READ | ffi::SQLITE_FUNCTION | ffi::SQLITE_RECURSIVE => {
            ffi::SQLITE_OK
        }
        ffi::SQLITE_PRAGMA if state.running.get() => ffi::SQLITE_OK,
        _ => {
            let first = state.denied.take().or_else(|| {
                // SAFETY: `arg1` is null or a NUL-terminated string valid for this call.
                let name = (!arg1.is_null()).then(|| {
                    unsafe { CStr::from_ptr(arg1) }
                        .to_string_lossy()
                        .into_owned()
                });
                Some(Denial { action, name })
            });
            state.denied.set(first);
            ffi::SQLITE_DENY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primary::Primary;

    fn db() -> NativePrimary {
        let db = NativePrimary::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO t (name) VALUES ('a'), ('b'), ('c');",
        )
        .unwrap();
        db
    }

    fn rejected(db: &NativePrimary, sql: &str) -> String {
        match db.query_readonly(sql, &[], 100) {
            Err(Error::Rejected(m)) => m,
            other => panic!("{sql}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn reads_pass() {
        let db = db();
        for sql in [
            "SELECT name FROM t ORDER BY id",
            "  -- a comment\n select name from t order by id; -- trailing comment",
            "WITH x AS (SELECT name FROM t) SELECT name FROM x ORDER BY name",
            "SELECT name FROM t WHERE name <> ';DELETE FROM t' ORDER BY id",
        ] {
            let out = db.query_readonly(sql, &[], 10).unwrap();
            assert_eq!(out.rows.len(), 3, "{sql}");
            assert!(!out.truncated);
        }
    }

    #[test]
    fn connection_changes_that_sqlite_calls_readonly_are_refused() {
        let db = db();
        assert!(rejected(&db, "ATTACH ':memory:' AS other").contains("ATTACH"));
        assert!(rejected(&db, "DETACH other").contains("DETACH"));
        assert!(rejected(&db, "BEGIN").contains("transaction"));
        assert!(rejected(&db, "COMMIT").contains("transaction"));
        assert!(rejected(&db, "SAVEPOINT s").contains("transaction"));
        assert!(rejected(&db, "PRAGMA foreign_keys = ON").contains("PRAGMA"));
        // The table-valued form reads pragmas.
        let out = db
            .query_readonly(
                "SELECT name FROM pragma_table_info('t') ORDER BY cid",
                &[],
                10,
            )
            .unwrap();
        assert_eq!(
            out.rows,
            [
                vec![Value::Text("id".into())],
                vec![Value::Text("name".into())]
            ]
        );
        // The connection is untouched: autocommit, no attached database.
        assert!(db.connection().is_autocommit());
        let dbs = db
            .query("SELECT name FROM pragma_database_list", &[])
            .unwrap();
        assert_eq!(dbs, [vec![Value::Text("main".into())]]);
    }

    #[test]
    fn the_authorizer_is_removed_afterwards() {
        let db = db();
        let _ = db.query_readonly("ATTACH ':memory:' AS other", &[], 1);
        db.query_readonly("SELECT 1", &[], 1).unwrap();
        // Ordinary writes work again, including through re-prepared cached statements.
        db.execute(
            "INSERT INTO t (name) VALUES (?1)",
            &[Value::Text("d".into())],
        )
        .unwrap();
        db.execute(
            "INSERT INTO t (name) VALUES (?1)",
            &[Value::Text("e".into())],
        )
        .unwrap();
        db.execute_batch("PRAGMA user_version = 3").unwrap();
    }

    #[test]
    fn parameter_count_must_match() {
        let db = db();
        let m = match db.query_readonly("SELECT * FROM t WHERE id = ?1", &[], 10) {
            Err(Error::Rejected(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.contains("1 parameter(s) but 0"), "{m}");
    }

    #[test]
    fn sqlite_errors_are_not_rejections() {
        let db = db();
        assert!(matches!(
            db.query_readonly("SELECT * FROM nope", &[], 10),
            Err(Error::Primary(_))
        ));
        assert!(matches!(
            db.query_readonly("SELEKT 1", &[], 10),
            Err(Error::Primary(_))
        ));
    }
}
