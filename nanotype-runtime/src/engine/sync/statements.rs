//! The replica statements a flush or backfill sends, built within D1's limits.
//!
//! Every statement that changes a room's rows carries the same guard: it applies only while the
//! replica's `_nt_rooms` row names this primary and has not seen a newer read
//! (`read_seq <= ?3`). Parameters `?1` (room), `?2` (primary id) and `?3` (the primary's seq when
//! the batch was read) are shared by every statement of a batch. A batch delivered twice, or late,
//! therefore changes nothing: the room row already holds a newer `read_seq`.

use crate::error::Result;
use crate::key::KeyColumns;
use crate::replica::Statement;
use crate::value::{Row, Value};
use nanotype_schema::ddl::ROOMS_TABLE;
use nanotype_schema::ident::quote;
use nanotype_schema::{Table as TableDef, ROOM_COLUMN};

/// D1's limits, and the engine's own batch bounds.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bound parameters per statement (D1: 100).
    pub max_params: usize,
    /// Statements per batch.
    pub max_statements: usize,
    /// Bytes of SQL text plus bound text/blob values per statement (D1: 100 KB of SQL).
    pub max_statement_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_params: 100,
            max_statements: 50,
            max_statement_bytes: 90_000,
        }
    }
}

/// The identity a batch is sent under.
#[derive(Clone, Debug)]
pub struct Guard {
    pub room: String,
    pub primary_id: String,
    /// The primary's seq when the batch's rows were read.
    pub read_seq: i64,
}

const GUARD_PARAMS: usize = 3;

// A scalar subquery, not `EXISTS (...)`: SQLite re-prepares an `INSERT … SELECT * FROM (VALUES …)
// WHERE EXISTS (…)` on every run (binding its parameters expires the plan), which made parsing
// the multi-row upserts about half of a flush's time. The room is the key of `_nt_rooms`, so the
// subquery yields one row or none, exactly when `EXISTS` would be true or false.
fn guard_sql() -> String {
    format!(
        "(SELECT 1 FROM {} WHERE {} = ?1 AND \"primary_id\" = ?2 AND \"read_seq\" <= ?3) IS NOT NULL",
        quote(ROOMS_TABLE),
        quote(ROOM_COLUMN)
    )
}

impl Guard {
    fn params(&self) -> Vec<Value> {
        vec![
            Value::Text(self.room.clone()),
            Value::Text(self.primary_id.clone()),
            Value::Integer(self.read_seq),
        ]
    }
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Text(s) => s.len(),
        Value::Blob(b) => b.len(),
        _ => 8,
    }
}

/// Multi-row upserts of `rows` (model column order) into the replica table. `referenced`: other
/// tables reference this one (its rows are then updated in place, never replaced).
pub fn upserts(
    def: &TableDef,
    rows: Vec<Row>,
    referenced: bool,
    guard: &Guard,
    limits: &Limits,
) -> Vec<Statement> {
    let ncols = def.columns.len().max(1);
    let per_stmt = ((limits.max_params - GUARD_PARAMS) / ncols).max(1);
    let table = quote(&def.name);
    let key = KeyColumns::of(def).list();
    let cols: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();
    let set: Vec<String> = def
        .columns
        .iter()
        .filter(|c| !c.primary_key)
        .map(|c| format!("{0} = excluded.{0}", quote(&c.name)))
        .collect();
    let conflict = if set.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", set.join(", "))
    };
    // A table with unique indexes: a row may take a unique value that the replica still gives
    // to another row of the room whose own change is in this batch or an earlier one (a swap, a
    // move, a REPLACE in the room). `OR REPLACE` removes that stale row, whose current state this
    // batch or an earlier one sends; an upsert would fail on it. Other tables update in place.
    // A referenced table's rows are never replaced: `OR REPLACE` deletes the old row, and the
    // replica's foreign keys would delete the rows that reference it. Its swapped unique values
    // (rare) fail the batch visibly instead (`blocked` in the room's status).
    let replace = !referenced && def.indexes.iter().any(|i| i.unique);
    let head = format!(
        "INSERT {}INTO {table} ({}, {}) SELECT * FROM (VALUES ",
        if replace { "OR REPLACE " } else { "" },
        quote(ROOM_COLUMN),
        cols.join(", ")
    );
    let tail = if replace {
        format!(") WHERE {}", guard_sql())
    } else {
        format!(
            ") WHERE {} ON CONFLICT ({}, {key}) {conflict}",
            guard_sql(),
            quote(ROOM_COLUMN)
        )
    };

    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut params = guard.params();
        let mut n = 0;
        let mut bytes = head.len() + tail.len();
        while n < per_stmt {
            let Some(row) = rows.peek() else { break };
            let row_bytes: usize = row.iter().map(value_bytes).sum::<usize>() + 8 * ncols;
            if n > 0 && bytes + row_bytes > limits.max_statement_bytes {
                break;
            }
            params.extend(rows.next().into_iter().flatten());
            bytes += row_bytes;
            n += 1;
        }
        out.push(Statement::new(upsert_sql(&head, &tail, ncols, n), params));
    }
    out
}

