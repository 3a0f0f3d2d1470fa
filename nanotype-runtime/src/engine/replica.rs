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

/// The shared replica every room writes to. Like D1: asynchronous, and a batch is one
/// transaction (all statements apply or none do).
#[allow(async_fn_in_trait)]
pub trait Replica {
    /// Run one read statement.
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>>;
    /// Run statements as one transaction; the rows each statement returned, in order.
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>>;
}

impl<R: Replica + ?Sized> Replica for &R {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        (**self).query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        (**self).batch(stmts).await
    }
}

impl<R: Replica + ?Sized> Replica for std::rc::Rc<R> {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        (**self).query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        (**self).batch(stmts).await
    }
}
