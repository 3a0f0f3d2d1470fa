//! A room's life, whatever runs it: [`RoomHost`] over a [`RoomPlatform`] (a Durable Object in
//! `nanotype::worker`, SQLite files in the native test app).
//!
//! * **Open**, on the first request that needs the room (or its alarm): the schema's migrations
//!   applied (or a database that already has them adopted), the room's name stored and checked
//!   on every later open, the engine started, the audit timer armed, and a start-up sync that
//!   backfills or resumes.
//! * **Each request**: routed, the write or read served ([`crate::api::room::serve`]), then a
//!   flush [`SyncConfig::flush_window_ms`] later when it wrote (a busy room sends one batch per
//!   window), what app code captured added to the feed, and the feed's clients sent the new
//!   changes. The alarm a write arms is the guarantee if the flush never runs.
//! * **Each alarm**: the app's due timers, captured changes to the feed, broadcast, then the
//!   sync (with the audit when it is due).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;

use serde_json::json;

use super::http::{HttpRequest, HttpResponse};
use super::Task;
use crate::actor::analytics::ReadOnlySql;
use crate::api::{
    self, ApiError, AppRequest, Caller, Environment, Reply, RoomCtx, RoomHooks, Route, Router,
};
use crate::clock::{Scheduler, Yield};
use crate::feed::{self, ClientMessage, ClientState, FeedConfig};
use crate::primary::{Database, Primary};
use crate::registry::Schema;
use crate::replica::Replica;
use crate::sync::{Engine, SyncConfig};

/// What a platform gives a room: its storage, its alarm, the replica, background work, its
/// WebSockets and its variables.
pub trait RoomPlatform: Clone + 'static {
    /// The room's own SQLite.
    type Storage: Primary + ReadOnlySql + 'static;
    /// The shared replica (D1).
    type Replica: Replica + 'static;
    /// The room's clock and alarm (a handle: clones share it).
    type Alarm: Scheduler + Clone + 'static;
    /// One feed client's WebSocket.
    type Socket: FeedSocket;

    /// The room's storage, opened once per host.
    fn storage(&self) -> Self::Storage;
    /// The replica's shard `shard` (a D1 binding name), when it is bound.
    fn replica(&self, shard: &str) -> Option<Self::Replica>;
    /// The room's alarm.
    fn alarm(&self) -> Self::Alarm;
    /// When the alarm is set for (ms since the epoch), for the room's status.
    fn alarm_at(&self) -> Option<f64>;
    /// Run `task` after the response, keeping the room alive until it ends.
    fn spawn(&self, task: Task);
    /// A future that is ready after `ms`.
    fn sleep(&self, ms: u64) -> Yield;
    /// What the platform must learn before the first sync of this instance (the alarm already
    /// set by an earlier one).
    fn start_up(&self) -> Yield {
        Box::pin(std::future::ready(()))
    }
    /// The feed's accepted WebSockets.
    fn sockets(&self) -> Vec<Self::Socket>;
    /// The environment: variables, secrets, the platform's bindings.
    fn env(&self) -> Environment;
    /// Log a line about the room.
    fn log(&self, line: &str);
    /// What the room was billed for so far, for its status (`null` where the platform does not
    /// count).
    fn billed(
        &self,
        _storage: &Self::Storage,
        _replica: Option<&Self::Replica>,
    ) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// A feed client's WebSocket as the room uses it.
pub trait FeedSocket {
    /// What the socket remembers of its client (kept across hibernation).
    fn state(&self) -> ClientState;
    /// Remember `state` for the client.
    fn set_state(&self, state: ClientState);
    /// Send a text message; whether it was sent.
    fn send(&self, text: &str) -> bool;
    /// Close with a code and a reason.
    fn close(&self, code: u16, reason: &str);
}

/// The engine of a host on `Pl`.
pub type HostEngine<Pl> = Engine<
    <Pl as RoomPlatform>::Storage,
    <Pl as RoomPlatform>::Replica,
    <Pl as RoomPlatform>::Alarm,
>;

