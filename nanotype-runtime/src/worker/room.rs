//! The room Durable Object the runtime provides: declared in an app with [`crate::room!`].
//!
//! On the first request of an instance it applies the schema's migrations (with the ledger),
//! opens the engine for the room named by the gateway (stored, and checked on every later open),
//! and starts the sync that backfills or resumes. Every write arms the delivery alarm before the
//! response leaves (storage writes are confirmed before a Durable Object's output), and a flush
//! follows [`SyncConfig::flush_window_ms`] after the response so a busy room sends one batch per
//! window. The alarm runs the same sync, so a write reaches D1 even when the instance is evicted
//! or the process dies before its flush ran.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use worker::{Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage};

use super::http::{self, EnvVars};
use super::{AlarmScheduler, D1Replica, DoPrimary};
use crate::api::{self, room::Reply, ApiError, RoomHooks, Vars};
use crate::feed::{self, ClientMessage, ClientState};
use crate::primary::Primary;
use crate::registry::Schema;
use crate::sync::{Engine, SyncConfig};

type RoomEngine = Engine<DoPrimary, D1Replica, Rc<AlarmScheduler>>;

/// The D1 binding the room replicates to and the gateway reads from.
pub const D1_BINDING: &str = "DB";
/// The Durable Object binding of the room class, which the gateway routes to.
pub const ROOM_BINDING: &str = "ROOM";

/// The state of one room's Durable Object. Use it through [`crate::room!`].
pub struct RoomObject<S, H = ()> {
    state: State,
    env: Env,
    scheduler: Rc<AlarmScheduler>,
    hooks: H,
    config: SyncConfig,
    engine: RefCell<Option<Rc<RoomEngine>>>,
    /// Why the room could not open (a migration failed): answered again without retrying it,
    /// for the life of this instance (a deploy brings a new one).
    failed: RefCell<Option<ApiError>>,
    /// A flush is waiting out its window (it will send every write made until it starts).
    flush_queued: Rc<Cell<bool>>,
    _schema: PhantomData<S>,
}

impl<S: Schema, H: RoomHooks> RoomObject<S, H> {
    /// The object for `state` (the Durable Object's constructor).
    ///
    /// The Worker variables `NANOTYPE_FLUSH_WINDOW_MS`, `NANOTYPE_DELIVERY_DELAY_MS`,
    /// `NANOTYPE_AUDIT_INTERVAL_MS`, `NANOTYPE_STALE_AFTER_MS` and `NANOTYPE_BACKFILL_PAGE`, when
    /// set, override
    /// [`SyncConfig`]'s defaults.
    pub fn new(state: State, env: Env) -> Self {
        let scheduler = Rc::new(AlarmScheduler::new(&state));
        let mut config = SyncConfig::default();
        let vars = EnvVars(&env);
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
        super::primary::trace_billing(num("NANOTYPE_TRACE_BILLING") == Some(1));
        RoomObject {
            state,
            env,
            scheduler,
            hooks: H::default(),
            config,
            engine: RefCell::new(None),
            failed: RefCell::new(None),
            flush_queued: Rc::new(Cell::new(false)),
            _schema: PhantomData,
        }
    }

    /// The Durable Object's `fetch`: a request the gateway routed to this room.
    pub async fn fetch(&self, mut req: Request) -> Result<Response> {
        if http::is_websocket_upgrade(&req) {
            return match self.open_feed(&req) {
                Ok(resp) => Ok(resp),
                Err(e) => http::error(&e),
            };
        }
        let body = match http::read_body(&mut req).await {
            Ok(b) => b,
            Err(e) => return http::error(&e),
        };
        let fallback = req.headers().get(api::FALLBACK_HEADER).ok().flatten();
        match self.serve(&req, &body) {
            Ok(reply) => http::reply(&reply, "primary", fallback.as_deref()),
            Err(e) => http::error(&e),
        }
    }

