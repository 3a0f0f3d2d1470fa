//! Reads: the room's own rows from its primary, and room-scoped reads that go to the replica.
//!
//! Every room-scoped query is built here from the table's model, with the room id bound as
//! parameter `?1` of the replica statement. No generated read can name another room, and no SQL
//! is rewritten after the fact.

use crate::error::{Error, Result};
use crate::primary::Primary;
use crate::replica::{Replica, Statement};
use crate::table::{Table, TableSql};
use crate::value::{Row, Value};
use nanotype_schema::ident::quote;
use nanotype_schema::Table as TableDef;

/// Key order of a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    /// Ascending key order.
    Asc,
    /// Descending key order.
    Desc,
}

/// A keyset page: rows after `after` (in `order`), at most `limit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Rows after this key (exclusive); `None` from the first.
    pub after: Option<Value>,
    /// At most this many rows.
    pub limit: u32,
    /// Key order.
    pub order: Order,
}

impl Default for Page {
    fn default() -> Page {
        Page {
            after: None,
            limit: 100,
            order: Order::Asc,
        }
    }
}

impl Page {
    /// The first `limit` rows by ascending key.
    pub fn first(limit: u32) -> Page {
        Page {
            limit,
            ..Page::default()
        }
    }
    /// The `limit` rows after `key`.
    pub fn after(key: impl Into<Value>, limit: u32) -> Page {
        Page {
            after: Some(key.into()),
            limit,
            ..Page::default()
        }
    }
    /// Descending key order.
    pub fn desc(mut self) -> Page {
        self.order = Order::Desc;
        self
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Integer(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

/// How fresh a room-scoped read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// From the room's primary: sees every committed write.
    Strong,
    /// From the replica (may lag); falls back to the primary when the replica fails.
    Replica,
    /// From the replica if it has applied the caller's write with this seq, else the primary.
    ReadYourWrites(i64),
}

/// A room-scoped query, in its replica form (`room_id = ?1`, then the other parameters) and its
/// primary form (the same condition without the room).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomQuery {
    /// The replica statement: `room_id = ?1`, then the other parameters.
    pub replica_sql: String,
    /// The primary statement: the same condition without the room.
    pub primary_sql: String,
    /// Parameters after the room id (`?2…` in the replica form, `?1…` in the primary form).
    pub params: Vec<Value>,
}

impl RoomQuery {
    /// The replica statement for `room`.
    pub fn for_replica(&self, room: &str) -> Statement {
        let mut params = Vec::with_capacity(self.params.len() + 1);
        params.push(Value::Text(room.to_owned()));
        params.extend(self.params.iter().cloned());
        Statement::new(self.replica_sql.clone(), params)
    }
}

/// Where room-scoped reads are answered.
#[allow(async_fn_in_trait)]
pub trait RoomReads {
    /// Rows of `room` for `query`.
    async fn read(&self, room: &str, query: &RoomQuery) -> Result<Vec<Row>>;
}

/// Room-scoped reads answered by the replica alone (e.g. a stateless Worker reading D1).
pub struct ReplicaReads<R>(pub R);

impl<R: Replica> RoomReads for ReplicaReads<R> {
    async fn read(&self, room: &str, query: &RoomQuery) -> Result<Vec<Row>> {
        check_room(room)?;
        self.0.query(&query.for_replica(room)).await
    }
}

/// Room-scoped reads answered by one room's primary (strong consistency).
pub struct PrimaryReads<'a, P> {
    /// The room's primary.
    pub db: &'a P,
    /// The room it holds.
    pub room: &'a str,
}

impl<P: Primary> RoomReads for PrimaryReads<'_, P> {
    async fn read(&self, room: &str, query: &RoomQuery) -> Result<Vec<Row>> {
        if room != self.room {
            return Err(Error::WrongRoom {
                asked: room.to_owned(),
                own: self.room.to_owned(),
            });
        }
        self.db.query(&query.primary_sql, &query.params)
    }
}

/// A room id must be non-empty and at most 256 bytes; it is always bound, never spliced.
pub fn check_room(room: &str) -> Result<()> {
    if room.is_empty() || room.len() > 256 {
        return Err(Error::InvalidRoom(format!(
            "a room id is 1 to 256 bytes, got {} bytes",
            room.len()
        )));
    }
    Ok(())
}

/// Build a listing: optional equality filter on `column`, keyset page on the key.
pub fn list_query<T: Table>(filter: Option<(&str, Value)>, page: &Page) -> Result<RoomQuery> {
    list_query_of(T::DEF, T::sql(), filter, page)
}

/// A listing's condition, given the number of its first parameter.
type Cond<'a> = Box<dyn Fn(usize) -> String + 'a>;