/// One room's life over a platform: what a Durable Object of an app runs.
pub struct RoomHost<S, H, Pl: RoomPlatform> {
    platform: Pl,
    hooks: Rc<H>,
    routes: Router,
    config: SyncConfig,
    engine: RefCell<Option<Rc<HostEngine<Pl>>>>,
    /// The shard the open room replicates to.
    shard: RefCell<Option<String>>,
    /// The shard the room is moving away from, while its move is under way (kept in its
    /// `_nt_meta` too, so a restart resumes it).
    move_from: Rc<RefCell<Option<String>>>,
    /// Why the room could not open (a migration failed): answered again without retrying it,
    /// for the life of this host (a deploy brings a new one).
    failed: RefCell<Option<ApiError>>,
    /// A flush is waiting out its window (it will send every write made until it starts).
    flush_queued: Rc<Cell<bool>>,
    _schema: PhantomData<S>,
}

/// A feed subscription the room accepted, before its socket exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedOpen {
    /// The room subscribed to.
    pub room: String,
    /// The client's `since`.
    pub since: Option<i64>,
    /// The subprotocol to answer with.
    pub protocol: Option<String>,
}

impl<S: Schema, H: RoomHooks, Pl: RoomPlatform> RoomHost<S, H, Pl> {
    /// The host of the room on `platform`. The variables `NANOTYPE_FLUSH_WINDOW_MS`,
    /// `NANOTYPE_DELIVERY_DELAY_MS`, `NANOTYPE_AUDIT_INTERVAL_MS`, `NANOTYPE_STALE_AFTER_MS` and
    /// `NANOTYPE_BACKFILL_PAGE`, when set, override [`SyncConfig`]'s defaults.
    pub fn new(platform: Pl, hooks: H) -> Self {
        let config = config_from(&platform.env());
        let hooks = Rc::new(hooks);
        let routes = hooks.clone().routes();
        RoomHost {
            platform,
            hooks,
            routes,
            config,
            engine: RefCell::new(None),
            shard: RefCell::new(None),
            move_from: Rc::default(),
            failed: RefCell::new(None),
            flush_queued: Rc::new(Cell::new(false)),
            _schema: PhantomData,
        }
    }

    /// The platform the host runs on.
    pub fn platform(&self) -> &Pl {
        &self.platform
    }

    /// The app's hooks of this room.
    pub fn hooks(&self) -> &Rc<H> {
        &self.hooks
    }

    /// A request the gateway routed to this room (not a WebSocket upgrade: [`Self::feed_open`]).
    pub async fn fetch(&self, req: &HttpRequest) -> HttpResponse {
        let fallback = req.header(api::FALLBACK_HEADER);
        let mut resp = match self.serve(req).await {
            Ok(reply) => HttpResponse::reply(&reply, "primary", fallback),
            Err(e) => HttpResponse::error(&e),
        };
        if let Some(shard) = self.shard_for(req.header(api::ROOM_HEADER)) {
            resp.set_header(crate::shard::SHARD_HEADER, &shard);
        }
        resp
    }

    /// The shard of the room: the one it recorded, or for a room not opened yet its home.
    fn shard_for(&self, room: Option<&str>) -> Option<String> {
        if let Some(shard) = self.shard.borrow().as_ref() {
            return Some(shard.clone());
        }
        room.map(|r| self.shards().home(r).to_owned())
    }

    fn shards(&self) -> crate::Shards {
        crate::Shards::from_vars(&self.platform.env())
    }

