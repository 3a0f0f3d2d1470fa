//! The tasks app on nanotype: its tables ([`schema`]), its room Durable Object, its validation,
//! custom routes, read-only SQL and feed ([`TaskHooks`]), and who may use which room
//! ([`TOKENS`]). The runtime
//! serves the rest: a REST route per table, replica reads from D1, writes in the room's Durable
//! Object, replication, sync status and resync.

pub mod schema;

use nanotype::api::{
    ApiError, AppRequest, Reply, RoomCtx, RoomHooks, RoomTokens, RouteKind, Write, WriteOp,
};
use nanotype::feed::FeedConfig;
use nanotype::{Primary, Value};
use schema::{Comment, Task};

/// Longest task title or comment, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

nanotype::room!(Room, schema::App, TaskHooks);

/// The app's part of every room: what a valid write is, `GET /rooms/{room}/stats` and
/// `POST /rooms/{room}/archive`, `POST /rooms/{room}/_sql` turned on (one query, refused before it
/// runs if over budget), and the change feed on.
#[derive(Default)]
pub struct TaskHooks;

impl RoomHooks for TaskHooks {
    fn before_write(&self, w: &mut Write<'_>) -> Result<(), ApiError> {
        let (now, created) = (w.now_ms(), w.op() == WriteOp::Create);
        let text_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= MAX_TEXT_CHARS;
        if let Some(task) = w.row_mut::<Task>() {
            if !text_ok(&task.title) || task.status.is_empty() || task.status.len() > 32 {
                return Err(ApiError::rejected(format!(
                    "`title` must be 1 to {MAX_TEXT_CHARS} characters, `status` 1 to 32"
                )));
            }
            task.done = task.status == "done";
            if created {
                task.created_at = now;
            }
        }
        if let Some(comment) = w.row_mut::<Comment>() {
            if !text_ok(&comment.body) {
                return Err(ApiError::rejected("`body` must be 1 to 500 characters"));
            }
            if created {
                comment.created_at = now;
            }
        }
        Ok(())
    }

    fn route<P: Primary>(
        &self,
        room: &RoomCtx<'_, P>,
        req: &AppRequest<'_>,
    ) -> Option<Result<Reply, ApiError>> {
        // Only the two paths `route_kind` declares reach here.
        Some(match req.method {
            "GET" => stats(room),
            _ => archive(room),
        })
    }

    /// The custom routes and what they do: nothing else under a room is one, and only a write
    /// brings a room into being.
    fn route_kind(&self, method: &str, path: &[String]) -> Option<RouteKind> {
        match (method, path) {
            ("GET", [p]) if p == "stats" => Some(RouteKind::Reads),
            ("POST", [p]) if p == "archive" => Some(RouteKind::Writes),
            _ => None,
        }
    }

    fn read_only_sql(&self) -> bool {
        true
    }

    /// `GET /rooms/{room}/_feed`: every change, live, to the room's WebSocket clients.
    fn feed(&self, _room: &str) -> Option<FeedConfig> {
        Some(FeedConfig::default())
    }
}

/// `POST /rooms/{room}/archive`: every done task archived by one SQL statement in the room. The
/// runtime's capture triggers record each row it changes, so they reach D1 like any write.
fn archive<P: Primary>(room: &RoomCtx<'_, P>) -> Result<Reply, ApiError> {
    let n = room.db().execute(
        "UPDATE tasks SET status = 'archived', done = 0 WHERE status = 'done'",
        &[],
    )?;
    Ok(Reply::json(200, serde_json::json!({ "archived": n })))
}

/// Tasks per status, counted in the room's own database.
fn stats<P: Primary>(room: &RoomCtx<'_, P>) -> Result<Reply, ApiError> {
    let sql = "SELECT status, COUNT(*) FROM tasks GROUP BY status";
    let rows = room.db().query(sql, &[])?;
    let counts: serde_json::Map<String, serde_json::Value> = rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Value::Text(status), Value::Integer(n)] => Some((status.clone(), (*n).into())),
            _ => None,
        })
        .collect();
    let body = serde_json::json!({ "room": room.room(), "tasks": counts });
    Ok(Reply::json(200, body))
}

/// Who may use which room: bearer tokens from the `API_TOKENS` secret (`.dev.vars` locally),
/// `token=room-prefix,…`, where a prefix of `*` allows every room.
pub const TOKENS: RoomTokens = RoomTokens::from_var("API_TOKENS");

nanotype::worker!(schema::App, TOKENS);
