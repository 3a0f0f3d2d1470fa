//! The one write path. Every generated insert/update/upsert/delete comes here, and the change is
//! recorded in the outbox in the same transaction as the row: both or neither. In a room's engine
//! the capture triggers record it ([`crate::capture`]); on a bare database this code does.

use crate::api::WriteOp;
use crate::error::{Error, Result};
use crate::outbox;
use crate::primary::Primary;
use crate::table::{Table, TableSql};
use crate::value::{Row, Value};

/// Run `change` and append the change of the key it returns to the outbox, atomically; the
/// row it returns (none for a delete) is offered to the engine's [`WriteHooks::record`](crate::primary::WriteHooks::record) in the same transaction.
fn apply<P: Primary>(
    db: &P,
    table: &str,
    change: impl FnOnce() -> Result<Option<(Value, Option<Row>)>>,
) -> Result<Option<Option<Row>>> {
    let hooks = db.hooks();
    if let Some(h) = hooks {
        h.check_table(table)?;
    }
    let out = db.transaction(|| {
        let Some((key, row)) = change()? else {
            return Ok(None);
        };
        // A room's engine records the change with a trigger, inside the statement that made it.
        match hooks {
            Some(h) => h.record(None, table, &key, row.as_ref())?,
            None => {
                outbox::append(db, table, key.clone())?;
            }
        }
        Ok(Some(row))
    })?;
    if let (Some(h), Some(_)) = (hooks, &out) {
        h.changed();
    }
    Ok(out)
}

fn first_row(rows: Vec<Row>, sql: &TableSql) -> Option<(Value, Option<Row>)> {
    let row = rows.into_iter().next()?;
    Some((sql.row_key(&row), Some(row)))
}

/// A failed foreign key, named: SQLite says only `FOREIGN KEY constraint failed`, so each
/// reference of the row is looked up and the first one without its parent row is named. Any
/// other failure, or one no lookup explains (a row in another table still pointing at this one),
/// is returned as it came.
fn explain_parent<P: Primary>(db: &P, sql: &TableSql, values: &Row, e: Error) -> Error {
    use crate::error::{Constraint, SqlError, SqlKind};
    // The Durable Object's SQL API gives only the primary code (`SQLITE_CONSTRAINT`): a
    // constraint of unknown kind is explained too, when a lookup finds a parent missing.
    let Error::Primary(SqlError {
        kind: SqlKind::Constraint(Constraint::ForeignKey | Constraint::Other),
        code,
        message,
    }) = &e
    else {
        return e;
    };
    for p in &sql.parents {
        let Some(value) = values.get(p.position).filter(|v| **v != Value::Null) else {
            continue;
        };
        if matches!(db.query(&p.exists, std::slice::from_ref(value)), Ok(rows) if rows.is_empty()) {
            return Error::Primary(SqlError {
                kind: SqlKind::Constraint(Constraint::ForeignKey),
                code: code.clone(),
                message: format!(
                    "column `{}.{}`: no row in `{}` with `{}` = {} ({message})",
                    sql.name,
                    p.column,
                    p.parent,
                    p.parent_column,
                    shown(value)
                ),
            });
        }
    }
    e
}

/// A value as a message shows it: text quoted and cut at 64 characters.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) if t.chars().count() > 64 => {
            format!("'{}…'", t.chars().take(64).collect::<String>())
        }
        Value::Text(t) => format!("'{t}'"),
        Value::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// Insert `values` (model column order) into the table of `sql`. An `i64` key is assigned by
/// SQLite (the given key is ignored). Returns the row as stored.
pub fn insert_row<P: Primary>(db: &P, sql: &TableSql, values: Row) -> Result<Row> {
    let given = values.clone();
    insert_given(db, sql, values).map_err(|e| explain_parent(db, sql, &given, e))
}

