//! nanotype-bench's own Worker: the tasks example's schema served by nanotype (the measured
//! path, `POST /rooms/{room}/tasks`), and the two baselines it is compared with, which a real
//! app never has:
//!
//! - `POST /rooms/{room}/bench/plain` (and `…/plain/{id}/update`, `…/plain/{id}/delete`): the
//!   same row written into a table of the room's SQLite that nothing replicates (no outbox, no
//!   trigger): what a write costs a plain Durable Object. Custom routes of the room
//!   ([`baseline::insert_plain`]).
//! - `POST /rooms/{room}/bench/repeat/{kind}/{n}`: one statement of a write `n` times, timed
//!   by the bench from outside ([`baseline::repeat_route`]).
//! - `POST /rooms/{room}/bench/write-through`: that insert, then one awaited `INSERT OR REPLACE`
//!   of the row into D1 before the response ([`baseline::write_through`]): the original design's
//!   per-write replication; `…/write-through/{id}/update` and `…/{id}/delete` the same for a
//!   plain update and delete (the awaited D1 `UPDATE` or `DELETE` of that row).
//!
//! Every route needs the bench's token (`BENCH_TOKEN`, from the bench's `.dev.vars`).

pub mod baseline;

#[path = "../../../examples/tasks/src/schema.rs"]
pub mod schema;

use nanotype::api::{
    Access, ApiError, AppRequest, Decision, Policy, Reply, RequestParts, RoomCtx, RoomHooks,
    Router, Vars,
};
use nanotype::feed::FeedConfig;

nanotype::room!(Room, schema::App, Baselines);

/// The plain-insert baseline as a custom route of the room.
#[derive(Default)]
pub struct Baselines;

impl RoomHooks for Baselines {
    fn routes(self: std::rc::Rc<Self>) -> Router {
        Router::new()
            .post("bench/plain", plain)
            .post("bench/plain/:id/:action", plain_change)
            .post("bench/repeat/:kind/:n", repeat)
    }

    /// Rooms `tp-defer-…` send nothing to D1 for ten minutes after a write: the bench's measure
    /// of the write path without its flush.
    fn sync_config(&self, room: &str, config: &mut nanotype::sync::SyncConfig) {
        if room.starts_with("tp-defer-") {
            config.flush_window_ms = 600_000;
            config.delivery_delay_ms = 600_000;
        }
    }

    /// The feed is on only in the rooms the bench measures it in (`feed-…`, `tp-feed-…`), so
    /// the other figures are of the write path without it.
    fn feed(&self, room: &str) -> Option<FeedConfig> {
        (room.starts_with("feed-") || room.starts_with("tp-feed-")).then(FeedConfig::default)
    }
}

async fn plain(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    baseline::plain_route(room.db(), req.body(), room.now_ms())
}

async fn plain_change(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    let (id, action) = (req.param("id"), req.param("action"));
    baseline::plain_change_route(
        room.db(),
        id.unwrap_or_default(),
        action.unwrap_or_default(),
        req.body(),
    )
}

async fn repeat(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    let (kind, n) = (req.param("kind"), req.param("n"));
    baseline::repeat_route(room.db(), kind.unwrap_or_default(), n.unwrap_or_default())
}

/// The bench's token, from the `BENCH_TOKEN` variable.
pub struct BenchToken;

impl Policy for BenchToken {
    async fn authorize(&self, req: &RequestParts, env: &dyn Vars, _: &Access<'_>) -> Decision {
        match (req.bearer_token(), env.var("BENCH_TOKEN")) {
            (Some(t), Some(expected)) if t == expected => Decision::Allow,
            _ => Decision::unauthorized("the bench's token is required"),
        }
    }

    /// The bench's token sees every room (queries across rooms).
    async fn visible_rooms(&self, req: &RequestParts, env: &dyn Vars) -> nanotype::api::RoomScope {
        match (req.bearer_token(), env.var("BENCH_TOKEN")) {
            (Some(t), Some(expected)) if t == expected => nanotype::api::RoomScope::All,
            _ => nanotype::api::RoomScope::Prefixes(Vec::new()),
        }
    }
}

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    _: worker::Context,
) -> worker::Result<worker::Response> {
    let path = req.path();
    if let Some(prefix) = path.strip_suffix("/bench/write-through") {
        return baseline::write_through_route(req, &env, prefix).await;
    }
    if let Some((prefix, change)) = path.split_once("/bench/write-through/") {
        if let Some((id, action)) = change.split_once('/') {
            return baseline::write_through_change_route(req, &env, prefix, id, action).await;
        }
    }
    nanotype::worker::serve::<schema::App>(req, &env, &BenchToken).await
}