thread_local! {
    /// Multi-row upsert text by (head, tail, rows): a flush sends the same shapes again and again.
    static UPSERT_SQL: std::cell::RefCell<std::collections::HashMap<(String, String, usize), String>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// `head (?1, ?4, …), (?1, …) tail` for `n` rows of `ncols` values after the guard's parameters.
fn upsert_sql(head: &str, tail: &str, ncols: usize, n: usize) -> String {
    let key = (head.to_owned(), tail.to_owned(), n);
    if let Some(sql) = UPSERT_SQL.with(|c| c.borrow().get(&key).cloned()) {
        return sql;
    }
    let mut sql = String::with_capacity(head.len() + tail.len() + n * ncols * 6);
    sql.push_str(head);
    for r in 0..n {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?1");
        for c in 0..ncols {
            let p = GUARD_PARAMS + 1 + r * ncols + c;
            sql.push_str(&format!(", ?{p}"));
        }
        sql.push(')');
    }
    sql.push_str(tail);
    UPSERT_SQL.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 256 {
            c.clear();
        }
        c.insert(key, sql.clone());
    });
    sql
}

/// Deletes of the rows with `keys`.
pub fn deletes(
    def: &TableDef,
    keys: &[Value],
    guard: &Guard,
    limits: &Limits,
) -> Result<Vec<Statement>> {
    let key = KeyColumns::of(def);
    let per_stmt = ((limits.max_params - GUARD_PARAMS) / key.arity()).max(1);
    let table = quote(&def.name);
    keys.chunks(per_stmt)
        .map(|chunk| {
            let mut params = guard.params();
            params.extend(key.params(chunk)?);
            Ok(Statement::new(
                format!(
                    "DELETE FROM {table} WHERE {} = ?1 AND {} AND {}",
                    quote(ROOM_COLUMN),
                    key.any_sql(GUARD_PARAMS + 1, chunk.len()),
                    guard_sql()
                ),
                params,
            ))
        })
        .collect()
}

/// Delete the room's replica rows with keys in `(after, up_to]` that are not in `keep` (the keys
/// the primary has in that range, bound as one JSON array). `None` bounds are open.
pub fn sweep(
    def: &TableDef,
    after: Option<&Value>,
    up_to: Option<&Value>,
    keep: &[Value],
    guard: &Guard,
) -> Result<Statement> {
    let table = quote(&def.name);
    let key = KeyColumns::of(def);
    let mut params = guard.params();
    let mut sql = format!("DELETE FROM {table} WHERE {} = ?1", quote(ROOM_COLUMN));
    key.push_range(&mut sql, &mut params, after, up_to)?;
    let mut json = Vec::with_capacity(keep.len());
    for k in keep {
        json.push(if key.is_composite() {
            serde_json::Value::Array(key.parts(k)?.iter().map(Value::to_json).collect())
        } else {
            k.to_json()
        });
    }
    params.push(Value::Text(serde_json::Value::Array(json).to_string()));
    // A composite key's parts are taken out of each array of the list.
    let kept = if key.is_composite() {
        let parts: Vec<String> = (0..key.arity())
            .map(|i| format!("json_extract(\"value\", '$[{i}]')"))
            .collect();
        format!("({}) NOT IN (SELECT {}", key.list(), parts.join(", "))
    } else {
        format!("{} NOT IN (SELECT \"value\"", key.list())
    };
    sql.push_str(&format!(
        " AND {kept} FROM json_each(?{})) AND {}",
        params.len(),
        guard_sql()
    ));
    Ok(Statement::new(sql, params))
}

/// The room's state after the batch's last statement (the claim or the room update), in the
/// same transaction: no row means the batch did not apply under this primary.
const RETURNING_STATE: &str = "RETURNING \"watermark\", \"read_seq\", \"primary_id\"";

