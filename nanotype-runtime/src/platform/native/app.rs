//! A whole app on the native backend: the gateway, one [`RoomHost`] per room over an SQLite
//! file, the shared replica, background work, alarms, the feed's sockets and the variables,
//! with a clock the test moves. The code that runs is the runtime's own, as in a Worker: only
//! the platform under it differs.
//!
//! ```
//! # #[nanotype::table(name = "notes")]
//! # #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! # pub struct Note { #[nanotype(primary_key)] pub id: i64, pub text: String }
//! # nanotype::schema!(pub App = [Note]);
//! use nanotype::api::RoomTokens;
//! use nanotype::native::TestApp;
//! use serde_json::json;
//!
//! let app = TestApp::<App, (), _>::new(RoomTokens::from_var("API_TOKENS"))
//!     .unwrap()
//!     .var("API_TOKENS", "t=*")
//!     .token("t");
//! let made = app.post("/rooms/r1/notes", json!({"text": "hi"}));
//! assert_eq!(made.status, 201, "{}", made.json_body());
//! app.settle(); // the flush that follows the write
//! let read = app.get("/rooms/r1/notes");
//! assert_eq!(read.header("x-nanotype-source"), Some("replica"));
//! assert_eq!(read.json_body()["rows"][0]["text"], "hi");
//! ```

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use serde_json::Value as Json;

use super::{NativePrimary, NativeReplica};
use crate::api::app::EnvSource;
use crate::api::{ApiError, Environment, Policy, RoomHooks, Vars};
use crate::clock::{Alarm, Clock, Yield};
use crate::error::{Error, Result, SqlError};
use crate::feed::ClientState;
use crate::host::gateway::{self, GatewayPlatform, Outcome};
use crate::host::{FeedSocket, HttpRequest, HttpResponse, RoomHost, RoomPlatform, Task};
use crate::registry::Schema;
use crate::replica::{Replica, Statement};
use crate::value::Row;

/// An app of schema `S` with hooks `H` under policy `P`, run in this process. Each room's
/// database is migrated by the schema's migrations when the room opens, as in a Durable Object;
/// a schema declared without migrations gets its tables from the structs.
pub struct TestApp<S: Schema, H: RoomHooks, P> {
    policy: P,
    shared: Shared,
    token: Option<String>,
    rooms: RefCell<BTreeMap<String, Rc<Host<S, H>>>>,
    shard_cache: crate::shard::ShardCache,
    _dir: tempfile::TempDir,
}

type Host<S, H> = RoomHost<S, H, NativeRoom>;
/// A room's feed sockets (shared by its instances).
type Sockets = Rc<RefCell<Vec<TestSocket>>>;

/// What every room of the app shares.
#[derive(Clone)]
struct Shared {
    dir: PathBuf,
    clock: Rc<Cell<i64>>,
    vars: Rc<RefCell<BTreeMap<String, String>>>,
    /// The replica's shards, each an SQLite file made with the schema's tables on first use.
    replicas: Rc<RefCell<BTreeMap<String, TestReplica>>>,
    /// Every shard is down ([`TestApp::set_replica_down`]).
    all_down: Rc<Cell<bool>>,
    /// What a new shard is made with.
    replica_ddl: Rc<Vec<String>>,
    /// Background work, with the room that started it.
    tasks: Rc<RefCell<VecDeque<(String, Task)>>>,
    /// Each room's alarm: kept in its storage, so it outlives an instance.
    alarms: Rc<RefCell<BTreeMap<String, Rc<TestAlarm>>>>,
    /// Each room's feed sockets: hibernated ones outlive an instance too.
    sockets: Rc<RefCell<BTreeMap<String, Sockets>>>,
    logs: Rc<RefCell<Vec<String>>>,
}

