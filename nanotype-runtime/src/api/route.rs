//! Which route a request is, from its method and path, for a [`Schema`].
//!
//! ```text
//! GET    /health                          liveness (no data, no policy)
//! POST   /rooms/{room}/{table}            create
//! GET    /rooms/{room}/{table}            keyset page: ?after=&limit=&<indexed field>=&consistency=
//! GET    /rooms/{room}/{table}/{key}      one row (?consistency=)
//! PUT    /rooms/{room}/{table}/{key}      create or replace with that key
//! PATCH  /rooms/{room}/{table}/{key}      change the given fields
//! DELETE /rooms/{room}/{table}/{key}      delete
//! GET    /rooms/{room}/_sync              replication health
//! POST   /rooms/{room}/_resync            force a full resync
//! POST   /rooms/{room}/_audit             compare the replica with the room now, repair it
//! POST   /rooms/{room}/_sql               read-only SQL (only when the app turns it on)
//! GET    /rooms/{room}/_feed?since=SEQ    the room's change feed, a WebSocket (when the app turns
//!                                         it on)
//! GET    /_rooms                          the rooms the caller may see (each put to the policy)
//! GET    /_nanotype/openapi.json          the API's OpenAPI 3.1 description (any credentials the
//!                                         policy accepts)
//! GET    /_nanotype/{client.js,client.d.ts,dashboard}
//!                                         the feed client and the dashboard page (static, no data)
//! *      /rooms/{room}/{anything else}    the app's custom routes (its room hooks)
//! ```
//!
//! The runtime's own routes start with `_`, which no table name may (the schema checker refuses
//! it), so a table can never shadow them.

use super::error::ApiError;
use crate::registry::{Schema, TableEntry};
use crate::value::Value;
use nanotype_schema::model::{ValueKind, MAX_SAFE_INTEGER};

/// What a request asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// `GET /health`.
    Health,
    /// A table route of a room.
    Table {
        /// The room.
        room: String,
        /// The table.
        table: &'static TableEntry,
        /// What the route does.
        op: TableOp,
    },
    /// `GET /rooms/{room}/_sync`.
    Sync {
        /// The room.
        room: String,
    },
    /// `POST /rooms/{room}/_resync`.
    Resync {
        /// The room.
        room: String,
    },
    /// `POST /rooms/{room}/_move` `{"to": shard}`: move the room's D1 copy to another shard.
    Move {
        /// The room.
        room: String,
    },
    /// `POST /rooms/{room}/_sql`.
    Sql {
        /// The room.
        room: String,
    },
    /// `POST /rooms/{room}/_audit`.
    Audit {
        /// The room.
        room: String,
    },
    /// `GET /rooms/{room}/_feed`: the room's change feed, over a WebSocket.
    Feed {
        /// The room.
        room: String,
    },
    /// `GET /_rooms`: the rooms the caller may see.
    Rooms,
    /// `GET /_across/{table}`: a page of the table's rows across the rooms the caller may see.
    Across {
        /// The table.
        table: &'static TableEntry,
    },
    /// `GET /_nanotype/openapi.json`: the API's description ([`super::openapi`]).
    OpenApi,
    /// `GET /_nanotype/{file}`: one of the runtime's static files ([`super::assets`]).
    Asset(&'static super::assets::Asset),
    /// Anything else under `/rooms/{room}/`: the app's custom routes.
    Custom {
        /// The room.
        room: String,
        /// The request's method.
        method: String,
        /// Path segments after `/rooms/{room}/`.
        path: Vec<String>,
    },
}

/// What a table route does.
#[derive(Clone, Debug, PartialEq)]
pub enum TableOp {
    /// `POST /rooms/{room}/{table}`.
    Create,
    /// `GET /rooms/{room}/{table}`: a keyset page.
    List,
    /// `GET /rooms/{room}/{table}/{key}`.
    Get(Value),
    /// `PUT /rooms/{room}/{table}/{key}`.
    Put(Value),
    /// `PATCH /rooms/{room}/{table}/{key}`.
    Patch(Value),
    /// `DELETE /rooms/{room}/{table}/{key}`.
    Delete(Value),
}

/// What a request does, for the authorization policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Reads a table (list, get).
    Read,
    /// Creates a row (POST, or PUT).
    Create,
    /// Changes a row (PATCH, or PUT).
    Update,
    /// Deletes a row.
    Delete,
    /// Reads the room's replication health.
    SyncStatus,
    /// Forces a resync.
    Resync,
    /// Moves the room's D1 copy to another shard.
    Move,
    /// Runs read-only SQL.
    Sql,
    /// Asks for an audit of the replica against the room.
    Audit,
    /// An app's custom route.
    Custom,
    /// Subscribes to the room's change feed.
    Feed,
    /// Reads the API's description (`/_nanotype/openapi.json`): no room (`Access::room` is
    /// empty), no data. Any credentials the policy accepts for some room may read it.
    Describe,
}