fn insert_given<P: Primary>(db: &P, sql: &TableSql, mut values: Row) -> Result<Row> {
    if sql.assigns_key {
        values.remove(sql.key_position);
    }
    apply(db, &sql.name, || {
        let row = first_row(db.query(&sql.insert, &values)?, sql);
        if sql.assigns_key {
            // NULL (no key left) becomes a rowid SQLite picks past the exact range: refused,
            // and the insert rolled back with the transaction.
            match &row {
                Some((Value::Integer(k), _))
                    if crate::value::check_safe_integer(*k, "").is_ok() => {}
                _ => {
                    return Err(Error::KeySpaceExhausted {
                        table: sql.name.clone(),
                    })
                }
            }
        }
        Ok(row)
    })?
    .flatten()
    .ok_or_else(|| Error::Primary("insert returned no row".into()))
}

/// Insert `values` with their own key, or replace the row with that key.
pub fn upsert_row<P: Primary>(db: &P, sql: &TableSql, values: Row) -> Result<Row> {
    apply(db, &sql.name, || {
        Ok(first_row(db.query(&sql.upsert, &values)?, sql))
    })
    .map_err(|e| explain_parent(db, sql, &values, e))?
    .flatten()
    .ok_or_else(|| Error::Primary("upsert returned no row".into()))
}

/// Update the row with the key in `values`. [`Error::NotFound`] when there is none.
pub fn update_row<P: Primary>(db: &P, sql: &TableSql, values: Row) -> Result<Row> {
    apply(db, &sql.name, || {
        Ok(first_row(db.query(&sql.update, &values)?, sql))
    })
    .map_err(|e| explain_parent(db, sql, &values, e))?
    .flatten()
    .ok_or_else(|| Error::NotFound {
        table: sql.name.clone(),
    })
}

/// Delete the row with `key` (for a composite key, what [`crate::key::compose`] makes). Returns
/// whether a row was deleted.
pub fn delete_row<P: Primary>(db: &P, sql: &TableSql, key: Value) -> Result<bool> {
    let parts = sql.key_parts(&key)?;
    let found = apply(db, &sql.name, || {
        // `RETURNING` says whether a row went, in the delete's own statement (a backend may
        // pay a statement for a change count).
        if db.query(&sql.delete, &parts)?.is_empty() {
            return Ok(None);
        }
        // In a room the capture trigger keeps the high-water mark (for raw deletes too).
        if let (Some(retire), false) = (&sql.retire_key, db.hooks().is_some()) {
            db.query(retire, &parts)?;
        }
        Ok(Some((key, None)))
    })?;
    Ok(found.is_some())
}

/// Insert `row`. An `i64` key is assigned by SQLite (the struct's key is ignored); any other key
/// is taken from the struct. Returns the row as stored.
pub fn insert<T: Table, P: Primary>(db: &P, row: &T) -> Result<T> {
    let row = validated(db, row, WriteOp::Create)?;
    T::from_row(insert_row(db, T::sql(), row)?)
}

/// Insert `row` with its own key, or replace the row with that key. Returns the row as stored.
pub fn upsert<T: Table, P: Primary>(db: &P, row: &T) -> Result<T> {
    let row = validated(db, row, WriteOp::Put)?;
    T::from_row(upsert_row(db, T::sql(), row)?)
}

/// Update the row with `row`'s key. [`Error::NotFound`] when there is none.
pub fn update<T: Table, P: Primary>(db: &P, row: &T) -> Result<T> {
    let row = validated(db, row, WriteOp::Patch)?;
    T::from_row(update_row(db, T::sql(), row)?)
}

/// `row`'s values, through its table's validation when it has one ([`crate::Validate`]): on a
/// copy, since validation may change the row. Refused: [`Error::Rejected`].
fn validated<T: Table, P: Primary>(db: &P, row: &T, op: WriteOp) -> Result<Row> {
    if !T::VALIDATES {
        return row.to_row();
    }
    let mut owned = T::from_row(row.to_row()?)?;
    let hooks = db.hooks();
    let caller = hooks
        .and_then(crate::primary::WriteHooks::caller)
        .unwrap_or_default();
    let write = crate::WriteCtx::new(
        op,
        hooks.map_or(0, crate::primary::WriteHooks::clock_ms),
        &caller,
    );
    owned
        .validate(&write)
        .map_err(|e| Error::Rejected(e.message))?;
    owned.to_row()
}

/// Delete the row with `key`. Returns whether a row was deleted.
pub fn delete<T: Table, P: Primary>(db: &P, key: Value) -> Result<bool> {
    delete_row(db, T::sql(), key)
}