impl<S: Schema, H: RoomHooks, P: Policy> TestApp<S, H, P> {
    /// A new app with empty rooms and a replica with the schema's tables, its clock at
    /// 2026-01-01.
    pub fn new(policy: P) -> Result<Self> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::Primary(SqlError::other(format!("temporary folder: {e}"))))?;
        Ok(TestApp {
            policy,
            shared: Shared {
                dir: dir.path().to_owned(),
                clock: Rc::new(Cell::new(1_767_225_600_000)),
                vars: Rc::default(),
                replicas: Rc::default(),
                all_down: Rc::new(Cell::new(false)),
                replica_ddl: Rc::new(
                    std::iter::once(crate::schema::ddl::REPLICA_META.to_owned())
                        .chain(
                            S::TABLES
                                .iter()
                                .map(|t| crate::schema::ddl::replica_ddl(t.def)),
                        )
                        .collect(),
                ),
                tasks: Rc::default(),
                alarms: Rc::default(),
                sockets: Rc::default(),
                logs: Rc::default(),
            },
            token: None,
            rooms: RefCell::default(),
            shard_cache: crate::shard::ShardCache::default(),
            _dir: dir,
        })
    }

    /// Set a variable or secret of the environment (as `wrangler.toml` or `.dev.vars` would).
    /// A room reads its settings when it opens: set them before the first request.
    pub fn var(self, name: &str, value: &str) -> Self {
        self.shared
            .vars
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// Send `Authorization: Bearer <token>` with every request of [`Self::get`],
    /// [`Self::post`], [`Self::call`] and [`Self::subscribe`].
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// The request served as the Worker serves it: the policy, a replica read or the room.
    /// Background work it starts (the flush) waits for [`Self::settle`].
    pub fn request(&self, req: HttpRequest) -> HttpResponse {
        match pollster::block_on(gateway::serve::<S, _>(self, &self.policy, &req)) {
            Outcome::Respond(resp) => resp,
            Outcome::Upgrade { .. } => HttpResponse::error(&ApiError::bad_request(
                "a feed subscription is made with TestApp::subscribe",
            )),
        }
    }

    /// `method target` with a JSON body (`Json::Null`: none), with the app's token.
    pub fn call(&self, method: &str, target: &str, body: Json) -> HttpResponse {
        let mut req = self.with_token(HttpRequest::new(method, target));
        if !body.is_null() {
            req = req
                .with_header("content-type", "application/json")
                .with_body(body.to_string());
        }
        self.request(req)
    }

    /// `GET target`.
    pub fn get(&self, target: &str) -> HttpResponse {
        self.call("GET", target, Json::Null)
    }

    /// `POST target` with a JSON body.
    pub fn post(&self, target: &str, body: Json) -> HttpResponse {
        self.call("POST", target, body)
    }

    /// Run the background work started so far (flushes, start-up syncs, resyncs) and what it
    /// starts in turn, to the end. The clock does not move: a flush window passes at once.
    pub fn settle(&self) {
        loop {
            let next = self.shared.tasks.borrow_mut().pop_front();
            match next {
                Some((_, task)) => pollster::block_on(task),
                None => break,
            }
        }
    }

    /// Move the clock by `ms`, then run every room's alarm that is due (its timers, its sync)
    /// and the work that follows, until no alarm is due.
    pub fn advance(&self, ms: i64) {
        self.shared.clock.set(self.shared.clock.get() + ms);
        self.settle();
        // Each pass fires every due alarm once; an alarm a sync sets for later waits.
        for _ in 0..100 {
            let due: Vec<String> = self
                .shared
                .alarms
                .borrow()
                .iter()
                .filter(|(_, a)| a.take_due(self.now_ms()))
                .map(|(room, _)| room.clone())
                .collect();
            if due.is_empty() {
                return;
            }
            for room in due {
                pollster::block_on(self.host(&room).alarm());
                self.settle();
            }
        }
    }

    /// The clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.get()
    }

    /// When the alarm of `room` is set for, if it is.
    pub fn alarm_at(&self, room: &str) -> Option<i64> {
        self.shared
            .alarms
            .borrow()
            .get(room)
            .and_then(|a| a.due.get())
    }

    /// The room's object evicted: its next request opens it again from its file, as a new
    /// instance of its Durable Object would (work not yet run is dropped with it). Its feed
    /// sockets stay open, as hibernated ones do.
    pub fn restart(&self, room: &str) {
        self.rooms.borrow_mut().remove(room);
        self.shared.tasks.borrow_mut().retain(|(r, _)| r != room);
    }

    /// Take the replica down (every statement on every shard fails) or bring it back.
    pub fn set_replica_down(&self, down: bool) {
        self.shared.all_down.set(down);
    }

    /// Forget what the gateway learned of where rooms are, as a new Worker isolate starts with
    /// nothing.
    pub fn cold_gateway(&mut self) {
        self.shard_cache = crate::shard::ShardCache::default();
    }

    /// Give every shard a read replica as D1's read replication does, frozen at its state now
    /// (`true`: sessions that may start anywhere read it; sessions at a newer bookmark, and
    /// writes, go to the primary), or take them away (`false`).
    pub fn lag_read_replicas(&self, lag: bool) -> Result<()> {
        let shards = crate::Shards::from_vars(&self.shared);
        for (i, name) in shards.names().iter().enumerate() {
            let shard = self.shared.shard(name)?;
            let copy = if lag {
                let path = self.shared.dir.join(format!("read-replica-{i}.sqlite"));
                let _ = std::fs::remove_file(&path);
                let db = shard.db.clone();
                db.connection()
                    .execute("VACUUM INTO ?1", [path.to_string_lossy()])
                    .map_err(|e| Error::Replica(SqlError::other(e.to_string())))?;
                let at = pollster::block_on(
                    db.session_batch(crate::replica::SessionStart::Primary, &[]),
                )?
                .bookmark
                .unwrap_or_default();
                Some((NativeReplica::open(&path)?, at))
            } else {
                None
            };
            *shard.lagging.borrow_mut() = copy;
        }
        Ok(())
    }

    /// Take the replica's shard `shard` down or bring it back.
    pub fn set_shard_down(&self, shard: &str, down: bool) -> Result<()> {
        self.shared.shard(shard)?.down.set(down);
        Ok(())
    }

    /// The shared replica (to read what replication wrote): its first shard ([`Self::shard`]
    /// for the others).
    pub fn replica(&self) -> NativeReplica {
        let shards = crate::Shards::from_vars(&self.shared);
        self.shard(&shards.names()[0])
            .unwrap_or_else(|e| panic!("the replica's first shard: {e}"))
    }

    /// The replica's shard `shard`, one of [`crate::shard::SHARDS_VAR`]'s names.
    pub fn shard(&self, shard: &str) -> Result<NativeReplica> {
        Ok((*self.shared.shard(shard)?.db).clone())
    }

    /// The room's own database, opened beside its object (to read what it holds).
    pub fn room_db(&self, room: &str) -> Result<NativePrimary> {
        NativePrimary::open(self.shared.room_file(room))
    }

    /// The hooks of the room's object (opened for it when it was not).
    pub fn hooks(&self, room: &str) -> Rc<H> {
        self.host(room).hooks().clone()
    }

    /// What the rooms logged (failed syncs and the like).
    pub fn logs(&self) -> Vec<String> {
        self.shared.logs.borrow().clone()
    }

    /// Subscribe to the feed of `room` from `since`, through the gateway's policy: the open
    /// socket, or the response that refused it.
    pub fn subscribe(
        &self,
        room: &str,
        since: Option<i64>,
    ) -> std::result::Result<TestSocket, HttpResponse> {
        let target = match since {
            Some(s) => format!("/rooms/{room}/_feed?since={s}"),
            None => format!("/rooms/{room}/_feed"),
        };
        let req = self
            .with_token(HttpRequest::new("GET", &target))
            .with_header("upgrade", "websocket")
            .with_header("sec-websocket-protocol", "nanotype");
        let room = match pollster::block_on(gateway::serve::<S, _>(self, &self.policy, &req)) {
            Outcome::Respond(resp) => return Err(resp),
            Outcome::Upgrade { room } => room,
        };
        let host = self.host(&room);
        let req = req.with_header(crate::api::ROOM_HEADER, &room);
        let open = host.feed_open(&req).map_err(|e| HttpResponse::error(&e))?;
        let socket = TestSocket::default();
        host.platform().sockets.borrow_mut().push(socket.clone());
        host.feed_join(&socket, &open.room, open.since)
            .map_err(|e| HttpResponse::error(&e))?;
        Ok(socket)
    }

    /// `text` from a feed client of `room` (an ack, a ping).
    pub fn send(&self, room: &str, socket: &TestSocket, text: &str) {
        self.host(room).feed_message(socket, Some(text));
    }

    fn with_token(&self, req: HttpRequest) -> HttpRequest {
        match &self.token {
            Some(t) => req.with_header("authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    fn host(&self, room: &str) -> Rc<Host<S, H>> {
        if let Some(h) = self.rooms.borrow().get(room) {
            return h.clone();
        }
        let alarm = self
            .shared
            .alarms
            .borrow_mut()
            .entry(room.to_owned())
            .or_insert_with(|| {
                Rc::new(TestAlarm {
                    clock: self.shared.clock.clone(),
                    due: Cell::new(None),
                })
            })
            .clone();
        let sockets = self.shared.sockets_of(room);
        let file = self.shared.room_file(room);
        if S::MIGRATIONS.is_empty() && !file.exists() {
            // A schema declared without migrations (a doc, a test): its tables from the structs.
            if let Ok(db) = NativePrimary::open(&file) {
                for t in S::TABLES {
                    let ddl = crate::schema::ddl::primary_ddl(t.def);
                    if let Err(e) = db.connection().execute_batch(&ddl) {
                        self.shared
                            .logs
                            .borrow_mut()
                            .push(format!("{}: {e}", t.def.name));
                    }
                }
            }
        }
        let platform = NativeRoom {
            room: room.to_owned(),
            file,
            shared: self.shared.clone(),
            alarm,
            sockets,
        };
        let host = Rc::new(RoomHost::new(platform, H::default()));
        self.rooms
            .borrow_mut()
            .insert(room.to_owned(), host.clone());
        host
    }
}

impl Shared {
    /// The shard `name`, made on first use, when it is one of the configured shards (as a
    /// Worker has a binding for each).
    fn shard(&self, name: &str) -> Result<TestReplica> {
        if !crate::Shards::from_vars(self).contains(name) {
            return Err(Error::Replica(SqlError::other(format!(
                "no D1 binding `{name}` (not in {})",
                crate::shard::SHARDS_VAR
            ))));
        }
        if let Some(r) = self.replicas.borrow().get(name) {
            return Ok(r.clone());
        }
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        let db = NativeReplica::open(self.dir.join(format!("replica-{hex}.sqlite")))?;
        for ddl in self.replica_ddl.iter() {
            db.execute_batch(ddl)?;
        }
        let replica = TestReplica {
            db: Rc::new(db),
            down: Rc::new(Cell::new(false)),
            all_down: self.all_down.clone(),
            lagging: Rc::default(),
        };
        self.replicas
            .borrow_mut()
            .insert(name.to_owned(), replica.clone());
        Ok(replica)
    }

    fn room_file(&self, room: &str) -> PathBuf {
        // Room names are URL path segments: hex keeps any of them a plain file name.
        let hex: String = room.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("room-{hex}.sqlite"))
    }

    fn sockets_of(&self, room: &str) -> Sockets {
        self.sockets
            .borrow_mut()
            .entry(room.to_owned())
            .or_default()
            .clone()
    }
}