    /// The Durable Object's `alarm`: delivery (and retries) without a request.
    pub async fn alarm(&self) -> Result<Response> {
        self.scheduler.fired();
        // The alarm gets no request: the room is the one stored on first use.
        let engine = match self.engine(None, false) {
            Ok(Some(e)) => e,
            Ok(None) => return Response::ok("no room yet"),
            Err(e) => {
                worker::console_error!("nanotype room alarm: {}", e.message);
                return Response::ok("engine unavailable");
            }
        };
        if let Err(e) = api::room::run_timers(&engine, &self.hooks) {
            worker::console_error!("room {}: timers failed: {}", engine.room(), e.message);
        }
        if let Err(e) = engine.primary().feed_captured() {
            worker::console_error!("room {}: feed: {e}", engine.room());
        }
        self.broadcast(&engine);
        // A failure is recorded and rescheduled (backoff with jitter) by the engine; the alarm
        // itself succeeds so the platform does not retry it on top.
        if let Err(e) = engine.sync().await {
            worker::console_log!("room {}: sync failed (retry scheduled): {e}", engine.room());
        }
        Response::ok("ok")
    }

    fn serve(&self, req: &Request, body: &[u8]) -> std::result::Result<Reply, ApiError> {
        let url = req.url().map_err(http::internal)?;
        let route = api::route::route::<S>(req.method().as_ref(), url.path())?;
        let Some(room) = route.room() else {
            return Ok(Reply::json(200, serde_json::json!({ "ok": true })));
        };
        let headers = req.headers();
        match headers.get(api::ROOM_HEADER).ok().flatten() {
            Some(told) if told == room => {}
            _ => {
                return Err(ApiError::bad_request(
                    "a room is reached through the gateway (room header missing or different)",
                ))
            }
        }
        let query = api::params::query_pairs(url.query().unwrap_or(""))?;
        let seq = headers.get(api::SEQ_HEADER).ok().flatten();
        let Some(engine) = self.engine(Some(room), api::room::creates_room(&route, &self.hooks))?
        else {
            // Never written, and this request does not write: answered without storing anything.
            return api::room::unborn(&route, &query, seq.as_deref());
        };
        let fallback = headers.get(api::FALLBACK_HEADER).ok().flatten();
        let idempotency_key = headers.get(api::idempotency::HEADER).ok().flatten();
        let reply = api::room::serve(
            &engine,
            &self.hooks,
            &route,
            &api::RoomRequest {
                query: &query,
                seq: seq.as_deref(),
                body,
                fallback: fallback.as_deref(),
                idempotency_key: idempotency_key.as_deref(),
            },
        );
        if engine.primary().take_written() {
            self.flush_soon(&engine);
        }
        if let api::Route::Custom { .. } = route {
            // App code may have written with raw SQL: its captured changes join the feed.
            if let Err(e) = engine.primary().feed_captured() {
                worker::console_error!("room {}: feed: {e}", engine.room());
            }
        }
        self.broadcast(&engine);
        let mut reply = reply?;
        if reply.sync_after {
            self.sync_in_background(&engine);
        }
        if let api::Route::Sync { .. } = route {
            reply.body["alarmAt"] = self.scheduler.pending().into();
            reply.body["fingerprint"] = S::fingerprint().into();
            reply.body["feedClients"] = self.state.get_websockets().len().into();
            // What this instance was billed for so far (its SQLite, and D1 for its batches).
            reply.body["billed"] = serde_json::json!({
                "durableObject": engine.primary().inner().billed(),
                "d1": engine.replica().map(|r| r.billed()),
            });
            if query.iter().any(|(k, v)| k == "rows" && v == "1") {
                // Asked for (the dashboard): every row of every table is read once.
                let mut rows = serde_json::Map::new();
                for def in S::defs() {
                    let n = engine
                        .primary()
                        .query(&format!("SELECT COUNT(*) FROM \"{}\"", def.name), &[])?;
                    let n = match n.first().and_then(|r| r.first()) {
                        Some(crate::Value::Integer(n)) => *n,
                        _ => 0,
                    };
                    rows.insert(def.name.to_string(), serde_json::json!({ "primary": n }));
                }
                reply.body["rows"] = rows.into();
            }
        }
        Ok(reply)
    }