impl Route {
    /// The room addressed (every route but `/health`).
    pub fn room(&self) -> Option<&str> {
        match self {
            Route::Health
            | Route::Rooms
            | Route::Across { .. }
            | Route::Asset(_)
            | Route::OpenApi => None,
            Route::Table { room, .. }
            | Route::Feed { room }
            | Route::Sync { room }
            | Route::Resync { room }
            | Route::Move { room }
            | Route::Sql { room }
            | Route::Audit { room }
            | Route::Custom { room, .. } => Some(room),
        }
    }

    /// The table addressed, if any.
    pub fn table(&self) -> Option<&'static TableEntry> {
        match self {
            Route::Table { table, .. } => Some(table),
            _ => None,
        }
    }

    /// What the route does, for the policy.
    pub fn operation(&self) -> Operation {
        match self {
            Route::Health | Route::Rooms | Route::Across { .. } | Route::Asset(_) => {
                Operation::Read
            }
            Route::Feed { .. } => Operation::Feed,
            Route::OpenApi => Operation::Describe,
            Route::Table { op, .. } => match op {
                TableOp::List | TableOp::Get(_) => Operation::Read,
                TableOp::Create | TableOp::Put(_) => Operation::Create,
                TableOp::Patch(_) => Operation::Update,
                TableOp::Delete(_) => Operation::Delete,
            },
            Route::Sync { .. } => Operation::SyncStatus,
            Route::Resync { .. } => Operation::Resync,
            Route::Move { .. } => Operation::Move,
            Route::Sql { .. } => Operation::Sql,
            Route::Audit { .. } => Operation::Audit,
            Route::Custom { .. } => Operation::Custom,
        }
    }

    /// Whether the route reads a table (and may be answered from the replica).
    pub fn is_table_read(&self) -> bool {
        matches!(
            self,
            Route::Table {
                op: TableOp::List | TableOp::Get(_),
                ..
            }
        )
    }
}

/// A room name: 1 to 64 of `[A-Za-z0-9_-]`. It is the Durable Object's name and the replica's
/// `room_id`.
pub fn check_room_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            "invalid_name",
            "invalid room name: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
        ))
    }
}

/// A key from its path segments (one per key field), as the table's key: integers within
/// ±(2^53 − 1), text as given (percent-decoded); a composite key's parts made one
/// ([`crate::key::compose`]).
pub fn parse_key(table: &TableEntry, segments: &[&str]) -> Result<Value, ApiError> {
    let positions = table.def.key_positions();
    if positions.is_empty() || positions.len() != segments.len() {
        return Err(ApiError::internal("a key of another length"));
    }
    let mut parts = Vec::with_capacity(segments.len());
    for (&i, segment) in positions.iter().zip(segments) {
        parts.push(parse_key_part(table.def.columns[i].kind, segment)?);
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        crate::key::compose(parts)
    })
}

fn parse_key_part(kind: ValueKind, segment: &str) -> Result<Value, ApiError> {
    let text = percent_decode(segment)?;
    match kind {
        ValueKind::String => {
            if text.is_empty() || text.len() > 512 {
                return Err(ApiError::new(400, "invalid_key", "a key is 1 to 512 bytes"));
            }
            Ok(Value::Text(text))
        }
        kind => {
            let bad = || {
                ApiError::new(
                    400,
                    "invalid_key",
                    format!("`{text}` is not a valid `{}` key", kind.rust_name()),
                )
            };
            let digits = text.strip_prefix('-').unwrap_or(&text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            // Any run of digits is a number; one too long for i64 is out of range like others.
            let n: i64 = text.parse().unwrap_or(if text.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            });
            let (lo, hi) = kind
                .int_range()
                .unwrap_or((-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER));
            if !(lo..=hi).contains(&n) {
                let why = if (lo, hi) == (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) {
                    "±(2^53 − 1), the integers that travel exactly through JavaScript (the \
                     Durable Object's and D1's APIs)"
                        .to_owned()
                } else {
                    format!("{lo} to {hi}, the range of `{}`", kind.rust_name())
                };
                return Err(ApiError::new(
                    400,
                    "invalid_key",
                    format!("key `{text}` is outside {why}"),
                ));
            }
            Ok(Value::Integer(n))
        }
    }
}

/// `%XX` escapes decoded; invalid escapes or UTF-8 are a 400.
pub fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid percent-encoding in `{s}`"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The methods a request may have: those a Worker can send on to a room's Durable Object
/// unchanged. Any other is a 405 (workers-rs would carry it as `GET`).
pub const CARRIED_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "REPORT",
];

