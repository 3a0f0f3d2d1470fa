//! The room Durable Object the runtime provides: declared in an app with [`crate::room!`]. Its
//! life is the runtime's [`RoomHost`]; this file gives it the Durable Object's storage, alarm,
//! `waitUntil`, hibernating WebSockets and the Worker's variables.

use std::rc::Rc;
use std::time::Duration;

use worker::{Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage};

use super::http::{self, EnvVars};
use super::{AlarmScheduler, D1Replica, DoPrimary};
use crate::api::{Environment, RoomHooks, Vars};
use crate::clock::Yield;
use crate::feed::ClientState;
use crate::host::{FeedSocket, RoomHost, RoomPlatform, Task};
use crate::registry::Schema;

/// The D1 binding the room replicates to and the gateway reads from when the app names no
/// shards ([`crate::shard::SHARDS_VAR`]).
pub const D1_BINDING: &str = crate::shard::DEFAULT_SHARD;
/// The Durable Object binding of the room class, which the gateway routes to.
pub const ROOM_BINDING: &str = "ROOM";

/// The state of one room's Durable Object. Use it through [`crate::room!`].
pub struct RoomObject<S, H = ()> {
    host: RoomHost<S, H, DurableObject>,
}

/// What a Durable Object gives its room.
#[derive(Clone)]
pub struct DurableObject {
    state: Rc<State>,
    vars: EnvVars,
    scheduler: Rc<AlarmScheduler>,
}

impl RoomPlatform for DurableObject {
    type Storage = DoPrimary;
    type Replica = D1Replica;
    type Alarm = Rc<AlarmScheduler>;
    type Socket = WebSocket;

    fn storage(&self) -> DoPrimary {
        DoPrimary::new(&self.state)
    }
    fn replica(&self, shard: &str) -> Option<D1Replica> {
        D1Replica::from_env(&self.vars.0, shard).ok()
    }
    fn alarm(&self) -> Rc<AlarmScheduler> {
        self.scheduler.clone()
    }
    fn alarm_at(&self) -> Option<f64> {
        self.scheduler.pending()
    }
    fn spawn(&self, task: Task) {
        self.state.wait_until(task);
    }
    fn sleep(&self, ms: u64) -> Yield {
        Box::pin(worker::Delay::from(Duration::from_millis(ms)))
    }
    fn start_up(&self) -> Yield {
        let scheduler = self.scheduler.clone();
        Box::pin(async move { scheduler.load().await })
    }
    fn sockets(&self) -> Vec<WebSocket> {
        self.state.get_websockets()
    }
    fn env(&self) -> Environment {
        Environment::new(self.vars.clone())
    }
    fn log(&self, line: &str) {
        worker::console_log!("nanotype {line}");
    }
    fn billed(&self, storage: &DoPrimary, replica: Option<&D1Replica>) -> serde_json::Value {
        serde_json::json!({
            "durableObject": storage.billed(),
            "d1": replica.map(super::replica::D1Replica::billed),
        })
    }
}

impl FeedSocket for WebSocket {
    fn state(&self) -> ClientState {
        self.deserialize_attachment()
            .ok()
            .flatten()
            .unwrap_or_default()
    }
    fn set_state(&self, state: ClientState) {
        let _ = self.serialize_attachment(state);
    }
    fn send(&self, text: &str) -> bool {
        self.send_with_str(text).is_ok()
    }
    fn close(&self, code: u16, reason: &str) {
        let _ = WebSocket::close(self, Some(code), Some(reason));
    }
}

impl<S: Schema, H: RoomHooks> RoomObject<S, H> {
    /// The object for `state` (the Durable Object's constructor).
    ///
    /// The Worker variables `NANOTYPE_FLUSH_WINDOW_MS`, `NANOTYPE_DELIVERY_DELAY_MS`,
    /// `NANOTYPE_AUDIT_INTERVAL_MS`, `NANOTYPE_STALE_AFTER_MS` and `NANOTYPE_BACKFILL_PAGE`, when
    /// set, override [`SyncConfig`](crate::sync::SyncConfig)'s defaults.
    pub fn new(state: State, env: Env) -> Self {
        let scheduler = Rc::new(AlarmScheduler::new(&state));
        let vars = EnvVars(env);
        let traced = vars
            .var("NANOTYPE_TRACE_BILLING")
            .is_some_and(|v| v.trim() == "1");
        super::primary::trace_billing(traced);
        let platform = DurableObject {
            state: Rc::new(state),
            vars,
            scheduler,
        };
        RoomObject {
            host: RoomHost::new(platform, H::default()),
        }
    }

    /// The Durable Object's `fetch`: a request the gateway routed to this room.
    pub async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request = match http::request(&mut req).await {
            Ok(r) => r,
            Err(e) => return http::error(&e),
        };
        if request.is_websocket_upgrade() {
            return match self.open_feed(&request) {
                Ok(resp) => Ok(resp),
                Err(e) => http::error(&e),
            };
        }
        http::response(&self.host.fetch(&request).await)
    }

    /// The Durable Object's `alarm`: timers and delivery (and retries) without a request.
    pub async fn alarm(&self) -> Result<Response> {
        self.host.platform().scheduler.fired();
        self.host.alarm().await;
        // The engine records a failed sync and sets the next try itself: the alarm succeeds so
        // the platform does not retry it on top.
        Response::ok("ok")
    }

    /// `GET /rooms/{room}/_feed` with `Upgrade: websocket`: the socket is accepted with the
    /// hibernation API (an idle one does not keep the object in memory), sent the changes after
    /// `since` (or a reset), then every change as it commits ([`crate::feed`]).
    fn open_feed(
        &self,
        req: &crate::host::HttpRequest,
    ) -> std::result::Result<Response, crate::api::ApiError> {
        let open = self.host.feed_open(req)?;
        let pair = worker::WebSocketPair::new().map_err(http::internal)?;
        self.host.platform().state.accept_web_socket(&pair.server);
        self.host.feed_join(&pair.server, &open.room, open.since)?;
        let mut resp = Response::from_websocket(pair.client).map_err(http::internal)?;
        if let Some(p) = open.protocol {
            let _ = resp.headers_mut().set("sec-websocket-protocol", &p);
        }
        Ok(resp)
    }

    /// The Durable Object's `websocket_message`: a feed client's ack or ping.
    pub async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        match message {
            WebSocketIncomingMessage::String(t) => self.host.feed_message(&ws, Some(&t)),
            WebSocketIncomingMessage::Binary(_) => self.host.feed_message(&ws, None),
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
        FeedSocket::close(&ws, 1000, "closed");
        Ok(())
    }
}
