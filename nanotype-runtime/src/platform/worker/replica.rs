//! The shared replica: a D1 database.

use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::{
    D1Database as D1DatabaseSys, D1DatabaseSession as D1SessionSys, D1Result as D1ResultSys,
};
use worker::D1Database;

use super::js_error_text;
use super::js_value::{params_to_js, row_from_array, row_from_object};
use crate::error::{Error, Result};
use crate::replica::{Replica, SessionRows, SessionStart, Statement};
use crate::value::Row;

/// A D1 binding as the shared [`Replica`]. A [`Replica::batch`] is one `db.batch(...)`: one
/// transaction, all statements or none.
///
/// ```ignore
/// let replica = nanotype::worker::D1Replica::new(env.d1("DB")?);
/// let reads = nanotype::read::ReplicaReads(replica);
/// let tasks = Task::room_list(&reads, "room-1", &nanotype::Page::first(50)).await?;
/// ```
pub struct D1Replica {
    db: D1Database,
    /// Shared by clones: what this replica's statements were billed for.
    meter: std::rc::Rc<crate::billing::Meter>,
}

impl Clone for D1Replica {
    fn clone(&self) -> D1Replica {
        // The binding is a JS object; clones refer to the same database.
        D1Replica {
            db: self.db.as_ref().clone().unchecked_into(),
            meter: self.meter.clone(),
        }
    }
}

fn err(e: JsValue) -> Error {
    Error::Replica(crate::error::SqlError::from_platform(js_error_text(&e)))
}

impl D1Replica {
    /// The replica over a D1 binding.
    pub fn new(db: D1Database) -> D1Replica {
        D1Replica {
            db,
            meter: std::rc::Rc::default(),
        }
    }

    /// What this replica's batches were billed for, since it was made (clones share it).
    pub fn billed(&self) -> crate::billing::Billed {
        self.meter.get()
    }

    /// The replica bound as `binding` (e.g. `"DB"`) in `env`.
    pub fn from_env(env: &worker::Env, binding: &str) -> Result<D1Replica> {
        env.d1(binding)
            .map(D1Replica::new)
            .map_err(|e| Error::Replica(format!("no D1 binding `{binding}`: {e}").into()))
    }

    /// The D1 binding.
    pub fn database(&self) -> &D1Database {
        &self.db
    }

    fn prepare(&self, stmt: &Statement) -> Result<worker::D1PreparedStatement> {
        self.db
            .prepare(stmt.sql.as_str())
            .bind(&params_to_js(&stmt.params))
            .map_err(|e| Error::Replica(e.to_string().into()))
    }
}

impl Replica for D1Replica {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        let prepared = self.prepare(stmt)?;
        // `raw()`: rows as arrays, in column order.
        let promise = prepared.inner().raw().map_err(err)?;
        let rows = JsFuture::from(promise).await.map_err(err)?;
        let rows: Array = rows
            .dyn_into()
            .map_err(|_| Error::Replica("D1 raw() did not return an array".into()))?;
        Ok(rows.iter().map(row_from_array).collect())
    }

    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        let prepared: Array = stmts
            .iter()
            .map(|s| self.prepare(s).map(|p| JsValue::from(p.inner().clone())))
            .collect::<Result<_>>()?;
        let db: &D1DatabaseSys = self.db.as_ref().unchecked_ref();
        let promise = db.batch(prepared).map_err(err)?;
        self.results(JsFuture::from(promise).await.map_err(err)?)
    }

    async fn session_batch(
        &self,
        start: SessionStart<'_>,
        stmts: &[Statement],
    ) -> Result<SessionRows> {
        if stmts.is_empty() {
            return Ok(SessionRows::default());
        }
        let db: &D1DatabaseSys = self.db.as_ref().unchecked_ref();
        let constraint = match start {
            SessionStart::Any => "first-unconstrained",
            SessionStart::Primary => "first-primary",
            SessionStart::After(bookmark) => bookmark,
        };
        let session: D1SessionSys = db.with_session(Some(constraint)).map_err(err)?;
        let prepared: Array = stmts
            .iter()
            .map(|s| {
                let p = session.session_prepare(s.sql.as_str()).map_err(err)?;
                worker::D1PreparedStatement::from(p)
                    .bind(&params_to_js(&s.params))
                    .map(|p| JsValue::from(p.inner().clone()))
                    .map_err(|e| Error::Replica(e.to_string().into()))
            })
            .collect::<Result<_>>()?;
        let promise = session.session_batch(prepared).map_err(err)?;
        let results = JsFuture::from(promise).await.map_err(err)?;
        // `meta.served_by_primary` of the first statement (D1 with read replication says it).
        let served_by_primary = js_sys::Reflect::get(&results, &JsValue::from(0))
            .and_then(|r| js_sys::Reflect::get(&r, &JsValue::from_str("meta")))
            .and_then(|m| js_sys::Reflect::get(&m, &JsValue::from_str("served_by_primary")))
            .ok()
            .and_then(|v| v.as_bool());
        let rows = self.results(results)?;
        let bookmark = session.get_bookmark().map_err(err)?;
        Ok(SessionRows {
            rows,
            bookmark,
            served_by_primary,
        })
    }
}

impl D1Replica {
    /// The rows of each statement of a batch's results, billing each as D1 reports it.
    fn results(&self, results: JsValue) -> Result<Vec<Vec<Row>>> {
        self.meter.batch();
        let results: Array = results
            .dyn_into()
            .map_err(|_| Error::Replica("D1 batch() did not return an array".into()))?;
        let mut out = Vec::with_capacity(results.length() as usize);
        for result in results.iter() {
            let result: D1ResultSys = result.unchecked_into();
            if !result.success().map_err(err)? {
                let why = result.error().map_err(err)?.unwrap_or_default();
                return Err(Error::Replica(crate::error::SqlError::from_platform(
                    format!("D1 batch statement failed: {why}"),
                )));
            }
            // What D1 billed for it: `meta.rows_read`, `meta.rows_written`.
            let meta = result.meta().map_err(err)?;
            let field = |name: &str| {
                js_sys::Reflect::get(&meta, &JsValue::from_str(name))
                    .ok()
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0) as u64
            };
            self.meter
                .statement(field("rows_read"), field("rows_written"));
            // Batch results are objects keyed by column name, in column order.
            let rows = result.results().map_err(err)?;
            out.push(
                rows.map(|r| r.iter().map(row_from_object).collect())
                    .unwrap_or_default(),
            );
        }
        Ok(out)
    }
}
