//! Queries across rooms: the reads only the replica can answer (an admin view, "my open tasks in
//! every project"), since each room's Durable Object holds only its own rows.
//!
//! A page is keyset-paged on `(room_id, key)`, the replica table's primary key, so a page is one
//! index range per shard. The rooms a caller may see are name prefixes, each a range of that
//! leading `room_id` column: a page never reads a row of a room outside them. An equality filter
//! on a field that leads an index is allowed, as in a room's listing. Over several shards every
//! shard is read at once for `limit + 1` rows and the pages are merged in `(room, key)` order:
//! one page costs at most one D1 query per shard.
//!
//! Consistency: each room's rows are as of that room's own watermark on its shard (rooms
//! replicate independently); there is no snapshot across rooms. A room whose copy is not whole on
//! a shard (being rebuilt, or moved away) is left out there: each row read is checked against its
//! room's `_nt_rooms` row, one more row read per row.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::replica::{Replica, Statement};
use crate::table::{Table, TableSql};
use crate::value::{Row, Value};
use nanotype_schema::ddl::ROOMS_TABLE;
use nanotype_schema::ident::quote;
use nanotype_schema::{Table as TableDef, ROOM_COLUMN};

/// The most rows one page across rooms holds.
pub const MAX_ACROSS_LIMIT: u32 = 1_000;

/// A page of a table across rooms: which rooms, which rows, from where, how many.
#[derive(Clone, Debug, PartialEq)]
pub struct Across {
    prefixes: Option<Vec<String>>,
    filter: Option<(String, Value)>,
    after: Option<(String, Value)>,
    limit: u32,
}

impl Default for Across {
    fn default() -> Across {
        Across {
            prefixes: None,
            filter: None,
            after: None,
            limit: 100,
        }
    }
}

impl Across {
    /// The first page of every room's rows, 100 rows.
    pub fn all() -> Across {
        Across::default()
    }

    /// Only rooms whose names start with one of `prefixes` (none: no room).
    #[must_use]
    pub fn rooms_with_prefixes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        prefixes: I,
    ) -> Across {
        self.prefixes = Some(prefixes.into_iter().map(Into::into).collect());
        self
    }

    /// Only rows whose column `column` (SQL name) equals `value`.
    #[must_use]
    pub fn filter(mut self, column: &str, value: impl Into<Value>) -> Across {
        self.filter = Some((column.to_owned(), value.into()));
        self
    }

    /// The page after the row of `room` with `key` (the last row of the previous page).
    #[must_use]
    pub fn after(mut self, room: &str, key: impl Into<Value>) -> Across {
        self.after = Some((room.to_owned(), key.into()));
        self
    }

    /// At most `limit` rows (1 to [`MAX_ACROSS_LIMIT`]).
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Across {
        self.limit = limit.clamp(1, MAX_ACROSS_LIMIT);
        self
    }

    /// The rows asked for at most.
    pub fn page_size(&self) -> u32 {
        self.limit
    }
}

/// One page across rooms: each row with its room, and where the next page starts.
#[derive(Clone, Debug, PartialEq)]
pub struct AcrossPage<T> {
    /// `(room, row)` in `(room, key)` order.
    pub rows: Vec<(String, T)>,
    /// `(room, key)` of the last row when there is a next page (pass it to [`Across::after`]).
    pub next: Option<(String, Value)>,
}