    /// The alarm fired: due timers, captured changes to the feed, broadcast, then the sync. A
    /// failed sync is recorded and rescheduled (backoff with jitter) by the engine.
    pub async fn alarm(&self) {
        // The alarm gets no request: the room is the one stored on first use.
        let engine = match self.engine(None, false) {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                self.platform
                    .log(&format!("room alarm: engine unavailable: {}", e.message));
                return;
            }
        };
        match api::room::take_due_timers(&engine) {
            Ok(due) => {
                for name in due.iter().filter(|n| *n != api::room::AUDIT_TIMER) {
                    let room = self.room_of(&engine, Caller::anonymous());
                    if let Err(e) = self.hooks.timer(room, name).await {
                        self.platform.log(&format!(
                            "room {}: timer `{name}` failed: {}",
                            engine.room(),
                            e.message
                        ));
                    }
                }
            }
            Err(e) => self.platform.log(&format!(
                "room {}: timers failed: {}",
                engine.room(),
                e.message
            )),
        }
        // What the timers wrote goes in this alarm's sync below: no separate flush.
        let _ = engine.primary().take_written();
        self.feed_captured(&engine);
        self.broadcast(&engine);
        if let Err(e) = engine.sync().await {
            self.platform.log(&format!(
                "room {}: sync failed (retry scheduled): {e}",
                engine.room()
            ));
        }
        (self.move_finisher())(engine).await;
    }

    async fn serve(&self, req: &HttpRequest) -> Result<Reply, ApiError> {
        let route = api::route::route::<S>(&req.method, &req.path)?;
        let Some(room) = route.room() else {
            return Ok(Reply::json(200, json!({ "ok": true })));
        };
        match req.header(api::ROOM_HEADER) {
            Some(told) if told == room => {}
            _ => {
                return Err(ApiError::bad_request(
                    "a room is reached through the gateway (room header missing or different)",
                ))
            }
        }
        let query = api::params::query_pairs(&req.query)?;
        let seq = req.header(api::SEQ_HEADER);
        if let Route::Custom { method, path, .. } = &route {
            if self.routes.kind(method, path).is_none() {
                return Err(self.no_route(path));
            }
        }
        let Some(engine) =
            self.engine(Some(room), api::room::creates_room(&route, &self.routes))?
        else {
            // Never written, and this request does not write: answered without storing anything.
            return api::room::unborn(&route, &query, seq);
        };
        let caller = Caller::from_header(req.header(api::CALLER_HEADER));
        let reply = match &route {
            Route::Custom { method, path, .. } => {
                let app_req = AppRequest::from_parts(
                    method,
                    path.clone(),
                    query.clone(),
                    req.headers.clone(),
                    req.body.clone(),
                );
                match self.routes.call(self.room_of(&engine, caller), app_req) {
                    Some(running) => running.await,
                    None => Err(self.no_route(path)),
                }
            }
            Route::Move { .. } => match self.start_move(&engine, &req.body) {
                Ok((moved, reply)) => {
                    // The write path and status below are the new engine's.
                    return self.after_move(&moved, reply);
                }
                Err(e) => Err(e),
            },
            _ => api::room::serve(
                &engine,
                &*self.hooks,
                &route,
                &api::RoomRequest {
                    query: &query,
                    seq,
                    body: &req.body,
                    fallback: req.header(api::FALLBACK_HEADER),
                    idempotency_key: req.header(api::idempotency::HEADER),
                    caller: Some(&caller),
                },
            ),
        };
        if engine.primary().take_written() {
            self.flush_soon(&engine);
        }
        if let Route::Custom { .. } = route {
            // App code may have written with raw SQL: its captured changes join the feed.
            self.feed_captured(&engine);
        }
        self.broadcast(&engine);
        let mut reply = reply?;
        if let Route::Table { op, .. } = &route {
            // What the answer reflected, for the client's next read: a write's seq, a read's
            // current seq (a listing has it in its body).
            let seq = match (reply.seq, op) {
                (Some(seq), _) => Some(seq),
                (None, api::TableOp::List) => reply.body["seq"].as_i64(),
                (None, api::TableOp::Get(_)) if reply.status == 200 => engine.current_seq().ok(),
                _ => None,
            };
            if let Some(seq) = seq {
                let shard = self.shard.borrow().clone().unwrap_or_default();
                let token = api::ReadToken::new(seq, &shard, engine.bookmark().as_deref());
                reply.token = Some(token.to_header());
            }
        }
        if reply.sync_after {
            self.sync_in_background(&engine);
        }
        if let Route::Sync { .. } = route {
            reply.body["alarmAt"] = self.platform.alarm_at().into();
            reply.body["fingerprint"] = S::fingerprint().into();
            reply.body["shard"] = self.shard.borrow().clone().into();
            reply.body["move"] = match self.move_from.borrow().as_ref() {
                Some(from) => json!({
                    "from": from,
                    "to": self.shard.borrow().clone(),
                    "phase": if engine.resync_in_progress()? { "copying" } else { "cleaning" },
                }),
                None => serde_json::Value::Null,
            };
            reply.body["feedClients"] = self.platform.sockets().len().into();
            // What this instance was billed for so far (its SQLite, and D1 for its batches).
            reply.body["billed"] = self
                .platform
                .billed(engine.primary().inner(), engine.replica());
            if query.iter().any(|(k, v)| k == "rows" && v == "1") {
                // Asked for (the dashboard): every row of every table is read once.
                let mut rows = serde_json::Map::new();
                for def in S::defs() {
                    let n = engine
                        .primary()
                        .query(&format!("SELECT COUNT(*) FROM \"{}\"", def.name), &[])?;
                    let n = n
                        .first()
                        .and_then(|r| r.first())
                        .and_then(crate::Value::as_integer)
                        .unwrap_or(0);
                    rows.insert(def.name.to_string(), json!({ "primary": n }));
                }
                reply.body["rows"] = rows.into();
            }
        }
        Ok(reply)
    }

    /// `GET /rooms/{room}/_feed?since=SEQ` with `Upgrade: websocket`, checked before the
    /// platform makes the socket: the route, the room, the feed turned on, `since`. What was
    /// captured and not logged yet goes to the clients already connected first.
    pub fn feed_open(&self, req: &HttpRequest) -> Result<FeedOpen, ApiError> {
        let route = api::route::route::<S>("GET", &req.path)?;
        let Route::Feed { room } = &route else {
            return Err(ApiError::bad_request(
                "only the feed route takes a WebSocket",
            ));
        };
        match req.header(api::ROOM_HEADER) {
            Some(told) if told == room => {}
            _ => {
                return Err(ApiError::bad_request(
                    "a room is reached through the gateway",
                ))
            }
        }
        if self.hooks.feed(room).is_none() {
            return Err(ApiError::not_found(
                "the feed is off (an app turns it on with RoomHooks::feed)",
            ));
        }
        let mut since = None;
        for (k, v) in api::params::query_pairs(&req.query)? {
            match k.as_str() {
                "since" => {
                    since = Some(v.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                        ApiError::bad_request("`since` must be a non-negative integer")
                    })?);
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{k}`"
                    )))
                }
            }
        }
        if let Some(e) = self.engine(Some(room), false)? {
            // Into the log the new client catches up from, and to the clients connected.
            e.primary().feed_captured()?;
            self.broadcast(&e);
        }
        Ok(FeedOpen {
            room: room.clone(),
            since,
            protocol: req.feed_protocol(),
        })
    }

    /// The platform accepted `socket` (it is among [`RoomPlatform::sockets`]): send it the
    /// changes after `since` (or a reset), or close it when the room has its clients already.
    pub fn feed_join(
        &self,
        socket: &Pl::Socket,
        room: &str,
        since: Option<i64>,
    ) -> Result<(), ApiError> {
        let config = self.hooks.feed(room).unwrap_or_default();
        if self.platform.sockets().len() > config.max_clients {
            socket.close(
                feed::CLOSE_FULL,
                &format!(
                    "the room has its {} feed clients (max_clients); try again later",
                    config.max_clients
                ),
            );
            return Ok(());
        }
        // A room never written has seq 0 and no log: nothing is created for a subscriber.
        let (messages, current) = match self.engine(Some(room), false)? {
            Some(e) => {
                let current = e.current_seq()?;
                (feed::catch_up(e.primary(), since, current)?, current)
            }
            None => (feed::catch_up_unborn(since), 0),
        };
        socket.set_state(ClientState { acked: current });
        for m in &messages {
            socket.send(&m.text());
        }
        Ok(())
    }

    /// A feed client's message (`None`: a binary one): an ack or a ping.
    pub fn feed_message(&self, socket: &Pl::Socket, text: Option<&str>) {
        let engine = self.engine(None, false).ok().flatten();
        let config: FeedConfig = engine
            .as_ref()
            .and_then(|e| e.primary().feed_config().cloned())
            .unwrap_or_default();
        let Some(text) = text else {
            socket.close(feed::CLOSE_BAD_MESSAGE, "send text messages");
            return;
        };
        match feed::parse_client(text, &config) {
            Ok(ClientMessage::Ack(seq)) => {
                let mut state = socket.state();
                if seq > state.acked {
                    state.acked = seq;
                    socket.set_state(state);
                }
            }
            Ok(ClientMessage::Ping) => {
                let seq = engine.map_or(0, |e| e.current_seq().unwrap_or(0));
                socket.send(&json!({ "type": "pong", "seq": seq }).to_string());
            }
            Err(reason) => socket.close(feed::CLOSE_BAD_MESSAGE, &reason),
        }
    }

    /// The changes committed since the last call, to every feed client in seq order. A client
    /// too far behind on its acks is closed instead, with the seq to resume from: it never
    /// slows the writes or the other clients.
    fn broadcast(&self, engine: &HostEngine<Pl>) {
        let messages = engine.primary().take_feed();
        let (Some(last), Some(config)) = (messages.last(), engine.primary().feed_config()) else {
            return;
        };
        for ws in self.platform.sockets() {
            let state = ws.state();
            if state.behind(last.0, config) {
                ws.close(
                    feed::CLOSE_BEHIND,
                    &format!(
                        "more than {} changes unacknowledged: reconnect with since={}",
                        config.max_unacked, state.acked
                    ),
                );
                continue;
            }
            for (_, text) in &messages {
                if !ws.send(text) {
                    break;
                }
            }
        }
    }

    /// The room as app code gets it.
    fn room_of(&self, engine: &Rc<HostEngine<Pl>>, caller: Caller) -> RoomCtx {
        let caller = Rc::new(caller);
        RoomCtx::new(
            engine.room(),
            Database::new(EngineDb::<Pl>(engine.clone())).for_caller(caller.clone()),
            Rc::new(engine.scheduler().clone()),
            self.platform.env(),
            caller,
        )
    }

    fn no_route(&self, path: &[String]) -> ApiError {
        let methods = self.routes.methods_of(path);
        if methods.is_empty() {
            ApiError::not_found(format!("no route /{}", path.join("/")))
        } else {
            ApiError::not_found(format!(
                "no route for this method at /{} (it takes {})",
                path.join("/"),
                methods.join(", ")
            ))
        }
    }

    fn feed_captured(&self, engine: &HostEngine<Pl>) {
        if let Err(e) = engine.primary().feed_captured() {
            self.platform
                .log(&format!("room {}: feed: {e}", engine.room()));
        }
    }

    /// The room's engine, opened on first use. `room` is `None` for the alarm and the feed's
    /// messages. Unless `create`, a room never written is not opened (`None`): nothing is
    /// stored for it.
    fn engine(
        &self,
        room: Option<&str>,
        create: bool,
    ) -> Result<Option<Rc<HostEngine<Pl>>>, ApiError> {
        if let Some(e) = self.engine.borrow().as_ref() {
            if let Some(room) = room {
                if room != e.room() {
                    return Err(held_by(e.room()));
                }
            }
            return Ok(Some(e.clone()));
        }
        let primary = self.platform.storage();
        let stored = crate::sync::stored_room(&primary)?;
        let room = match (room, stored) {
            (Some(asked), Some(own)) if asked != own => return Err(held_by(&own)),
            (_, Some(own)) => own,
            (Some(asked), None) if create => asked.to_owned(),
            (_, None) => return Ok(None),
        };
        if let Some(e) = self.failed.borrow().as_ref() {
            return Err(e.clone());
        }
        let opened = crate::migrate::apply_or_adopt(&primary, S::MIGRATIONS, &S::defs())
            .and_then(|_| crate::migrate::check_schema(&primary, S::MIGRATIONS, &S::defs()));
        if let Err(e) = opened {
            let e = ApiError::from(e);
            self.platform.log(&format!("room {room}: {}", e.message));
            *self.failed.borrow_mut() = Some(e.clone());
            return Err(e);
        }
        let mut config = self.config.clone();
        self.hooks.sync_config(&room, &mut config);
        // Where the room's rows are: the shard it recorded, or (a new room, or one from before
        // shards) its home among the configured ones, recorded now.
        let shard = match crate::sync::stored_shard(&primary)? {
            Some(shard) => shard,
            None => self.shards().home(&room).to_owned(),
        };
        let engine = Engine::builder(&room)
            .schema::<S>()
            .feed(self.hooks.feed(&room))
            .replica(self.platform.replica(&shard))
            .config(config)
            .open(primary, self.platform.alarm())?;
        crate::sync::store_shard(engine.primary(), &shard)?;
        *self.shard.borrow_mut() = Some(shard);
        *self.move_from.borrow_mut() = crate::sync::stored_move_from(engine.primary())?;
        let engine = Rc::new(engine);
        api::room::arm_audit(&engine)?;
        *self.engine.borrow_mut() = Some(engine.clone());
        // First use of this instance: learn the alarm already set, then backfill or send what an
        // earlier instance left.
        let (e, ready) = (engine.clone(), self.platform.start_up());
        let log = self.logger();
        let finish = self.move_finisher();
        self.platform.spawn(Box::pin(async move {
            ready.await;
            if let Err(err) = e.sync().await {
                log(format!("room {}: start-up sync failed: {err}", e.room()));
            }
            finish(e).await;
        }));
        Ok(Some(engine))
    }

    /// After a write: send it to D1 without holding the response, together with the writes made
    /// in the flush window. The alarm the write armed is the guarantee if this never runs.
    fn flush_soon(&self, engine: &Rc<HostEngine<Pl>>) {
        if self.flush_queued.replace(true) {
            // The queued flush has not read the outbox yet: it takes this write too.
            return;
        }
        let (e, queued) = (engine.clone(), self.flush_queued.clone());
        let window = engine.config().flush_window_ms;
        let wait = self.platform.sleep(window);
        let log = self.logger();
        self.platform.spawn(Box::pin(async move {
            wait.await;
            queued.set(false);
            if let Err(err) = e.sync().await {
                log(format!(
                    "room {}: flush failed (retry scheduled): {err}",
                    e.room()
                ));
            }
        }));
    }

    fn sync_in_background(&self, engine: &Rc<HostEngine<Pl>>) {
        let e = engine.clone();
        let log = self.logger();
        let finish = self.move_finisher();
        self.platform.spawn(Box::pin(async move {
            if let Err(err) = e.sync().await {
                log(format!(
                    "room {}: sync paused (retry scheduled): {err}",
                    e.room()
                ));
            }
            finish(e).await;
        }));
    }

    /// `POST /rooms/{room}/_move` `{"to": shard}`: the room's D1 copy moved to `to`. A new
    /// engine over the room's database replicates to `to` from now on, starting with a full
    /// resync there; the old one is retired. When the copy is whole, the old shard's copy is
    /// marked moved and deleted ([`crate::sync::moves`]).
    fn start_move(
        &self,
        engine: &Rc<HostEngine<Pl>>,
        body: &[u8],
    ) -> Result<(Rc<HostEngine<Pl>>, Reply), ApiError> {
        let room = engine.room().to_owned();
        let asked = crate::api::body::json_object(body)?;
        if let Some(other) = asked.keys().find(|k| k.as_str() != "to") {
            return Err(ApiError::invalid_body(format!(
                "a move takes only `to` (the shard), not `{other}`"
            )));
        }
        let shards = self.shards();
        let names = shards.names().join(", ");
        let to = asked
            .get("to")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("`to` must name a shard ({names})")))?
            .to_owned();
        if !shards.contains(&to) {
            return Err(ApiError::bad_request(format!(
                "`{to}` is not a shard of the replica ({names}: {})",
                crate::shard::SHARDS_VAR
            )));
        }
        let from = self.shard.borrow().clone().unwrap_or_default();
        if let Some(moving) = self.move_from.borrow().as_ref() {
            return Err(ApiError::new(
                409,
                "conflict",
                format!("room {room} is already moving from {moving} to {from}; wait for it to end (its _sync status)"),
            ));
        }
        if to == from {
            return Ok((
                engine.clone(),
                Reply::json(200, json!({ "room": room, "shard": from, "moved": false })),
            ));
        }
        if self.platform.replica(&to).is_none() {
            return Err(ApiError::new(
                503,
                "replica_unavailable",
                format!("no D1 binding `{to}` in this Worker"),
            ));
        }
        crate::sync::store_move_from(engine.primary(), Some(&from))?;
        crate::sync::store_shard(engine.primary(), &to)?;
        engine.retire();
        *self.engine.borrow_mut() = None;
        *self.shard.borrow_mut() = None;
        let moved = self
            .engine(Some(&room), true)?
            .ok_or_else(|| ApiError::internal("the room did not reopen"))?;
        moved.request_resync()?;
        self.platform
            .log(&format!("room {room}: moving from {from} to {to}"));
        let mut reply = Reply::json(
            202,
            json!({ "room": room, "move": { "from": from, "to": to, "phase": "copying" } }),
        );
        reply.sync_after = true;
        Ok((moved, reply))
    }

    /// What ends a move once the new shard's copy is whole: the old shard's copy marked moved and
    /// deleted, then the move forgotten. A no-op when no move is under way or the copy is not
    /// whole yet; a failure is logged and tried again after the next sync.
    fn move_finisher(
        &self,
    ) -> impl Fn(Rc<HostEngine<Pl>>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + 'static
    {
        let (platform, move_from) = (self.platform.clone(), self.move_from.clone());
        move |engine| {
            let (platform, move_from) = (platform.clone(), move_from.clone());
            Box::pin(async move {
                let Some(from) = move_from.borrow().clone() else {
                    return;
                };
                let whole = engine.known_watermark() > 0
                    && matches!(engine.resync_in_progress(), Ok(false));
                if !whole {
                    return;
                }
                let Some(old) = platform.replica(&from) else {
                    platform.log(&format!(
                        "room {}: move: no D1 binding `{from}` to clean",
                        engine.room()
                    ));
                    return;
                };
                let now = crate::clock::Clock::now_ms(engine.scheduler());
                match crate::sync::moves::clean_old_shard(&old, engine.room(), engine.tables(), now)
                    .await
                {
                    Ok(rows) => {
                        if let Err(e) = crate::sync::store_move_from(engine.primary(), None) {
                            platform.log(&format!("room {}: move: {e}", engine.room()));
                            return;
                        }
                        *move_from.borrow_mut() = None;
                        platform.log(&format!(
                            "room {}: moved off {from} ({rows} rows deleted there)",
                            engine.room()
                        ));
                    }
                    Err(e) => platform.log(&format!(
                        "room {}: move: cleaning {from} failed (tried again after the next sync): {e}",
                        engine.room()
                    )),
                }
            })
        }
    }

    /// A move's reply: the new engine syncs (its copy) in the background.
    fn after_move(&self, engine: &Rc<HostEngine<Pl>>, reply: Reply) -> Result<Reply, ApiError> {
        if reply.sync_after {
            self.sync_in_background(engine);
        }
        Ok(reply)
    }

    /// A log function a background task can own.
    fn logger(&self) -> impl Fn(String) + 'static {
        let platform = self.platform.clone();
        move |line| platform.log(&line)
    }
}

/// The engine's database behind [`Database`]: what app code writes through is captured.
struct EngineDb<Pl: RoomPlatform>(Rc<HostEngine<Pl>>);

impl<Pl: RoomPlatform> Primary for EngineDb<Pl> {
    fn query(&self, sql: &str, params: &[crate::Value]) -> crate::Result<Vec<crate::Row>> {
        self.0.primary().query(sql, params)
    }
    fn execute(&self, sql: &str, params: &[crate::Value]) -> crate::Result<u64> {
        self.0.primary().execute(sql, params)
    }
    fn execute_batch(&self, sql: &str) -> crate::Result<()> {
        self.0.primary().execute_batch(sql)
    }
    fn transaction<T>(&self, f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
        self.0.primary().transaction(f)
    }
    fn hooks(&self) -> Option<&dyn crate::primary::WriteHooks> {
        self.0.primary().hooks()
    }
}

fn held_by(room: &str) -> ApiError {
    ApiError::new(
        409,
        "conflict",
        format!("this Durable Object holds room `{room}`"),
    )
}

/// The replication settings from the environment's `NANOTYPE_*` variables over the defaults.
fn config_from(vars: &Environment) -> SyncConfig {
    let mut config = SyncConfig::default();
    let num = |name: &str| vars.var(name).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(ms) = num("NANOTYPE_FLUSH_WINDOW_MS") {
        config.flush_window_ms = ms;
    }
    if let Some(ms) = num("NANOTYPE_DELIVERY_DELAY_MS") {
        config.delivery_delay_ms = ms;
    }
    if let Some(ms) = num("NANOTYPE_AUDIT_INTERVAL_MS") {
        config.audit_interval_ms = (ms > 0).then_some(ms);
    }
    if let Some(ms) = num("NANOTYPE_STALE_AFTER_MS") {
        config.stale_after_ms = (ms > 0).then_some(ms);
    }
    if let Some(rows) = num("NANOTYPE_BACKFILL_PAGE") {
        config.backfill_page = (rows as usize).max(1);
    }
    config
}
