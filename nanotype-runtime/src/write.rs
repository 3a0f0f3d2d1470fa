//! The one write path. Every generated insert/update/upsert/delete comes here, and here the
//! change is recorded in the outbox in the same transaction as the row: both or neither.

use crate::error::{Error, Result};
use crate::outbox;
use crate::primary::Primary;
use crate::table::Table;
use crate::value::{Row, Value};

/// What kind of write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    Update,
    Upsert,
    Delete,
}

/// Run `statement` and append the change of `key` to the outbox, atomically. `key_of` finds the
/// key of the changed row in what the statement returned (for inserts that assign it).
fn apply<P: Primary, R>(
    db: &P,
    table: &str,
    change: impl FnOnce() -> Result<Option<(Value, R)>>,
) -> Result<Option<R>> {
    let out = db.transaction(|| {
        let Some((key, out)) = change()? else {
            return Ok(None);
        };
        outbox::append(db, table, key)?;
        Ok(Some(out))
    })?;
    if out.is_some() {
        db.changed();
    }
    Ok(out)
}

fn one_row<T: Table>(rows: Vec<Row>) -> Result<Option<(Value, T)>> {
    match rows.into_iter().next() {
        None => Ok(None),
        Some(row) => {
            let key = row
                .get(T::sql().key_position)
                .cloned()
                .unwrap_or(Value::Null);
            Ok(Some((key, T::from_row(row)?)))
        }
    }
}

/// Insert `row`. An `i64` key is assigned by SQLite (the struct's key is ignored); any other key
/// is taken from the struct. Returns the row as stored.
pub fn insert<T: Table, P: Primary>(db: &P, row: &T) -> Result<T> {
    let sql = T::sql();
    let mut values = row.to_row()?;
    if sql.assigns_key {
        values.remove(sql.key_position);
    }
    apply(db, &T::DEF.name, || {
        one_row::<T>(db.query(&sql.insert, &values)?)
    })?
    .ok_or_else(|| Error::Primary("insert returned no row".into()))
}

/// Insert `row` with its own key, or replace the row with that key. Returns the row as stored.
pub fn upsert<T: Table, P: Primary>(db: &P, row: &T) -> Result<T> {
    let values = row.to_row()?;
    apply(db, &T::DEF.name, || {
        one_row::<T>(db.query(&T::sql().upsert, &values)?)
    })?
    .ok_or_else(|| Error::Primary("upsert returned no row".into()))
}

/// Update the row with `row`'s key. [`Error::NotFound`] when there is none.
pub fn update<T: Table, P: Primary>(db: &P, row: &T) -> Result<T> {
    let values = row.to_row()?;
    apply(db, &T::DEF.name, || {
        one_row::<T>(db.query(&T::sql().update, &values)?)
    })?
    .ok_or_else(|| Error::NotFound {
        table: T::DEF.name.to_string(),
    })
}

/// Delete the row with `key`. Returns whether a row was deleted.
pub fn delete<T: Table, P: Primary>(db: &P, key: Value) -> Result<bool> {
    let found = apply(db, &T::DEF.name, || {
        let n = db.execute(&T::sql().delete, std::slice::from_ref(&key))?;
        Ok((n > 0).then(|| (key.clone(), ())))
    })?;
    Ok(found.is_some())
}
