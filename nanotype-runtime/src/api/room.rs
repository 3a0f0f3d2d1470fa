//! What the room's Durable Object does with a routed request: writes (with the app's
//! validation), strong and fallback reads from the primary, sync status, resync, read-only SQL,
//! and the app's custom routes. Generic over the backend, so the native backend runs the same
//! code as the Durable Object.

use serde_json::{json, Value as Json};

use super::app::{Caller, RoomCtx, Router};
use super::body;

use super::error::ApiError;
use super::params::ReadParams;
use super::route::{Route, TableOp};
use crate::actor::analytics::ReadOnlySql;
use crate::clock::Scheduler;
use crate::primary::Primary;
use crate::registry::{TableEntry, TypedRow};
use crate::replica::Replica;
use crate::sync::{Engine, RoomDb};
use crate::value::Value;

/// Rows a read-only SQL query may return at most.
pub const MAX_SQL_ROWS: usize = 1_000;

/// What a route answers: a status and a JSON body, and the room's seq after a write.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Json,
    /// The room's seq after a write (sent as `x-nanotype-seq` for read-your-writes).
    pub seq: Option<i64>,
    /// The host should run a sync after the response (a resync was requested).
    pub sync_after: bool,
    /// The reply of an earlier attempt with the same `Idempotency-Key`: nothing was written now.
    pub replayed: bool,
    /// The read token of a table route's answer (`x-nanotype-token`), set by the host.
    #[doc(hidden)]
    pub token: Option<String>,
}

impl Reply {
    /// A reply with this status and body.
    pub fn json(status: u16, body: Json) -> Reply {
        Reply {
            status,
            body,
            seq: None,
            sync_after: false,
            replayed: false,
            token: None,
        }
    }
}

/// A request routed to a room, as the room sees it.
#[derive(Clone, Copy, Debug, Default)]
#[doc(hidden)]
pub struct RoomRequest<'a> {
    /// The query string's pairs.
    pub query: &'a [(String, String)],
    /// The `x-nanotype-seq` header (read-your-writes).
    pub seq: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
    /// Why the gateway sent a replica read here instead of answering it from D1.
    pub fallback: Option<&'a str>,
    /// The `Idempotency-Key` header of a write.
    pub idempotency_key: Option<&'a str>,
    /// Who made the request, as the policy decided.
    pub caller: Option<&'a Caller>,
}

/// The kind of write an app's validation sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// `POST`: a new row.
    Create,
    /// `PUT`: a row stored whole under its key (new or replacing).
    Put,
    /// `PATCH`: a stored row with some fields changed.
    Patch,
    /// `DELETE`.
    Delete,
}

/// A write about to commit, as the app's [`RoomHooks::before_write`] sees it.
pub struct Write<'a> {
    op: WriteOp,
    table: &'static TableEntry,
    row: Option<&'a mut TypedRow>,
    key: Option<&'a Value>,
    now_ms: i64,
    caller: Option<&'a Caller>,
}

impl Write<'_> {
    /// What kind of write.
    pub fn op(&self) -> WriteOp {
        self.op
    }
    /// The table's SQL name.
    pub fn table(&self) -> &'static str {
        self.table.name()
    }
    /// The row to store, as `T`, when this is a write of `T`'s table (not for deletes). Change
    /// it to store something else (a server-side timestamp, a normalised field).
    pub fn row_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.row.as_deref_mut().and_then(|r| r.get_mut::<T>())
    }
    /// The key in the path (put, patch, delete).
    pub fn key(&self) -> Option<&Value> {
        self.key
    }
    /// The room's clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
    /// Who is writing, as the policy decided (anonymous for a write from app code).
    pub fn caller(&self) -> &Caller {
        static ANONYMOUS: std::sync::OnceLock<Caller> = std::sync::OnceLock::new();
        self.caller
            .unwrap_or_else(|| ANONYMOUS.get_or_init(Caller::anonymous))
    }
}