/// [`list_query`] for a table given by its model and statements.
pub fn list_query_of(
    def: &TableDef,
    sql: &TableSql,
    filter: Option<(&str, Value)>,
    page: &Page,
) -> Result<RoomQuery> {
    // Conditions as functions of their first parameter's number: the filter binds one, the
    // cursor one per key column.
    let mut conds: Vec<(Cond, usize)> = Vec::new();
    let mut params = Vec::new();
    if let Some((column, value)) = filter {
        let nullable = def.column(column).is_some_and(|c| c.nullable);
        params.push(value);
        let (column, op) = (quote(column), if nullable { "IS" } else { "=" });
        conds.push((Box::new(move |p| format!("{column} {op} ?{p}")), 1));
    }
    if let Some(after) = &page.after {
        let parts = sql.key_parts(after)?;
        let width = parts.len();
        params.extend(parts);
        let op = if page.order == Order::Asc { ">" } else { "<" };
        conds.push((Box::new(move |p| sql.key.cmp_sql(op, p)), width));
    }
    params.push(Value::Integer(i64::from(page.limit)));
    let dir = if page.order == Order::Asc {
        "ASC"
    } else {
        "DESC"
    };
    let render = |base: &str, first_param: usize, has_where: bool| {
        let mut s = base.to_owned();
        let mut next = first_param;
        for (i, (cond, width)) in conds.iter().enumerate() {
            s.push_str(if i == 0 && !has_where {
                " WHERE "
            } else {
                " AND "
            });
            s.push_str(&cond(next));
            next += width;
        }
        s.push_str(&format!(
            " ORDER BY {} LIMIT ?{next}",
            sql.key.order_sql(dir)
        ));
        s
    };
    Ok(RoomQuery {
        replica_sql: render(&sql.replica_select, 2, true),
        primary_sql: render(&sql.select, 1, false),
        params,
    })
}

/// The row with `key`.
pub fn get_query<T: Table>(key: Value) -> Result<RoomQuery> {
    get_query_of(T::sql(), key)
}

/// [`get_query`] for a table given by its statements.
pub fn get_query_of(sql: &TableSql, key: Value) -> Result<RoomQuery> {
    Ok(RoomQuery {
        replica_sql: format!("{} AND {}", sql.replica_select, sql.key.eq_sql(2)),
        primary_sql: sql.get.clone(),
        params: sql.key_parts(&key)?,
    })
}

/// The number of rows.
pub fn count_query<T: Table>() -> RoomQuery {
    let table = &T::sql().table;
    RoomQuery {
        replica_sql: format!("SELECT COUNT(*) FROM {table} WHERE \"room_id\" = ?1"),
        primary_sql: format!("SELECT COUNT(*) FROM {table}"),
        params: Vec::new(),
    }
}

fn rows_to<T: Table>(rows: Vec<Row>) -> Result<Vec<T>> {
    rows.into_iter().map(T::from_row).collect()
}

/// The row with `key` in the room's primary.
pub fn get<T: Table, P: Primary>(db: &P, key: Value) -> Result<Option<T>> {
    Ok(
        rows_to::<T>(db.query(&T::sql().get, &T::sql().key_parts(&key)?)?)?
            .into_iter()
            .next(),
    )
}

/// A keyset page of the room's primary.
pub fn list<T: Table, P: Primary>(db: &P, page: &Page) -> Result<Vec<T>> {
    let q = list_query::<T>(None, page)?;
    rows_to(db.query(&q.primary_sql, &q.params)?)
}

/// Room-scoped: the row with `key`.
pub async fn room_get<T: Table, R: RoomReads>(r: &R, room: &str, key: Value) -> Result<Option<T>> {
    Ok(rows_to::<T>(r.read(room, &get_query::<T>(key)?).await?)?
        .into_iter()
        .next())
}

/// Room-scoped: a keyset page.
pub async fn room_list<T: Table, R: RoomReads>(r: &R, room: &str, page: &Page) -> Result<Vec<T>> {
    rows_to(r.read(room, &list_query::<T>(None, page)?).await?)
}

/// Room-scoped: rows whose `column` equals `value`, keyset-paged.
pub async fn room_find_by<T: Table, R: RoomReads>(
    r: &R,
    room: &str,
    column: &str,
    value: Value,
    page: &Page,
) -> Result<Vec<T>> {
    rows_to(
        r.read(room, &list_query::<T>(Some((column, value)), page)?)
            .await?,
    )
}

/// Room-scoped: the number of rows.
pub async fn room_count<T: Table, R: RoomReads>(r: &R, room: &str) -> Result<i64> {
    let rows = r.read(room, &count_query::<T>()).await?;
    match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
        Some(v) => crate::value::FromValue::from_value(v, "COUNT(*)"),
        None => Ok(0),
    }
}