/// Take (or retake) the room for this primary: watermark back to 0 until the resync completes.
/// Applies when the room is new, belongs to another primary id, or this is not a stale claim.
pub fn claim(guard: &Guard, now_ms: i64) -> Statement {
    let rooms = quote(ROOMS_TABLE);
    Statement::new(
        format!(
            "INSERT INTO {rooms} ({room}, \"watermark\", \"read_seq\", \"primary_id\", \"updated_at\") \
             VALUES (?1, 0, ?3, ?2, ?4) ON CONFLICT ({room}) DO UPDATE SET \"watermark\" = 0, \
             \"read_seq\" = excluded.\"read_seq\", \"primary_id\" = excluded.\"primary_id\", \
             \"updated_at\" = excluded.\"updated_at\" \
             WHERE {rooms}.\"primary_id\" <> excluded.\"primary_id\" OR {rooms}.\"read_seq\" <= excluded.\"read_seq\" \
             {RETURNING_STATE}",
            room = quote(ROOM_COLUMN)
        ),
        vec![
            Value::Text(guard.room.clone()),
            Value::Text(guard.primary_id.clone()),
            Value::Integer(guard.read_seq),
            Value::Integer(now_ms),
        ],
    )
}

/// The replica refused one of the room's changes for good (see the engine's `blocked` health):
/// its watermark goes to -1 until a batch applies again (`MAX(watermark, ..)` lifts it), so the
/// gateway sends the room's replica reads to its primary meanwhile.
pub fn mark_blocked(guard: &Guard) -> Statement {
    Statement::new(
        format!(
            "UPDATE {} SET \"watermark\" = -1 WHERE {} = ?1 AND \"primary_id\" = ?2",
            quote(ROOMS_TABLE),
            quote(ROOM_COLUMN)
        ),
        vec![
            Value::Text(guard.room.clone()),
            Value::Text(guard.primary_id.clone()),
        ],
    )
}

/// The room's replication has failed for longer than its staleness bound: its watermark goes
/// to -2 (unless it is blocked already, -1) until a batch applies again, so the gateway sends
/// the room's replica reads to its primary meanwhile.
pub fn mark_stale(guard: &Guard) -> Statement {
    Statement::new(
        format!(
            "UPDATE {} SET \"watermark\" = -2 WHERE {} = ?1 AND \"primary_id\" = ?2 \
             AND \"watermark\" >= 0",
            quote(ROOMS_TABLE),
            quote(ROOM_COLUMN)
        ),
        vec![
            Value::Text(guard.room.clone()),
            Value::Text(guard.primary_id.clone()),
        ],
    )
}

/// How a batch moves the watermark.
#[derive(Clone, Copy, Debug)]
pub enum Watermark {
    /// Raise it to at least this (a flush of changes up to this seq).
    AtLeast(i64),
    /// Set it (a resync completed: everything before the oldest pending change is applied).
    Set(i64),
    /// Leave it (a backfill page, or a flush during a resync).
    Keep,
}

/// Record that the batch was read at `guard.read_seq`, and move the watermark; guarded like the
/// row statements, so a stale batch records nothing (and returns no row). Last in every batch.
pub fn room_update(guard: &Guard, watermark: Watermark, now_ms: i64) -> Statement {
    let (expr, w) = match watermark {
        Watermark::AtLeast(w) => ("MAX(\"watermark\", ?5)", w),
        Watermark::Set(w) => ("?5", w),
        Watermark::Keep => ("MAX(\"watermark\", ?5)", 0),
    };
    let mut params = guard.params();
    params.push(Value::Integer(now_ms));
    params.push(Value::Integer(w));
    Statement::new(
        format!(
            "UPDATE {} SET \"read_seq\" = ?3, \"watermark\" = {expr}, \"updated_at\" = ?4 \
             WHERE {} = ?1 AND \"primary_id\" = ?2 AND \"read_seq\" <= ?3 {RETURNING_STATE}",
            quote(ROOMS_TABLE),
            quote(ROOM_COLUMN)
        ),
        params,
    )
}

/// The room's replication state (the start-up check, read-your-writes in a Worker).
pub fn room_state(room: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT \"watermark\", \"read_seq\", \"primary_id\" FROM {} WHERE {} = ?1",
            quote(ROOMS_TABLE),
            quote(ROOM_COLUMN)
        ),
        vec![Value::Text(room.to_owned())],
    )
}

/// The replica's view of a room.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomState {
    /// Every change with a seq up to this is applied (0 while the room is being rebuilt).
    pub watermark: i64,
    /// The primary's seq when the newest applied batch was read.
    pub read_seq: i64,
    /// The identity of the primary that owns the room.
    pub primary_id: String,
}