/// How an app plugs into its rooms. Every method has a default: `()` is an app with none.
///
/// ```
/// use nanotype::api::{ApiError, RoomHooks, Write, WriteOp};
///
/// #[nanotype::table(name = "notes")]
/// #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
/// pub struct Note { #[nanotype(primary_key)] pub id: i64, pub text: String, pub at: i64 }
///
/// #[derive(Default)]
/// struct Hooks;
/// impl RoomHooks for Hooks {
///     fn before_write(&self, w: &mut Write<'_>) -> Result<(), ApiError> {
///         let now = w.now_ms();
///         if let Some(note) = w.row_mut::<Note>() {
///             if note.text.trim().is_empty() {
///                 return Err(ApiError::rejected("`text` is empty"));
///             }
///             note.at = now;
///         }
///         Ok(())
///     }
/// }
/// ```
#[allow(async_fn_in_trait)]
pub trait RoomHooks: Default + 'static {
    /// Check (and adjust) a write before it commits; an error refuses it and nothing is
    /// written.
    fn before_write(&self, _write: &mut Write<'_>) -> Result<(), ApiError> {
        Ok(())
    }

    /// The app's custom routes under `/rooms/{room}/` ([`Router`]): built once when a room's
    /// object starts. Nothing else under a room is a route, and only a route that writes brings
    /// a room never written into being: typos and probes of unknown rooms store nothing.
    ///
    /// A handler that needs the hooks' own state (a memory store, a debouncer) captures this
    /// `Rc` in a closure.
    fn routes(self: std::rc::Rc<Self>) -> Router {
        Router::new()
    }

    /// A timer set with [`RoomCtx::set_timer`] is due. Runs in the room's alarm, before the
    /// alarm's sync, so what it writes is delivered by that sync. An error is logged; the timer
    /// is not run again.
    async fn timer(&self, _room: RoomCtx, _name: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Whether `POST /rooms/{room}/_sql` (one read-only statement, enforced by SQLite) is
    /// served. Off unless the app turns it on.
    fn read_only_sql(&self) -> bool {
        false
    }

    /// The most rows a read-only query may scan, by its plan's estimate; a heavier one is
    /// refused before it runs ([`crate::actor::sql_guard`]).
    fn read_only_sql_budget(&self) -> u64 {
        crate::actor::sql_guard::DEFAULT_BUDGET_ROWS
    }

    /// The change feed of `room` (`GET /rooms/{room}/_feed`, a WebSocket the policy admits like
    /// any route; [`crate::feed`]) and its limits. Off (`None`) unless the app turns it on, for
    /// every room or some: on, every write also logs its change, one more row written in the
    /// Durable Object per write.
    fn feed(&self, _room: &str) -> Option<crate::feed::FeedConfig> {
        None
    }

    /// Tune the replication of `room` (its flush window, batch size, delivery delay, audit
    /// interval) from the Worker's defaults (`NANOTYPE_*` variables, else
    /// [`crate::sync::SyncConfig::default`]), when its Durable Object opens it. A room written
    /// in bursts may take a longer window and fewer, larger batches.
    fn sync_config(&self, _room: &str, _config: &mut crate::sync::SyncConfig) {}
}

impl RoomHooks for () {}

/// What a custom route does to its room ([`Router::route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// It only reads: on a room never written it is a 404, and the room is not created.
    Reads,
    /// It may write: it creates its room when the room was never written.
    Writes,
}

/// Serve `route` in the room of `engine` (writes, strong reads, fallback reads, status). A table
/// write with an `Idempotency-Key` is applied once ([`super::idempotency`]).
#[doc(hidden)]
pub fn serve<H, P, R, S>(
    engine: &Engine<P, R, S>,
    hooks: &H,
    route: &Route,
    req: &RoomRequest<'_>,
) -> Result<Reply, ApiError>
where
    H: RoomHooks,
    P: Primary + ReadOnlySql,
    R: Replica,
    S: Scheduler,
{
    let is_write = matches!(
        route,
        Route::Table {
            op: TableOp::Create | TableOp::Put(_) | TableOp::Patch(_) | TableOp::Delete(_),
            ..
        }
    );
    let Some(key) = req.idempotency_key.filter(|_| is_write) else {
        return serve_once(engine, hooks, route, req);
    };
    super::idempotency::check_key(key)?;
    let db = engine.primary();
    let hash = match route {
        Route::Table { table, op, .. } => {
            let (write, key) = match op {
                TableOp::Create => ("create", None),
                TableOp::Put(k) => ("put", Some(k)),
                TableOp::Patch(k) => ("patch", Some(k)),
                TableOp::Delete(k) => ("delete", Some(k)),
                TableOp::Get(_) | TableOp::List => ("read", None),
            };
            let key = key.map(|k| table.sql().key_json(k));
            super::idempotency::request_hash(write, table.name(), key.as_ref(), req.body)
        }
        _ => return serve_once(engine, hooks, route, req),
    };
    // The lookup, the write and the record of its reply commit together or not at all.
    let mut refused: Option<ApiError> = None;
    let out = db.transaction(|| {
        let reply = match super::idempotency::replay(db, key, &hash)? {
            Some(earlier) => earlier,
            None => serve_once(engine, hooks, route, req).and_then(|reply| {
                let now = engine.scheduler().now_ms();
                super::idempotency::record(db, key, &hash, &reply, now)?;
                Ok(reply)
            }),
        };
        reply.map_err(|e| {
            refused = Some(e);
            crate::Error::Rejected("refused".into())
        })
    });
    match (out, refused) {
        (Ok(reply), _) => Ok(reply),
        (Err(_), Some(api)) => Err(api),
        (Err(e), None) => Err(e.into()),
    }
}