impl<S: Schema, H: RoomHooks, P: Policy> GatewayPlatform for TestApp<S, H, P> {
    type Replica = TestReplica;

    fn replica(&self, shard: &str) -> Result<TestReplica> {
        self.shared.shard(shard)
    }

    fn shard_cache(&self) -> &crate::shard::ShardCache {
        &self.shard_cache
    }

    fn vars(&self) -> &dyn Vars {
        &self.shared
    }

    async fn forward(
        &self,
        room: &str,
        req: HttpRequest,
    ) -> std::result::Result<HttpResponse, ApiError> {
        let host = self.host(room);
        Ok(host.fetch(&req).await)
    }
}

/// The app's variables, as app code's [`Environment`] (natively there are no other bindings).
#[derive(Clone)]
pub struct TestVars(Rc<RefCell<BTreeMap<String, String>>>);

impl Vars for TestVars {
    fn var(&self, name: &str) -> Option<String> {
        self.0.borrow().get(name).cloned()
    }
}

impl EnvSource for TestVars {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Shared {
    fn vars_only(&self) -> TestVars {
        TestVars(self.vars.clone())
    }
}

impl Vars for Shared {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.borrow().get(name).cloned()
    }
}

/// A room's platform in a [`TestApp`].
#[derive(Clone)]
pub struct NativeRoom {
    room: String,
    file: PathBuf,
    shared: Shared,
    alarm: Rc<TestAlarm>,
    sockets: Sockets,
}

