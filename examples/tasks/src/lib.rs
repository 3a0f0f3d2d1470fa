//! The tasks app on nanotype: its tables and their validation ([`schema`]), its room Durable
//! Object, custom routes, read-only SQL and feed ([`TaskHooks`]), and who may use which room
//! ([`TOKENS`]). The runtime
//! serves the rest: a REST route per table, replica reads from D1, writes in the room's Durable
//! Object, replication, sync status and resync.

pub mod schema;

use nanotype::prelude::*;

pub use schema::MAX_TEXT_CHARS;

nanotype::room!(Room, schema::App, TaskHooks);

/// The app's part of every room: `GET /rooms/{room}/stats` and
/// `POST /rooms/{room}/archive`, `POST /rooms/{room}/_sql` turned on (one query, refused before it
/// runs if over budget), and the change feed on.
#[derive(Default)]
pub struct TaskHooks;

impl RoomHooks for TaskHooks {
    /// `GET /rooms/{room}/stats` and `POST /rooms/{room}/archive`: nothing else under a room is
    /// a route, and only the write brings a room into being.
    fn routes(self: std::rc::Rc<Self>) -> Router {
        Router::new().get("stats", stats).post("archive", archive)
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
async fn archive(room: RoomCtx, _req: AppRequest) -> Result<Reply, ApiError> {
    let n = room.db().execute(
        "UPDATE tasks SET status = 'archived', done = 0 WHERE status = 'done'",
        &[],
    )?;
    Ok(Reply::json(200, json!({ "archived": n })))
}

/// Tasks per status, counted in the room's own database.
async fn stats(room: RoomCtx, _req: AppRequest) -> Result<Reply, ApiError> {
    let rows = room
        .db()
        .query("SELECT status, COUNT(*) FROM tasks GROUP BY status", &[])?;
    let counts: nanotype::serde_json::Map<_, _> = rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Value::Text(status), Value::Integer(n)] => Some((status.clone(), (*n).into())),
            _ => None,
        })
        .collect();
    Ok(Reply::json(
        200,
        json!({ "room": room.name(), "tasks": counts, "caller": room.caller().subject() }),
    ))
}

/// Who may use which room: bearer tokens from the `API_TOKENS` secret (`.dev.vars` locally),
/// `token=room-prefix,…`, where a prefix of `*` allows every room.
pub const TOKENS: RoomTokens = RoomTokens::from_var("API_TOKENS");

/// Users' JWTs beside them: HS256 with the `JWT_SECRET` secret, or RS256/ES256 with a key of
/// the `JWKS` variable; each token's `rooms` claim lists the room prefixes it may use.
pub const USERS: (Jwt, Jwt) = (
    Jwt::hs256_from_var("JWT_SECRET"),
    Jwt::jwks_from_var("JWKS"),
);

nanotype::worker!(schema::App, (TOKENS, USERS));