    /// `GET /rooms/{room}/_feed?since=SEQ` with `Upgrade: websocket`: the socket is accepted
    /// with the hibernation API (an idle one does not keep the object in memory), sent the
    /// changes after `since` (or a reset), then every change as it commits ([`crate::feed`]).
    fn open_feed(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let url = req.url().map_err(http::internal)?;
        let route = api::route::route::<S>("GET", url.path())?;
        let api::Route::Feed { room } = &route else {
            return Err(ApiError::bad_request(
                "only the feed route takes a WebSocket",
            ));
        };
        match req.headers().get(api::ROOM_HEADER).ok().flatten() {
            Some(told) if &told == room => {}
            _ => {
                return Err(ApiError::bad_request(
                    "a room is reached through the gateway",
                ))
            }
        }
        let Some(config) = self.hooks.feed(room) else {
            return Err(ApiError::not_found(
                "the feed is off (an app turns it on with RoomHooks::feed)",
            ));
        };
        let mut since = None;
        for (k, v) in api::params::query_pairs(url.query().unwrap_or(""))? {
            match k.as_str() {
                "since" => {
                    since = Some(v.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                        ApiError::bad_request("`since` must be a non-negative integer")
                    })?)
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{k}`"
                    )))
                }
            }
        }
        if let Some(e) = self.engine(Some(room), false)? {
            // What was captured and not logged yet goes to the clients already connected, and
            // into the log the new one catches up from.
            e.primary().feed_captured()?;
            self.broadcast(&e);
        }
        let pair = worker::WebSocketPair::new().map_err(http::internal)?;
        let server = pair.server;
        self.state.accept_web_socket(&server);
        if self.state.get_websockets().len() > config.max_clients {
            let _ = server.close(
                Some(feed::CLOSE_FULL),
                Some(format!(
                    "the room has its {} feed clients (max_clients); try again later",
                    config.max_clients
                )),
            );
        } else {
            // A room never written has seq 0 and no log: nothing is created for a subscriber.
            let (messages, current) = match self.engine(Some(room), false)? {
                Some(e) => {
                    let current = e.current_seq()?;
                    (feed::catch_up(e.primary(), since, current)?, current)
                }
                None => (feed::catch_up_unborn(since), 0),
            };
            server
                .serialize_attachment(ClientState { acked: current })
                .map_err(http::internal)?;
            for m in &messages {
                let _ = server.send_with_str(m.text());
            }
        }
        let mut resp = Response::from_websocket(pair.client).map_err(http::internal)?;
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .ok()
            .flatten()
            .unwrap_or_default();
        // The server must pick one of the protocols a client offers, or browsers and `ws` drop
        // the connection: `nanotype` when offered, else the client's own `bearer.<token>` (a
        // client that offers only that, as a hand-written one may).
        let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
        let chosen = offered
            .iter()
            .find(|p| **p == "nanotype")
            .or_else(|| offered.iter().find(|p| p.starts_with("bearer.")));
        if let Some(p) = chosen {
            let _ = resp.headers_mut().set("sec-websocket-protocol", p);
        }
        Ok(resp)
    }

    /// The Durable Object's `websocket_message`: a feed client's ack or ping.
    pub async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let config = match self.engine(None, false) {
            Ok(Some(e)) => e.primary().feed_config().cloned().unwrap_or_default(),
            _ => Default::default(),
        };
        let text = match message {
            WebSocketIncomingMessage::String(t) => t,
            WebSocketIncomingMessage::Binary(_) => {
                let _ = ws.close(Some(feed::CLOSE_BAD_MESSAGE), Some("send text messages"));
                return Ok(());
            }
        };
        match feed::parse_client(&text, &config) {
            Ok(ClientMessage::Ack(seq)) => {
                let mut state: ClientState = ws
                    .deserialize_attachment()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                if seq > state.acked {
                    state.acked = seq;
                    ws.serialize_attachment(state)?;
                }
            }
            Ok(ClientMessage::Ping) => {
                let seq = match self.engine(None, false) {
                    Ok(Some(e)) => e.current_seq().unwrap_or(0),
                    _ => 0,
                };
                let _ =
                    ws.send_with_str(serde_json::json!({ "type": "pong", "seq": seq }).to_string());
            }
            Err(reason) => {
                let _ = ws.close(Some(feed::CLOSE_BAD_MESSAGE), Some(reason));
            }
        }
        Ok(())
    }

    /// The Durable Object's `websocket_close`: the client went away; finish the close.
    pub async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    /// Send the changes committed since the last call to every feed client, in seq order. A
    /// client too far behind on its acks is closed instead, with the seq to resume from: it
    /// never slows the writes or the other clients.
    fn broadcast(&self, engine: &RoomEngine) {
        let messages = engine.primary().take_feed();
        let (Some(last), Some(config)) = (messages.last(), engine.primary().feed_config()) else {
            return;
        };
        for ws in self.state.get_websockets() {
            let state: ClientState = ws
                .deserialize_attachment()
                .ok()
                .flatten()
                .unwrap_or_default();
            if state.behind(last.0, config) {
                let _ = ws.close(
                    Some(feed::CLOSE_BEHIND),
                    Some(format!(
                        "more than {} changes unacknowledged: reconnect with since={}",
                        config.max_unacked, state.acked
                    )),
                );
                continue;
            }
            for (_, text) in &messages {
                if ws.send_with_str(text).is_err() {
                    break;
                }
            }
        }
    }

    /// The room's engine, opened on first use: tables migrated, room id stored (and checked on
    /// every later open), sync started. `room` is `None` for the alarm. Unless `create`, a room
    /// never written is not opened (`None`): nothing is stored for it.
    fn engine(
        &self,
        room: Option<&str>,
        create: bool,
    ) -> std::result::Result<Option<Rc<RoomEngine>>, ApiError> {
        if let Some(e) = self.engine.borrow().as_ref() {
            if let Some(room) = room {
                if room != e.room() {
                    return Err(ApiError::new(
                        409,
                        "conflict",
                        format!("this Durable Object holds room `{}`", e.room()),
                    ));
                }
            }
            return Ok(Some(e.clone()));
        }
        let primary = DoPrimary::new(&self.state);
        let stored = crate::sync::stored_room(&primary)?;
        let room = match (room, stored) {
            (Some(asked), Some(own)) if asked != own => {
                return Err(ApiError::new(
                    409,
                    "conflict",
                    format!("this Durable Object holds room `{own}`"),
                ))
            }
            (_, Some(own)) => own,
            (Some(asked), None) if create => asked.to_owned(),
            (_, None) => return Ok(None),
        };
        if let Some(e) = self.failed.borrow().as_ref() {
            return Err(e.clone());
        }
        if let Err(e) = crate::migrate::apply_or_adopt(&primary, S::MIGRATIONS, &S::defs()) {
            let e = ApiError::from(e);
            worker::console_error!("room {room}: {}", e.message);
            *self.failed.borrow_mut() = Some(e.clone());
            return Err(e);
        }
        let mut config = self.config.clone();
        self.hooks.sync_config(&room, &mut config);
        let engine = Engine::builder(&room)
            .schema::<S>()
            .feed(self.hooks.feed(&room))
            .replica(D1Replica::from_env(&self.env, D1_BINDING).ok())
            .config(config)
            .open(primary, self.scheduler.clone())?;
        let engine = Rc::new(engine);
        api::room::arm_audit(&engine)?;
        *self.engine.borrow_mut() = Some(engine.clone());
        // First use of this instance: learn the alarm already set, then backfill or send what an
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
    /// in the flush window. The alarm the write armed is the guarantee if this never runs.
    fn flush_soon(&self, engine: &Rc<RoomEngine>) {
        if self.flush_queued.replace(true) {
            // The queued flush has not read the outbox yet: it takes this write too.
            return;
        }
        let (e, queued) = (engine.clone(), self.flush_queued.clone());
        let window = engine.config().flush_window_ms;
        self.state.wait_until(async move {
            if window > 0 {
                worker::Delay::from(Duration::from_millis(window)).await;
            }
            queued.set(false);
            if let Err(err) = e.sync().await {
                worker::console_log!("room {}: flush failed (retry scheduled): {err}", e.room());
            }
        });
    }

    fn sync_in_background(&self, engine: &Rc<RoomEngine>) {
        let e = engine.clone();
        self.state.wait_until(async move {
            if let Err(err) = e.sync().await {
                worker::console_log!("room {}: sync paused (retry scheduled): {err}", e.room());
            }
        });
    }
}