fn serve_once<H, P, R, S>(
    engine: &Engine<P, R, S>,
    hooks: &H,
    route: &Route,
    req: &RoomRequest<'_>,
) -> Result<Reply, ApiError>
where
    H: RoomHooks,
    P: Primary + ReadOnlySql,
    R: Replica,
    S: Scheduler,
{
    let RoomRequest {
        query,
        seq: seq_header,
        body,
        fallback,
        ..
    } = *req;
    let db = engine.primary();
    let room = engine.room();
    let now_ms = engine.scheduler().now_ms();
    match route {
        Route::Health => Ok(Reply::json(200, json!({ "ok": true }))),
        Route::Table { table, op, .. } => {
            let sql = table.sql();
            // `{"<field>": value, "seq": <the room's seq after the write>}`.
            let written = |status: u16, field: &str, value: Json| -> Result<Reply, ApiError> {
                let seq = engine.current_seq()?;
                let mut body = serde_json::Map::new();
                body.insert(field.to_owned(), value);
                body.insert("seq".to_owned(), seq.into());
                Ok(Reply {
                    seq: Some(seq),
                    ..Reply::json(status, Json::Object(body))
                })
            };
            let anonymous = Caller::anonymous();
            let caller = req.caller.unwrap_or(&anonymous);
            let check = |op: WriteOp, mut row: Option<&mut TypedRow>, key: Option<&Value>| {
                if let Some(row) = row.as_deref_mut() {
                    row.validate(&crate::WriteCtx::new(op, now_ms, caller))?;
                }
                hooks.before_write(&mut Write {
                    op,
                    table,
                    row,
                    key,
                    now_ms,
                    caller: req.caller,
                })
            };
            match op {
                TableOp::Create => {
                    let mut row = body::create(table, body)?;
                    check(WriteOp::Create, Some(&mut row), None)?;
                    let stored = crate::write::insert_row(db, sql, row.to_row()?)?;
                    written(201, "row", table.row_to_json(stored)?)
                }
                TableOp::Put(key) => {
                    let mut row = body::put(table, key, body)?;
                    check(WriteOp::Put, Some(&mut row), Some(key))?;
                    let stored = crate::write::upsert_row(db, sql, row.to_row()?)?;
                    written(200, "row", table.row_to_json(stored)?)
                }
                TableOp::Patch(key) => {
                    let current = get_row(db, table, key)?.ok_or_else(|| not_found(table, key))?;
                    let mut row = body::patch(table, current, body)?;
                    check(WriteOp::Patch, Some(&mut row), Some(key))?;
                    let stored = crate::write::update_row(db, sql, row.to_row()?)?;
                    written(200, "row", table.row_to_json(stored)?)
                }
                TableOp::Delete(key) => {
                    check(WriteOp::Delete, None, Some(key))?;
                    if !crate::write::delete_row(db, sql, key.clone())? {
                        return Err(not_found(table, key));
                    }
                    written(200, "deleted", table.sql().key_json(key))
                }
                TableOp::Get(key) => {
                    let row = get_row(db, table, key)?.ok_or_else(|| not_found(table, key))?;
                    Ok(Reply::json(
                        200,
                        json!({ "row": row, "source": "primary", "fallback": fallback }),
                    ))
                }
                TableOp::List => {
                    let params = ReadParams::parse(table, query, seq_header)?;
                    let q = params.list_query(table)?;
                    let rows = db.query(&q.primary_sql, &q.params)?;
                    let rows = rows_json(table, rows)?;
                    Ok(Reply::json(
                        200,
                        json!({
                            "rows": rows,
                            "source": "primary",
                            "fallback": fallback,
                            "seq": engine.current_seq()?,
                        }),
                    ))
                }
            }
        }
        Route::Sync { .. } => Ok(Reply::json(
            200,
            json!({ "room": room, "health": engine.health()? }),
        )),
        Route::Audit { .. } => {
            engine.request_audit();
            let mut reply = Reply::json(202, json!({ "room": room, "audit": "started" }));
            reply.sync_after = true;
            Ok(reply)
        }
        Route::Resync { .. } => {
            engine.request_resync()?;
            let mut reply = Reply::json(202, json!({ "room": room, "resync": "started" }));
            reply.sync_after = true;
            Ok(reply)
        }
        Route::Move { .. } => Err(ApiError::internal("a move is served by the room's host")),
        Route::Sql { .. } if hooks.read_only_sql() => {
            read_only_sql(db, body, hooks.read_only_sql_budget())
        }
        Route::Sql { .. } => Err(ApiError::not_found(
            "read-only SQL is off (an app turns it on with RoomHooks::read_only_sql)",
        )),
        Route::Feed { .. } => Err(ApiError::new(
            426,
            "upgrade_required",
            "the feed is a WebSocket: send `Upgrade: websocket`",
        )),
        Route::Rooms | Route::Across { .. } | Route::Asset(_) | Route::OpenApi => Err(
            ApiError::not_found("this route is served by the Worker, not by a room"),
        ),
        Route::Custom { .. } => Err(ApiError::internal(
            "a custom route is run by the room's host",
        )),
    }
}

