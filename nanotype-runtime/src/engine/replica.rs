//! The replica: the shared read database (D1), asynchronous, written in transactional batches.

use crate::error::Result;
use crate::value::{Row, Value};

/// One statement with its bound parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// SQL text; every value is a bound parameter.
    pub sql: String,
    /// The bound parameters, `?1` first.
    pub params: Vec<Value>,
}

impl Statement {
    /// A statement with its parameters.
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Statement {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

/// Where a session's first statement is answered (D1's Sessions API): later statements of the
/// session never see an older state than earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStart<'a> {
    /// Any copy, the nearest read replica included (`first-unconstrained`).
    Any,
    /// The primary database (`first-primary`): the newest state.
    Primary,
    /// A copy at least as new as this bookmark (one a session returned earlier).
    After(&'a str),
}

/// What a batch in a session returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionRows {
    /// The rows each statement returned, in order.
    pub rows: Vec<Vec<Row>>,
    /// The session's bookmark after the batch (`None` where the backend has none).
    pub bookmark: Option<String>,
    /// Whether the primary database answered (`None`: the backend does not say).
    pub served_by_primary: Option<bool>,
}

/// The shared replica every room writes to. Like D1: asynchronous, and a batch is one
/// transaction (all statements apply or none do).
#[allow(async_fn_in_trait)]
pub trait Replica {
    /// Run one read statement.
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>>;
    /// Run statements as one transaction; the rows each statement returned, in order.
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>>;
    /// [`Self::batch`] in a session that starts at `start`: the rows, the session's bookmark
    /// after it, and whether the primary answered.
    async fn session_batch(
        &self,
        start: SessionStart<'_>,
        stmts: &[Statement],
    ) -> Result<SessionRows> {
        let _ = start;
        Ok(SessionRows {
            rows: self.batch(stmts).await?,
            ..SessionRows::default()
        })
    }
}

impl<R: Replica + ?Sized> Replica for &R {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        (**self).query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        (**self).batch(stmts).await
    }
    async fn session_batch(
        &self,
        start: SessionStart<'_>,
        stmts: &[Statement],
    ) -> Result<SessionRows> {
        (**self).session_batch(start, stmts).await
    }
}

impl<R: Replica + ?Sized> Replica for std::rc::Rc<R> {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        (**self).query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        (**self).batch(stmts).await
    }
    async fn session_batch(
        &self,
        start: SessionStart<'_>,
        stmts: &[Statement],
    ) -> Result<SessionRows> {
        (**self).session_batch(start, stmts).await
    }
}

/// Whether the replica has nanotype's tables (`_nt_rooms`, made by the first D1 migration).
pub async fn has_tables<R: Replica + ?Sized>(replica: &R) -> Result<bool> {
    let rows = replica
        .query(&Statement::new(
            "SELECT 1 FROM \"sqlite_master\" WHERE \"type\" = 'table' AND \"name\" = '_nt_rooms'",
            Vec::new(),
        ))
        .await?;
    Ok(!rows.is_empty())
}
