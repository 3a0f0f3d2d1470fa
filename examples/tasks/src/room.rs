//! The `Room` Durable Object: one per room, its SQLite the room's source of truth.
//!
//! Every write goes through the generated typed functions, which record the change in the outbox
//! in the same `transactionSync`; the engine then flushes it to D1 under `wait_until`, after a
//! short window in which later writes join the same batch, and the DO's alarm retries whatever did
//! not make it (and flushes debounced counters).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use nanotype::actor::{Debouncer, MemoryStore, ReadOnlySql};
use nanotype::sync::{Engine, SyncConfig};
use nanotype::worker::{AlarmScheduler, D1Replica, DoPrimary};
use nanotype::{Consistency, Scheduler};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::api::{
    self, ApiError, IncrementIn, ListParams, NewTask, PresenceIn, ReadMode, Route, SqlIn,
};
use crate::gateway::FALLBACK_HEADER;
use crate::schema::{Counter, Task};
use crate::{bench, http};

type RoomEngine = Engine<DoPrimary, D1Replica, Rc<AlarmScheduler>>;
type Reply = std::result::Result<Response, ApiError>;

/// How often debounced counter increments are written.
const COUNTER_INTERVAL_MS: u64 = 1_000;
/// How long a write's flush waits for later writes to share its D1 batch. A flush is a guarded
/// D1 batch (a round trip; in local workerd also more CPU than the rest of the write), so a busy
/// room pays for one per window instead of one per write, for at most this much added lag.
const FLUSH_WINDOW_MS: u64 = 50;

