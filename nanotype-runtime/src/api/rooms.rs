//! `GET /_rooms?after=&limit=`: the rooms the replica knows that the policy lets the caller see,
//! in keyset pages of `room_id`, complete and never truncated without saying so.
//!
//! When the policy can say which rooms a caller may see as name prefixes
//! ([`Policy::visible_rooms`]; [`super::RoomTokens`] does), each prefix is a range of the replica's
//! `_nt_rooms` key and a page reads only rooms the caller may see: one replica query a page.
//! Otherwise rooms are read in key order and each is put to [`Policy::authorize`]; a page then
//! reads at most [`SCAN_PAGES`] × [`MAX_LIMIT`] rows and, if it found fewer rooms than asked,
//! says where to go on (`next`) rather than stopping short in silence.

use serde_json::{json, Value as Json};

use super::error::ApiError;
use super::policy::{Access, Policy, RequestParts, Vars};
use super::route::Operation;
use crate::replica::{Replica, Statement};
use crate::value::Value;
use nanotype_schema::ddl::ROOMS_TABLE;
use nanotype_schema::ident::quote;
use nanotype_schema::ROOM_COLUMN;

/// Rooms a page holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rooms a page holds.
pub const MAX_LIMIT: usize = 1_000;
/// Replica reads one page may make when each room is put to the policy.
#[doc(hidden)]
pub const SCAN_PAGES: usize = 8;

/// Which rooms a caller may see, as a policy can tell before any is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomScope {
    /// Every room.
    All,
    /// The rooms whose names start with one of these (none: no room).
    Prefixes(Vec<String>),
    /// The policy decides room by room ([`Policy::authorize`]).
    EachRoom,
}

/// One page of rooms, and the cursor of the next (`None`: there is no more).
#[derive(Clone, Debug, PartialEq)]
#[doc(hidden)]
pub struct RoomsPage {
    /// `{"room", "watermark", "readSeq"}` for each room, by name.
    pub rooms: Vec<Json>,
    /// Send it back as `after` for the next page.
    pub next: Option<String>,
}

impl RoomsPage {
    /// `{"rooms": [...], "next": "..."|null}`.
    pub fn to_json(&self) -> Json {
        json!({ "rooms": self.rooms, "next": self.next })
    }
}

/// The page of rooms after `after` (at most `limit`) that `policy` lets the caller of `req` see,
/// over every shard of the replica (each read at once, the pages merged by name).
#[doc(hidden)]
pub async fn list<R: Replica, P: Policy + ?Sized>(
    shards: &[R],
    policy: &P,
    req: &RequestParts,
    env: &dyn Vars,
    after: Option<&str>,
    limit: usize,
) -> Result<RoomsPage, ApiError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let scope = policy.visible_rooms(req, env).await;
    let (ranges, check_each) = match &scope {
        RoomScope::All => (None, false),
        RoomScope::Prefixes(p) if p.is_empty() => {
            // No room to see: the policy's word on why (an unknown token is a 401).
            return refuse_or_empty(policy, req, env).await;
        }
        RoomScope::Prefixes(p) => (Some(p.as_slice()), false),
        RoomScope::EachRoom => (None, true),
    };
    let mut rooms = Vec::new();
    let mut cursor = after.map(str::to_owned);
    let mut refused = None;
    let pages = if check_each { SCAN_PAGES } else { 1 };
    for _ in 0..pages {
        let want = limit - rooms.len();
        // One more than asked: whether a next page exists.
        let stmt = page(ranges, cursor.as_deref(), want + 1);
        let pages = futures_util::future::join_all(shards.iter().map(|r| r.query(&stmt))).await;
        let mut rows = Vec::new();
        for (page, shard) in pages.into_iter().zip(shards) {
            match page {
                Ok(page) => rows.extend(page),
                Err(e) => return Err(ApiError::from(e.of_replica(shard).await)),
            }
        }
        // Merged by name; a room on two shards (being moved) is listed once.
        nanotype_schema::sort::sort_by(&mut rows, |a, b| room_name(a).cmp(room_name(b)));
        rows.dedup_by(|a, b| room_name(a) == room_name(b));
        rows.truncate(want + 1);
        let more = rows.len() > want;
        for row in rows.into_iter().take(want) {
            let Some(Value::Text(room)) = row.first() else {
                continue;
            };
            cursor = Some(room.clone());
            if check_each {
                let access = Access {
                    room,
                    table: None,
                    operation: Operation::SyncStatus,
                };
                if let Err(e) = policy.authorize(req, env, &access).await.into_result() {
                    refused = Some(e);
                    continue;
                }
            }
            rooms.push(json!({
                "room": room,
                "watermark": row.get(1).and_then(Value::as_integer),
                "readSeq": row.get(2).and_then(Value::as_integer),
            }));
        }
        if !more {
            if rooms.is_empty() {
                if let Some(e) = refused.filter(|e| e.status == 401) {
                    return Err(e);
                }
            }
            return Ok(RoomsPage { rooms, next: None });
        }
        if rooms.len() >= limit {
            break;
        }
    }
    Ok(RoomsPage {
        rooms,
        next: cursor,
    })
}