/// The statement one shard runs for `q` over table `def`: `room_id` then the model's columns,
/// `limit + 1` rows (the extra one says whether a next page exists).
pub fn statement(def: &TableDef, sql: &TableSql, q: &Across) -> Result<Statement> {
    let room = quote(ROOM_COLUMN);
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(prefixes) = &q.prefixes {
        conds.push(crate::api::rooms::prefix_ranges(
            &room,
            prefixes,
            &mut params,
        ));
    }
    if let Some((column, value)) = &q.filter {
        let col = def.column(column).ok_or_else(|| Error::UnknownColumn {
            table: def.name.to_string(),
            column: column.clone(),
        })?;
        params.push(value.clone());
        let op = if col.nullable { "IS" } else { "=" };
        conds.push(format!("{} {op} ?{}", quote(column), params.len()));
    }
    if let Some((after_room, after_key)) = &q.after {
        params.push(Value::Text(after_room.clone()));
        let first = params.len();
        let parts = sql.key_parts(after_key)?;
        let width = parts.len();
        params.extend(parts);
        let ph: Vec<String> = (first..=first + width).map(|i| format!("?{i}")).collect();
        conds.push(format!(
            "({room}, {}) > ({})",
            sql.key_columns,
            ph.join(", ")
        ));
    }
    // Only rooms whose copy is whole on this shard: not being rebuilt (a resync, or the copy of
    // a room moving here) and not moved away (its rows here are going).
    conds.push(format!(
        "EXISTS (SELECT 1 FROM {rooms} AS \"r\" WHERE \"r\".{room} = \"t\".{room} \
         AND \"r\".\"watermark\" NOT IN (0, {moved}))",
        rooms = quote(ROOMS_TABLE),
        moved = crate::sync::moves::MOVED_WATERMARK,
    ));
    params.push(Value::Integer(i64::from(q.limit) + 1));
    Ok(Statement::new(
        format!(
            "SELECT {room}, {} FROM {} AS \"t\" WHERE {} ORDER BY {room}, {} LIMIT ?{}",
            sql.columns,
            sql.table,
            conds.join(" AND "),
            sql.key_columns,
            params.len()
        ),
        params,
    ))
}

/// One page of `q` over every shard: `(room, row)` in `(room, key)` order, and whether more
/// rows follow.
pub async fn rows<R: Replica>(
    shards: &[R],
    def: &TableDef,
    sql: &TableSql,
    q: &Across,
) -> Result<(Vec<(String, Row)>, bool)> {
    let stmt = statement(def, sql, q)?;
    let pages = futures_util::future::join_all(shards.iter().map(|s| s.query(&stmt))).await;
    let mut all: Vec<(String, Row)> = Vec::new();
    for page in pages {
        for mut row in page? {
            if row.is_empty() {
                continue;
            }
            let room = match row.remove(0) {
                Value::Text(room) => room,
                other => {
                    return Err(Error::Decode {
                        column: ROOM_COLUMN.to_owned(),
                        message: format!("expected the room's name, got {other:?}"),
                    })
                }
            };
            all.push((room, row));
        }
    }
    let key = |row: &Row| -> Vec<Value> {
        sql.key
            .positions
            .iter()
            .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
            .collect()
    };
    nanotype_schema::sort::sort_by(&mut all, |(ra, a), (rb, b)| {
        ra.cmp(rb).then_with(|| cmp_values(&key(a), &key(b)))
    });
    let more = all.len() > q.limit as usize;
    all.truncate(q.limit as usize);
    Ok((all, more))
}

/// A typed page of `T` across rooms over `shards` (see [`Across`]).
pub async fn find_across<T: Table, R: Replica>(shards: &[R], q: &Across) -> Result<AcrossPage<T>> {
    let sql = T::sql();
    let (rows, more) = rows(shards, T::DEF, sql, q).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut last = None;
    for (room, row) in rows {
        let value = T::from_row(row)?;
        last = Some((room.clone(), value.key()?));
        out.push((room, value));
    }
    Ok(AcrossPage {
        rows: out,
        next: if more { last } else { None },
    })
}

/// SQLite's order of values (NULL, numbers, text, blobs; text by bytes).
fn cmp_values(a: &[Value], b: &[Value]) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Value::Integer(i), Value::Integer(j)) => i.cmp(j),
            (Value::Integer(i), Value::Real(f)) => (*i as f64).total_cmp(f),
            (Value::Real(f), Value::Integer(i)) => f.total_cmp(&(*i as f64)),
            (Value::Real(f), Value::Real(g)) => f.total_cmp(g),
            (Value::Text(s), Value::Text(t)) => s.cmp(t),
            (Value::Blob(s), Value::Blob(t)) => s.cmp(t),
            _ => rank(x).cmp(&rank(y)),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}