/// What a 405 for a method outside [`CARRIED_METHODS`] on a custom route's path says it takes.
const CUSTOM_ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// Match `method` and `path` against the routes of schema `S`. Unknown paths outside `/rooms/`
/// are 404; a table path with a method it does not take is 405.
pub fn route<S: Schema>(method: &str, path: &str) -> Result<Route, ApiError> {
    if !CARRIED_METHODS.contains(&method) {
        // Routed by a method no route of the runtime takes, for the path's `Allow`.
        return Err(match route::<S>("TRACE", path) {
            Err(e) if e.status != 405 => e,
            Err(e) => ApiError::method_not_allowed(method, path, e.allow.unwrap_or("GET")),
            Ok(_) => ApiError::method_not_allowed(method, path, CUSTOM_ALLOW),
        });
    }
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let not_allowed = |allow: &'static str| ApiError::method_not_allowed(method, path, allow);
    match segs.as_slice() {
        ["health"] => match method {
            "GET" | "HEAD" => Ok(Route::Health),
            _ => Err(not_allowed("GET, HEAD")),
        },
        ["_rooms"] => match method {
            "GET" => Ok(Route::Rooms),
            _ => Err(not_allowed("GET")),
        },
        ["_across", name] => match (method, S::table(name)) {
            ("GET", Some(table)) => Ok(Route::Across { table }),
            (_, Some(_)) => Err(not_allowed("GET")),
            (_, None) => Err(ApiError::not_found(format!(
                "no table `{name}` (tables: {})",
                S::TABLES
                    .iter()
                    .map(crate::registry::TableEntry::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        },
        ["_nanotype", "openapi.json"] => match method {
            "GET" | "HEAD" => Ok(Route::OpenApi),
            _ => Err(not_allowed("GET, HEAD")),
        },
        ["_nanotype", file] => match (method, super::assets::find(file)) {
            ("GET" | "HEAD", Some(asset)) => Ok(Route::Asset(asset)),
            (_, Some(_)) => Err(not_allowed("GET, HEAD")),
            (_, None) => Err(ApiError::not_found(format!("no route for {path}"))),
        },
        ["rooms", room, rest @ ..] => {
            let room = percent_decode(room)?;
            check_room_name(&room)?;
            match rest {
                ["_sync"] => match method {
                    "GET" => Ok(Route::Sync { room }),
                    _ => Err(not_allowed("GET")),
                },
                ["_resync"] => match method {
                    "POST" => Ok(Route::Resync { room }),
                    _ => Err(not_allowed("POST")),
                },
                ["_move"] => match method {
                    "POST" => Ok(Route::Move { room }),
                    _ => Err(not_allowed("POST")),
                },
                ["_sql"] => match method {
                    "POST" => Ok(Route::Sql { room }),
                    _ => Err(not_allowed("POST")),
                },
                ["_audit"] => match method {
                    "POST" => Ok(Route::Audit { room }),
                    _ => Err(not_allowed("POST")),
                },
                ["_feed"] => match method {
                    "GET" => Ok(Route::Feed { room }),
                    _ => Err(not_allowed("GET")),
                },
                [name, more @ ..] if !name.starts_with('_') && S::table(name).is_some() => {
                    let table = S::table(name).ok_or_else(|| ApiError::internal("table"))?;
                    // A key is one segment per key field: `/members/7/ada` for `(team, user)`.
                    let arity = table.def.key_positions().len();
                    let op = match (more, method) {
                        ([], "POST") => TableOp::Create,
                        ([], "GET" | "HEAD") => TableOp::List,
                        ([], _) => return Err(not_allowed("GET, HEAD, POST")),
                        (key, _) if key.len() != arity => {
                            return Err(ApiError::not_found(format!("no route for {path}")))
                        }
                        (key, "GET" | "HEAD") => TableOp::Get(parse_key(table, key)?),
                        (key, "PUT") => TableOp::Put(parse_key(table, key)?),
                        (key, "PATCH") => TableOp::Patch(parse_key(table, key)?),
                        (key, "DELETE") => TableOp::Delete(parse_key(table, key)?),
                        _ => return Err(not_allowed("GET, HEAD, PUT, PATCH, DELETE")),
                    };
                    Ok(Route::Table { room, table, op })
                }
                [first, ..] if first.starts_with('_') => {
                    Err(ApiError::not_found(format!("no route for {path}")))
                }
                [] => Err(ApiError::not_found(format!("no route for {path}"))),
                _ => Ok(Route::Custom {
                    room,
                    method: method.to_owned(),
                    path: rest.iter().map(|s| (*s).to_owned()).collect(),
                }),
            }
        }
        _ => Err(ApiError::not_found(format!("no route for {path}"))),
    }
}