impl RoomPlatform for NativeRoom {
    type Storage = NativePrimary;
    type Replica = TestReplica;
    type Alarm = Rc<TestAlarm>;
    type Socket = TestSocket;

    fn storage(&self) -> NativePrimary {
        // A file that cannot be opened is a broken test machine, not a room's state.
        NativePrimary::open(&self.file)
            .unwrap_or_else(|e| panic!("room file {}: {e}", self.file.display()))
    }
    fn replica(&self, shard: &str) -> Option<TestReplica> {
        self.shared.shard(shard).ok()
    }
    fn alarm(&self) -> Rc<TestAlarm> {
        self.alarm.clone()
    }
    fn alarm_at(&self) -> Option<f64> {
        self.alarm.due.get().map(|at| at as f64)
    }
    fn spawn(&self, task: Task) {
        self.shared
            .tasks
            .borrow_mut()
            .push_back((self.room.clone(), task));
    }
    fn sleep(&self, _ms: u64) -> Yield {
        Box::pin(std::future::ready(()))
    }
    fn sockets(&self) -> Vec<TestSocket> {
        self.sockets
            .borrow()
            .iter()
            .filter(|s| s.closed().is_none())
            .cloned()
            .collect()
    }
    fn env(&self) -> Environment {
        Environment::new(self.shared.vars_only())
    }
    fn log(&self, line: &str) {
        self.shared.logs.borrow_mut().push(line.to_owned());
    }
}