#[durable_object]
pub struct Room {
    state: State,
    env: Env,
    scheduler: Rc<AlarmScheduler>,
    engine: RefCell<Option<Rc<RoomEngine>>>,
    /// A flush is waiting out its window (it will send every write made until it starts).
    flush_queued: Rc<Cell<bool>>,
    /// Presence: in memory only, gone when the instance is.
    presence: MemoryStore,
    /// Counter increments, summed per counter until written.
    counters: Debouncer<String, i64>,
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        let scheduler = Rc::new(AlarmScheduler::new(&state));
        Room {
            state,
            env,
            scheduler,
            engine: RefCell::new(None),
            flush_queued: Rc::new(Cell::new(false)),
            presence: MemoryStore::new(),
            counters: Debouncer::with_merge(COUNTER_INTERVAL_MS, |sum, inc| *sum += inc),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = match http::read_body(&mut req).await {
            Ok(b) => b,
            Err(e) => return http::error(&e),
        };
        match self.serve(&req, &body).await {
            Ok(resp) => Ok(resp),
            Err(e) => http::error(&e),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.scheduler.fired();
        // The alarm gets no request: the room is the one the engine stored on first use.
        let engine = match self.engine(None) {
            Ok(Some(e)) => e,
            Ok(None) => return Response::ok("no room yet"),
            Err(e) => {
                worker::console_error!("room alarm: {}", e.message);
                return Response::ok("engine unavailable");
            }
        };
        self.flush_counters(&engine, false);
        // Failures are recorded and rescheduled by the engine; the alarm itself succeeds so the
        // runtime does not retry it on top.
        if let Err(e) = engine.sync().await {
            worker::console_log!("room {}: sync retry failed: {e}", engine.room());
        }
        self.schedule_counters();
        Response::ok("ok")
    }
}

impl Room {
    /// The room's engine, opened on first use: tables migrated, room id stored (and checked on
    /// every later open), backfill of anything missing started. `room` is `None` for the alarm.
    fn engine(&self, room: Option<&str>) -> std::result::Result<Option<Rc<RoomEngine>>, ApiError> {
        if let Some(e) = self.engine.borrow().as_ref() {
            if let Some(room) = room {
                if room != e.room() {
                    return Err(ApiError::new(
                        409,
                        "wrong_room",
                        format!("this Durable Object holds room `{}`", e.room()),
                    ));
                }
            }
            return Ok(Some(e.clone()));
        }
        let primary = DoPrimary::new(&self.state);
        migrate(&primary).map_err(http::from_nanotype)?;
        let room = match room {
            Some(r) => r.to_owned(),
            None => match nanotype::sync::stored_room(&primary).map_err(http::from_nanotype)? {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        let replica = D1Replica::from_env(&self.env, "DB").ok();
        let engine = Engine::builder(&room)
            .tables(vec![Task::table_def(), Counter::table_def()])
            .replica(replica)
            .config(SyncConfig::default())
            .open(primary, self.scheduler.clone())
            .map_err(http::from_nanotype)?;
        let engine = Rc::new(engine);
        *self.engine.borrow_mut() = Some(engine.clone());
        // First use of this instance: learn the alarm already set, then backfill/flush what an
        // earlier instance left.
        let (e, scheduler) = (engine.clone(), self.scheduler.clone());
        self.state.wait_until(async move {
            scheduler.load().await;
            if let Err(err) = e.sync().await {
                worker::console_log!("room {}: start-up sync failed: {err}", e.room());
            }
        });
        Ok(Some(engine))
    }

    /// After a write: send it to D1 without holding the response, together with the writes made
    /// in the next [`FLUSH_WINDOW_MS`].
    fn flush_soon(&self, engine: &Rc<RoomEngine>) {
        if self.flush_queued.replace(true) {
            // The queued flush has not read the outbox yet: it takes this write too.
            return;
        }
        let (e, queued) = (engine.clone(), self.flush_queued.clone());
        self.state.wait_until(async move {
            worker::Delay::from(Duration::from_millis(FLUSH_WINDOW_MS)).await;
            queued.set(false);
            if let Err(err) = e.sync().await {
                worker::console_log!("room {}: flush failed (retry scheduled): {err}", e.room());
            }
        });
    }

    async fn serve(&self, req: &Request, body: &[u8]) -> Reply {
        let url = req.url().map_err(http::from_worker)?;
        let route = api::route(
            req.method().as_ref(),
            url.path(),
            http::bench_routes(&self.env),
        )?;
        let room = route
            .room()
            .ok_or_else(|| ApiError::not_found("the room serves /rooms/{room}/..."))?
            .to_owned();
        if let Ok(Some(told)) = req.headers().get(api::ROOM_HEADER) {
            if told != room {
                return Err(ApiError::bad_request("room header and path disagree"));
            }
        }
        let engine = self
            .engine(Some(&room))?
            .ok_or_else(|| ApiError::new(500, "internal", "room not opened"))?;
        let db = engine.primary();
        let now = engine.scheduler().now_ms();
        let nt = http::from_nanotype;
        match route {
            Route::CreateTask { .. } => {
                let task = Task::insert(db, &NewTask::parse(body)?.into_task(now)).map_err(nt)?;
                self.written(&engine, 201, serde_json::json!({ "task": task }))
            }
            // The bench's baselines: the same parsing and insert, without the outbox and flush.
            Route::BenchPlain { .. } => {
                let task =
                    bench::insert_plain(db, &NewTask::parse(body)?.into_task(now)).map_err(nt)?;
                json(201, &serde_json::json!({ "task": task }))
            }
            Route::BenchWriteThrough { .. } => {
                let task =
                    bench::insert_plain(db, &NewTask::parse(body)?.into_task(now)).map_err(nt)?;
                let replica = engine
                    .replica()
                    .ok_or_else(|| ApiError::new(503, "replica_unavailable", "no D1 binding"))?;
                bench::write_through(replica, &room, &task)
                    .await
                    .map_err(nt)?;
                json(201, &serde_json::json!({ "task": task }))
            }
            Route::GetTask { id, .. } => {
                let task = Task::get(db, id)
                    .map_err(nt)?
                    .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
                json(
                    200,
                    &serde_json::json!({ "task": task, "source": "primary" }),
                )
            }
            Route::CompleteTask { id, .. } => {
                let mut task = Task::get(db, id)
                    .map_err(nt)?
                    .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
                task.done = true;
                task.status = "done".into();
                let task = Task::update(db, &task).map_err(nt)?;
                self.written(&engine, 200, serde_json::json!({ "task": task }))
            }
            Route::DeleteTask { id, .. } => {
                if !Task::delete(db, id).map_err(nt)? {
                    return Err(ApiError::not_found(format!("no task {id}")));
                }
                self.written(&engine, 200, serde_json::json!({ "deleted": id }))
            }
            Route::ListTasks { .. } => {
                let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                let params =
                    ListParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
                let fallback = req.headers().get(FALLBACK_HEADER).ok().flatten();
                let consistency = match (params.mode, &fallback) {
                    // The Worker already found the replica unusable for this read.
                    (_, Some(_)) | (ReadMode::Strong, _) => Consistency::Strong,
                    (ReadMode::Replica, None) => Consistency::Replica,
                    (ReadMode::ReadYourWrites(s), None) => Consistency::ReadYourWrites(s),
                };
                let reads = engine.reads(consistency);
                let page = params.page();
                let tasks = match &params.status {
                    Some(s) => Task::room_find_by_status(&reads, &room, s, &page).await,
                    None => Task::room_list(&reads, &room, &page).await,
                }
                .map_err(nt)?;
                let source = reads
                    .last_source()
                    .map(|s| format!("{s:?}").to_lowercase())
                    .unwrap_or_else(|| "primary".into());
                json(
                    200,
                    &serde_json::json!({
                        "room": room,
                        "tasks": tasks,
                        "source": source,
                        "servedBy": "room",
                        "fallback": fallback,
                        "seq": engine.current_seq().map_err(nt)?,
                    }),
                )
            }
            Route::SyncStatus { .. } => {
                let health = engine.health().map_err(nt)?;
                json(
                    200,
                    &serde_json::json!({ "room": room, "health": health, "alarmAt": self.scheduler.pending() }),
                )
            }
            Route::Resync { .. } => {
                engine.request_resync().map_err(nt)?;
                let e = engine.clone();
                self.state.wait_until(async move {
                    if let Err(err) = e.sync().await {
                        worker::console_log!(
                            "room {}: resync paused (retry scheduled): {err}",
                            e.room()
                        );
                    }
                });
                json(
                    202,
                    &serde_json::json!({ "room": room, "resync": "started" }),
                )
            }
            Route::PresenceSet { .. } => {
                let p = PresenceIn::parse(body)?;
                self.presence
                    .set(&p.user, p.data, p.ttl_ms, now)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                json(
                    200,
                    &serde_json::json!({ "user": p.user, "ttlMs": p.ttl_ms }),
                )
            }
            Route::PresenceList { .. } => {
                let users: Vec<serde_json::Value> = self
                    .presence
                    .entries_with_prefix("", now)
                    .into_iter()
                    .map(|(user, data)| serde_json::json!({ "user": user, "data": data }))
                    .collect();
                json(200, &serde_json::json!({ "room": room, "users": users }))
            }
            Route::CounterIncrement { name, .. } => {
                let inc = IncrementIn::parse(body)?;
                self.counters.update(name.clone(), inc.by, now);
                self.schedule_counters();
                json(
                    202,
                    &serde_json::json!({ "name": name, "pending": self.counters.pending_value(&name) }),
                )
            }
            Route::CounterGet { name, .. } => {
                let stored = Counter::get(db, &name).map_err(nt)?.map(|c| c.value);
                json(
                    200,
                    &serde_json::json!({
                        "name": name,
                        "value": stored.unwrap_or(0),
                        "pending": self.counters.pending_value(&name),
                    }),
                )
            }
            Route::CountersFlush { .. } => {
                let (written, failed) = self.flush_counters(&engine, true);
                self.schedule_counters();
                self.written(
                    &engine,
                    200,
                    serde_json::json!({ "written": written, "failed": failed }),
                )
            }
            Route::Sql { .. } => {
                let q = SqlIn::parse(body)?;
                let params = q.values()?;
                let out = db
                    .inner()
                    .query_readonly(&q.sql, &params, q.max_rows)
                    .map_err(|e| match e {
                        // Syntax errors, unknown tables: the caller's SQL, not the server.
                        nanotype::Error::Primary(m) => ApiError::new(400, "sql_error", m),
                        e => nt(e),
                    })?;
                // `{"columns": [..], "rows": [[..], ..], "truncated": bool}`
                json(200, &out)
            }
            Route::Health => Err(ApiError::not_found("no route")),
        }
    }

    /// A write's response: the room's seq after it (body and `x-nanotype-seq`), and a prompt
    /// flush to D1.
    fn written(&self, engine: &Rc<RoomEngine>, status: u16, mut body: serde_json::Value) -> Reply {
        let seq = engine.current_seq().map_err(http::from_nanotype)?;
        body["seq"] = seq.into();
        self.flush_soon(engine);
        let resp = json(status, &body)?;
        let _ = resp.headers().set(api::SEQ_HEADER, &seq.to_string());
        Ok(resp)
    }

    /// Write the summed increments (all of them, or only when due). A failed write keeps its sum.
    fn flush_counters(&self, engine: &Rc<RoomEngine>, force: bool) -> (Vec<String>, Vec<String>) {
        let db = engine.primary();
        let write = |name: &String, inc: &i64| -> nanotype::Result<()> {
            // No await between the read and the write: nothing else runs in the DO meanwhile.
            let current = Counter::get(db, name)?.map(|c| c.value).unwrap_or(0);
            Counter::upsert(
                db,
                &Counter {
                    name: name.clone(),
                    value: current + inc,
                },
            )?;
            Ok(())
        };
        let now = engine.scheduler().now_ms();
        let report = if force {
            Some(self.counters.flush(write))
        } else {
            self.counters.flush_if_due(now, write)
        };
        let Some(report) = report else {
            return (Vec::new(), Vec::new());
        };
        if !report.written.is_empty() {
            self.flush_soon(engine);
        }
        let failed = report
            .failed
            .iter()
            .map(|(k, e)| format!("{k}: {e}"))
            .collect();
        (report.written, failed)
    }

    /// Ask for the alarm when the pending counter increments are due.
    fn schedule_counters(&self) {
        if let Some(due) = self.counters.next_due_ms() {
            let delay = (due - self.scheduler.now_ms()).max(0) as u64;
            self.scheduler.schedule(delay);
        }
    }
}

/// The room's tables: the Durable Object migrations `gen-migrations` wrote, embedded at compile
/// time and applied once per room (a ledger in the room's SQLite records each with its checksum).
fn migrate(db: &DoPrimary) -> nanotype::Result<()> {
    nanotype::migrate::apply(db, nanotype::migrations!("../../migrations/do"))?;
    Ok(())
}

fn json<T: serde::Serialize>(status: u16, body: &T) -> Reply {
    http::json(status, body).map_err(http::from_worker)
}