fn room_name(row: &[Value]) -> &str {
    match row.first() {
        Some(Value::Text(room)) => room,
        _ => "",
    }
}

/// No room in scope: a 401 when the policy refuses the credentials outright, else an empty page.
pub(crate) async fn refuse_or_empty<P: Policy + ?Sized>(
    policy: &P,
    req: &RequestParts,
    env: &dyn Vars,
) -> Result<RoomsPage, ApiError> {
    let access = Access {
        room: "",
        table: None,
        operation: Operation::SyncStatus,
    };
    match policy.authorize(req, env, &access).await.into_result() {
        Err(e) if e.status == 401 => Err(e),
        _ => Ok(RoomsPage {
            rooms: Vec::new(),
            next: None,
        }),
    }
}

/// Room names starting with one of `prefixes`, as ranges of the key column `col` (quoted):
/// `(col >= p AND col < p || char(127))`, as names are ASCII below 127, their bounds appended to
/// `params`; none is a condition no row meets.
pub(crate) fn prefix_ranges(col: &str, prefixes: &[String], params: &mut Vec<Value>) -> String {
    if prefixes.is_empty() {
        return "0".to_owned();
    }
    let mut ors = Vec::new();
    for p in prefixes {
        params.push(Value::Text(p.clone()));
        let lo = params.len();
        params.push(Value::Text(format!("{p}\u{7f}")));
        ors.push(format!("({col} >= ?{lo} AND {col} < ?{})", lo + 1));
    }
    format!("({})", ors.join(" OR "))
}

/// The statement of one page: rooms after `after` within `ranges` (each prefix a range of the
/// key: `room_id >= p AND room_id < p || char(127)`, as names are ASCII below 127), by name.
#[doc(hidden)]
pub fn page(ranges: Option<&[String]>, after: Option<&str>, limit: usize) -> Statement {
    let col = quote(ROOM_COLUMN);
    let mut params = Vec::new();
    let mut conds = Vec::new();
    if let Some(after) = after {
        params.push(Value::Text(after.to_owned()));
        conds.push(format!("{col} > ?{}", params.len()));
    }
    // A room moved away from a shard is listed by the shard it lives on.
    conds.push(format!(
        "\"watermark\" <> {}",
        crate::sync::moves::MOVED_WATERMARK
    ));
    if let Some(ranges) = ranges {
        conds.push(prefix_ranges(&col, ranges, &mut params));
    }
    params.push(Value::Integer(limit as i64));
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    Statement::new(
        format!(
            "SELECT {col}, \"watermark\", \"read_seq\" FROM {}{filter} ORDER BY {col} LIMIT ?{}",
            quote(ROOMS_TABLE),
            params.len()
        ),
        params,
    )
}