/// A room's alarm on the app's clock: one time, the soonest asked for, as a Durable Object's.
pub struct TestAlarm {
    clock: Rc<Cell<i64>>,
    due: Cell<Option<i64>>,
}

impl TestAlarm {
    /// Whether the alarm is due at `now`; a due one is cleared (it fires).
    fn take_due(&self, now: i64) -> bool {
        match self.due.get() {
            Some(at) if at <= now => {
                self.due.set(None);
                true
            }
            _ => false,
        }
    }
}

impl Clock for TestAlarm {
    fn now_ms(&self) -> i64 {
        self.clock.get()
    }
}

impl Alarm for TestAlarm {
    fn schedule(&self, delay_ms: u64) {
        let at = self.clock.get().saturating_add(delay_ms as i64);
        if self.due.get().is_none_or(|due| at < due) {
            self.due.set(Some(at));
        }
    }
}

/// A read on a lagging copy: its rows, at its bookmark, not from the primary.
fn lagging_read(
    copy: &NativeReplica,
    at: &str,
    stmts: &[Statement],
) -> Result<crate::replica::SessionRows> {
    let rows = stmts
        .iter()
        .map(|s| copy.query_sync(s))
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::replica::SessionRows {
        rows,
        bookmark: Some(at.to_owned()),
        served_by_primary: Some(false),
    })
}

/// The app's replica, which a test can take down.
#[derive(Clone)]
pub struct TestReplica {
    db: Rc<NativeReplica>,
    down: Rc<Cell<bool>>,
    all_down: Rc<Cell<bool>>,
    /// A read replica behind the primary ([`TestApp::lag_read_replicas`]): a copy taken then,
    /// and the bookmark it is at.
    lagging: Rc<RefCell<Option<(NativeReplica, String)>>>,
}

impl TestReplica {
    fn check(&self) -> Result<()> {
        if self.down.get() || self.all_down.get() {
            return Err(Error::Replica(SqlError::other(
                "the replica is down (TestApp::set_replica_down)",
            )));
        }
        Ok(())
    }
}

impl Replica for TestReplica {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        self.check()?;
        self.db.query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        self.check()?;
        self.db.batch(stmts).await
    }
    async fn session_batch(
        &self,
        start: crate::replica::SessionStart<'_>,
        stmts: &[Statement],
    ) -> Result<crate::replica::SessionRows> {
        use crate::replica::SessionStart;
        self.check()?;
        {
            let lagging = self.lagging.borrow();
            match (&*lagging, start) {
                // The read replica answers a session that may start anywhere, or at a bookmark
                // it has reached; D1 sends a session at a newer bookmark to a copy that has it
                // (here the primary).
                (Some((copy, at)), SessionStart::Any) => return lagging_read(copy, at, stmts),
                (Some((copy, at)), SessionStart::After(b)) if b <= at.as_str() => {
                    return lagging_read(copy, at, stmts)
                }
                _ => {}
            }
        }
        self.db.session_batch(start, stmts).await
    }
}

/// A feed client's socket in a [`TestApp`]: what the room sent it, and how it was closed.
#[derive(Clone, Default)]
pub struct TestSocket(Rc<RefCell<SocketInner>>);

#[derive(Default)]
struct SocketInner {
    state: ClientState,
    received: Vec<String>,
    closed: Option<(u16, String)>,
}

impl TestSocket {
    /// Every message received so far, as JSON, and none again.
    pub fn take(&self) -> Vec<Json> {
        std::mem::take(&mut self.0.borrow_mut().received)
            .iter()
            .map(|m| serde_json::from_str(m).unwrap_or(Json::Null))
            .collect()
    }

    /// The close code and reason, once the room closed it.
    pub fn closed(&self) -> Option<(u16, String)> {
        self.0.borrow().closed.clone()
    }
}

impl FeedSocket for TestSocket {
    fn state(&self) -> ClientState {
        self.0.borrow().state
    }
    fn set_state(&self, state: ClientState) {
        self.0.borrow_mut().state = state;
    }
    fn send(&self, text: &str) -> bool {
        let mut inner = self.0.borrow_mut();
        if inner.closed.is_some() {
            return false;
        }
        inner.received.push(text.to_owned());
        true
    }
    fn close(&self, code: u16, reason: &str) {
        let mut inner = self.0.borrow_mut();
        if inner.closed.is_none() {
            inner.closed = Some((code, reason.to_owned()));
        }
    }
}