/// Whether `route` may bring a room into being: a create, a put, or a custom route the app
/// declares as writing ([`Router`]). Everything else on a room never written is
/// answered by [`unborn`], which stores nothing: reads, typos and probes of unknown rooms cannot
/// fill the database with empty rooms.
#[doc(hidden)]
pub fn creates_room(route: &Route, routes: &Router) -> bool {
    match route {
        Route::Table {
            op: TableOp::Create | TableOp::Put(_),
            ..
        } => true,
        Route::Custom { method, path, .. } => routes.kind(method, path) == Some(RouteKind::Writes),
        _ => false,
    }
}

/// The answer for a room that was never written (no engine state in its database), without
/// creating any: an empty page for a listing, 404 for a row, the status or a resync.
#[doc(hidden)]
pub fn unborn(
    route: &Route,
    query: &[(String, String)],
    seq_header: Option<&str>,
) -> Result<Reply, ApiError> {
    match route {
        Route::Health => Ok(Reply::json(200, json!({ "ok": true }))),
        Route::Rooms
        | Route::Across { .. }
        | Route::Asset(_)
        | Route::OpenApi
        | Route::Feed { .. } => Err(ApiError::not_found(
            "this route is not answered by a room's engine",
        )),
        Route::Table {
            table,
            op: TableOp::List,
            ..
        } => {
            ReadParams::parse(table, query, seq_header)?;
            Ok(Reply::json(
                200,
                json!({ "rows": [], "source": "primary", "seq": 0 }),
            ))
        }
        Route::Table {
            table,
            op: TableOp::Get(key) | TableOp::Patch(key) | TableOp::Delete(key),
            ..
        } => Err(not_found(table, key)),
        Route::Custom { room, path, .. } => Err(ApiError::not_found(format!(
            "no route /{} in room `{room}`, which has never been written",
            path.join("/")
        ))),
        Route::Table { .. } => Err(ApiError::internal(
            "this route creates its room; open the engine",
        )),
        Route::Sync { room }
        | Route::Resync { room }
        | Route::Move { room }
        | Route::Sql { room }
        | Route::Audit { room } => Err(ApiError::not_found(format!(
            "room `{room}` has never been written"
        ))),
    }
}

/// The alarm fired: take the timers due (the runtime's audit among them, which this asks the
/// next sync to run and sets again), and arm the alarm for the next one. The host then runs the
/// app's ([`RoomHooks::timer`]) and the engine's sync, which delivers what they wrote.
#[doc(hidden)]
pub fn take_due_timers<P, R, S>(engine: &Engine<P, R, S>) -> Result<Vec<String>, ApiError>
where
    P: Primary,
    R: Replica,
    S: Scheduler,
{
    let db = engine.primary();
    let due = crate::timers::take_due(db, engine.scheduler().now_ms())?;
    if due.iter().any(|name| name == AUDIT_TIMER) {
        engine.request_audit();
        arm_audit(engine)?;
    }
    crate::timers::arm_next(db, engine.scheduler())?;
    Ok(due)
}

/// The runtime's own timer for the room's periodic audit.
#[doc(hidden)]
pub const AUDIT_TIMER: &str = "_nt_audit";