impl RoomState {
    /// Parse the rows of the room-state query: `None` when the replica has no row for the room.
    pub fn from_rows(rows: &[Row]) -> Option<RoomState> {
        let row = rows.first()?;
        let int = |v: Option<&Value>| match v {
            Some(Value::Integer(i)) => *i,
            Some(Value::Real(f)) => *f as i64,
            _ => 0,
        };
        Some(RoomState {
            watermark: int(row.first()),
            read_seq: int(row.get(1)),
            primary_id: match row.get(2) {
                Some(Value::Text(s)) => s.clone(),
                _ => String::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanotype_schema::{Column, ValueKind};

    fn table(ncols: usize) -> TableDef {
        let mut cols = vec![Column::new("id", ValueKind::I64).primary_key()];
        for i in 1..ncols {
            cols.push(Column::new(&format!("c{i}"), ValueKind::String));
        }
        TableDef::new("t", "T", cols)
    }

    fn guard() -> Guard {
        Guard {
            room: "r".into(),
            primary_id: "p".into(),
            read_seq: 7,
        }
    }

    #[test]
    fn upserts_respect_the_parameter_limit() {
        let def = table(10);
        let rows: Vec<Row> = (0..100)
            .map(|i| {
                let mut r = vec![Value::Integer(i)];
                r.extend((1..10).map(|_| Value::Text("x".into())));
                r
            })
            .collect();
        let stmts = upserts(&def, rows.clone(), false, &guard(), &Limits::default());
        assert_eq!(stmts.len(), 100usize.div_ceil(9));
        for s in &stmts {
            assert!(s.params.len() <= 100, "{}", s.params.len());
            assert!(s.sql.contains(&format!("?{}", s.params.len())));
        }
    }

    #[test]
    fn upserts_respect_the_statement_size() {
        let def = table(2);
        let big = "x".repeat(40_000);
        let rows: Vec<Row> = (0..5)
            .map(|i| vec![Value::Integer(i), Value::Text(big.clone())])
            .collect();
        let stmts = upserts(&def, rows.clone(), false, &guard(), &Limits::default());
        assert_eq!(stmts.len(), 3);
    }

    /// The guard must not make SQLite re-prepare the multi-row upsert on every run (it did with
    /// `EXISTS`, and parsing dominated a flush), and must still refuse a stale batch.
    #[cfg(feature = "native")]
    #[test]
    fn upserts_stay_prepared_and_guarded() {
        use rusqlite::{params_from_iter, Connection, StatementStatus};
        let def = table(3);
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(nanotype_schema::ddl::REPLICA_META)
            .unwrap();
        conn.execute_batch(&nanotype_schema::ddl::replica_ddl(&def))
            .unwrap();
        let run = |s: &Statement| {
            let mut stmt = conn.prepare_cached(&s.sql).unwrap();
            stmt.execute(params_from_iter(s.params.iter())).unwrap()
        };
        {
            // The claim returns the room's state (RETURNING), so it is stepped as a query.
            let c = claim(&guard(), 0);
            let mut stmt = conn.prepare(&c.sql).unwrap();
            let mut rows = stmt.query(params_from_iter(c.params.iter())).unwrap();
            assert!(rows.next().unwrap().is_some(), "a new room is claimed");
        }
        let rows = |from: i64| -> Vec<Row> {
            (from..from + 5)
                .map(|i| {
                    vec![
                        Value::Integer(i),
                        Value::Text("a".into()),
                        Value::Text("b".into()),
                    ]
                })
                .collect()
        };
        for k in 0..4 {
            let stmts = upserts(&def, rows(k * 5), false, &guard(), &Limits::default());
            assert_eq!(stmts.len(), 1);
            assert_eq!(run(&stmts[0]), 5);
        }
        let sql = upserts(&def, rows(0), false, &guard(), &Limits::default())[0]
            .sql
            .clone();
        let stmt = conn.prepare_cached(&sql).unwrap();
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
        drop(stmt);
        let stale = Guard {
            read_seq: guard().read_seq - 1,
            ..guard()
        };
        let stmts = upserts(&def, rows(100), false, &stale, &Limits::default());
        assert_eq!(run(&stmts[0]), 0, "a stale batch changes nothing");
        let wrong = Guard {
            primary_id: "other".into(),
            ..guard()
        };
        let stmts = deletes(&def, &[Value::Integer(1)], &wrong, &Limits::default()).unwrap();
        assert_eq!(run(&stmts[0]), 0, "another primary's batch changes nothing");
    }

    #[test]
    fn deletes_chunk() {
        let keys: Vec<Value> = (0..250).map(Value::Integer).collect();
        let stmts = deletes(&table(2), &keys, &guard(), &Limits::default()).unwrap();
        assert_eq!(stmts.len(), 3);
        assert!(stmts.iter().all(|s| s.params.len() <= 100));
    }
}