/// Set the room's next audit, [`crate::sync::SyncConfig::audit_period_ms`] from now for the
/// room's size at its last audit, unless one is set already that soon. The room object calls it
/// when it opens a room, so a shorter period (a new default, a changed
/// `NANOTYPE_AUDIT_INTERVAL_MS`) reaches a room that was armed under a longer one at its next
/// open; with audits turned off, the timer is cancelled.
#[doc(hidden)]
pub fn arm_audit<P: Primary, R: Replica, S: Scheduler>(
    engine: &Engine<P, R, S>,
) -> Result<(), ApiError> {
    let db = engine.primary();
    let rows = engine.last_audit().map_or(0, |a| a.rows_compared);
    let Some(every) = engine.config().audit_period_ms(rows) else {
        crate::timers::cancel(db, AUDIT_TIMER)?;
        return Ok(());
    };
    let at = engine.scheduler().now_ms().saturating_add(every as i64);
    if crate::timers::due(db, AUDIT_TIMER)?.is_some_and(|due| due <= at) {
        return Ok(());
    }
    Ok(crate::timers::set(db, engine.scheduler(), AUDIT_TIMER, at)?)
}

fn not_found(table: &TableEntry, key: &Value) -> ApiError {
    ApiError::not_found(format!(
        "no `{}` row with key {}",
        table.name(),
        table.sql().key_json(key)
    ))
}

/// Rows (model column order) as the struct's JSON.
#[doc(hidden)]
pub fn rows_json(table: &TableEntry, rows: Vec<crate::value::Row>) -> Result<Vec<Json>, ApiError> {
    rows.into_iter()
        .map(|r| table.row_to_json(r).map_err(ApiError::from))
        .collect()
}

fn get_row<P: Primary>(db: &P, table: &TableEntry, key: &Value) -> Result<Option<Json>, ApiError> {
    let rows = db.query(&table.sql().get, &table.sql().key_parts(key)?)?;
    match rows.into_iter().next() {
        Some(row) => Ok(Some(table.row_to_json(row)?)),
        None => Ok(None),
    }
}

/// `POST /rooms/{room}/_sql` `{"sql", "params"?, "maxRows"?}`.
fn read_only_sql<P: Primary + ReadOnlySql, S>(
    db: &RoomDb<P, S>,
    body: &[u8],
    budget: u64,
) -> Result<Reply, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct SqlIn {
        sql: String,
        #[serde(default)]
        params: Vec<Json>,
        #[serde(default = "default_rows")]
        max_rows: usize,
    }
    fn default_rows() -> usize {
        100
    }
    let obj = body::json_object(body)?;
    let q: SqlIn = serde_json::from_value(Json::Object(obj))
        .map_err(|e| ApiError::invalid_body(format!("invalid request body: {e}")))?;
    if q.sql.trim().is_empty() {
        return Err(ApiError::invalid_body("`sql` is empty"));
    }
    if q.max_rows == 0 || q.max_rows > MAX_SQL_ROWS {
        return Err(ApiError::invalid_body(format!(
            "`maxRows` must be 1 to {MAX_SQL_ROWS}"
        )));
    }
    let params = q
        .params
        .iter()
        .map(|p| match p {
            Json::Null => Ok(Value::Null),
            Json::Bool(b) => Ok(Value::Integer(i64::from(*b))),
            Json::String(s) => Ok(Value::Text(s.clone())),
            Json::Number(n) => match n.as_i64() {
                Some(i) => crate::value::check_safe_integer(i, "params")
                    .map(Value::Integer)
                    .map_err(ApiError::from),
                None => Ok(Value::Real(n.as_f64().unwrap_or(0.0))),
            },
            _ => Err(ApiError::bad_request(
                "`params` may hold null, booleans, numbers and strings",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sql_error = |e| match e {
        // Syntax errors, unknown tables: the caller's SQL, not the server.
        crate::Error::Primary(m) => ApiError::new(400, "sql_error", m.message),
        e => ApiError::from(e),
    };
    // Refused before anything runs: more than one statement, anything but a query, a plan
    // without a bound or over the budget.
    crate::actor::sql_guard::check_statement(&q.sql)?;
    crate::actor::sql_guard::check_plan(db.inner(), &q.sql, &params, budget).map_err(sql_error)?;
    let out = db
        .inner()
        .query_readonly(&q.sql, &params, q.max_rows)
        .map_err(sql_error)?;
    Ok(Reply::json(
        200,
        serde_json::to_value(&out).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}
