//! The HTTP API's shape: routes, request bodies and query parameters, and the 4xx errors for
//! everything malformed. Plain Rust (no Worker types), so it is unit-tested natively and the
//! Worker and the Durable Object parse requests the same way.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::schema::Task;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest task title, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Largest page of a listing.
pub const MAX_LIMIT: u32 = 500;
/// Rows a read-only SQL query may return at most.
pub const MAX_SQL_ROWS: usize = 1_000;
/// Header carrying the room's seq after a write (for read-your-writes).
pub const SEQ_HEADER: &str = "x-nanotype-seq";
/// Header the Worker sets when it forwards a request to the room's Durable Object.
pub const ROOM_HEADER: &str = "x-nanotype-room";

/// A request that cannot be served, as a status and a JSON body `{"error": {code, message}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    CreateTask { room: String },
    ListTasks { room: String },
    GetTask { room: String, id: i64 },
    CompleteTask { room: String, id: i64 },
    DeleteTask { room: String, id: i64 },
    SyncStatus { room: String },
    Resync { room: String },
    PresenceList { room: String },
    PresenceSet { room: String },
    CounterGet { room: String, name: String },
    CounterIncrement { room: String, name: String },
    CountersFlush { room: String },
    Sql { room: String },
    // nanotype-bench's baselines, only with `BenchRoutes::On`: the create route's insert without
    // the outbox, and that insert followed by an awaited single-row D1 write.
    BenchPlain { room: String },
    BenchWriteThrough { room: String },
}

impl Route {
    /// The room the route addresses (every route but `/health`).
    pub fn room(&self) -> Option<&str> {
        match self {
            Route::Health => None,
            Route::CreateTask { room }
            | Route::ListTasks { room }
            | Route::GetTask { room, .. }
            | Route::CompleteTask { room, .. }
            | Route::DeleteTask { room, .. }
            | Route::SyncStatus { room }
            | Route::Resync { room }
            | Route::PresenceList { room }
            | Route::PresenceSet { room }
            | Route::CounterGet { room, .. }
            | Route::CounterIncrement { room, .. }
            | Route::CountersFlush { room }
            | Route::Sql { room }
            | Route::BenchPlain { room }
            | Route::BenchWriteThrough { room } => Some(room),
        }
    }
}

/// Whether the benchmark's baseline routes (`POST /rooms/{room}/bench/plain` and
/// `/bench/write-through`) exist. They do only when the Worker's `NANOTYPE_BENCH_ROUTES` var is
/// `"1"`, which only nanotype-bench's scratch config sets; otherwise their paths are unknown (404)
/// like any other, so the deployed example has no way to write around the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchRoutes {
    Off,
    On,
}

impl BenchRoutes {
    /// The Worker var that turns the baseline routes on.
    pub const VAR: &'static str = "NANOTYPE_BENCH_ROUTES";

    /// From the var's value (`None` when unset): on for exactly `"1"`.
    pub fn from_var(value: Option<&str>) -> BenchRoutes {
        if value == Some("1") {
            BenchRoutes::On
        } else {
            BenchRoutes::Off
        }
    }
}

/// A room name (also a counter name): 1 to 64 of `[A-Za-z0-9_-]`. The room name is the Durable
/// Object's name and the replica's `room_id`.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
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
            format!("invalid {what} name: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"),
        ))
    }
}

/// A task id in a path: a positive integer that JavaScript holds exactly.
pub fn parse_id(s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "invalid_id",
            format!("task id `{s}` is not a positive integer"),
        )
    };
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let id: i64 = s.parse().map_err(|_| bad())?;
    if !(1..=nanotype::schema::model::MAX_SAFE_INTEGER).contains(&id) {
        return Err(bad());
    }
    Ok(id)
}

/// Match `method` and `path` to a route. Unknown paths are 404, known paths with another method
/// 405; the bench routes are known only with [`BenchRoutes::On`].
pub fn route(method: &str, path: &str, bench: BenchRoutes) -> Result<Route, ApiError> {
    let bench = bench == BenchRoutes::On;
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let not_allowed = || {
        ApiError::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    };
    let route = match segs.as_slice() {
        ["health"] => match method {
            "GET" | "HEAD" => Route::Health,
            _ => return Err(not_allowed()),
        },
        ["rooms", room, rest @ ..] => {
            check_name("room", room)?;
            let room = room.to_string();
            match (rest, method) {
                (["tasks"], "POST") => Route::CreateTask { room },
                (["tasks"], "GET") => Route::ListTasks { room },
                (["tasks", id], "GET") => Route::GetTask {
                    room,
                    id: parse_id(id)?,
                },
                (["tasks", id], "DELETE") => Route::DeleteTask {
                    room,
                    id: parse_id(id)?,
                },
                (["tasks", id, "complete"], "POST") => Route::CompleteTask {
                    room,
                    id: parse_id(id)?,
                },
                (["sync"], "GET") => Route::SyncStatus { room },
                (["resync"], "POST") => Route::Resync { room },
                (["presence"], "GET") => Route::PresenceList { room },
                (["presence"], "POST") => Route::PresenceSet { room },
                (["counters", "flush"], "POST") => Route::CountersFlush { room },
                (["counters", name], "GET") => {
                    check_name("counter", name)?;
                    Route::CounterGet {
                        room,
                        name: name.to_string(),
                    }
                }
                (["counters", name, "increment"], "POST") => {
                    check_name("counter", name)?;
                    Route::CounterIncrement {
                        room,
                        name: name.to_string(),
                    }
                }
                (["sql"], "POST") => Route::Sql { room },
                (["bench", "plain"], "POST") if bench => Route::BenchPlain { room },
                (["bench", "write-through"], "POST") if bench => Route::BenchWriteThrough { room },
                (["bench", "plain" | "write-through"], _) if bench => return Err(not_allowed()),
                (
                    ["tasks"]
                    | ["tasks", _]
                    | ["tasks", _, "complete"]
                    | ["sync"]
                    | ["resync"]
                    | ["presence"]
                    | ["counters", "flush"]
                    | ["counters", _]
                    | ["counters", _, "increment"]
                    | ["sql"],
                    _,
                ) => return Err(not_allowed()),
                _ => return Err(ApiError::not_found(format!("no route for {path}"))),
            }
        }
        _ => return Err(ApiError::not_found(format!("no route for {path}"))),
    };
    Ok(route)
}

/// A JSON body of type `T`: 413 when too large, 400 when empty, malformed, of the wrong shape or
/// with unknown fields (serde's message names the field and the problem).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    check_body_size(body.len())?;
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::new(400, "invalid_json", "expected a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "invalid_json"
        } else {
            "invalid_body"
        };
        ApiError::new(400, code, format!("invalid request body: {e}"))
    })
}

pub fn check_body_size(len: usize) -> Result<(), ApiError> {
    if len > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("request body is {len} bytes; the limit is {MAX_BODY_BYTES}"),
        ));
    }
    Ok(())
}

/// `POST /rooms/{room}/tasks`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl NewTask {
    /// The task to insert: key assigned by SQLite, status `open` unless given, not done.
    pub fn into_task(self, created_at: i64) -> Task {
        Task {
            id: 0,
            title: self.title,
            status: self.status.unwrap_or_else(|| "open".into()),
            done: false,
            created_at,
            assignee: self.assignee,
            tags: self.tags,
        }
    }

    pub fn parse(body: &[u8]) -> Result<NewTask, ApiError> {
        let t: NewTask = parse_body(body)?;
        let title_len = t.title.trim().chars().count();
        if title_len == 0 || t.title.chars().count() > MAX_TITLE_CHARS {
            return Err(ApiError::new(
                400,
                "invalid_body",
                format!("`title` must be 1 to {MAX_TITLE_CHARS} characters"),
            ));
        }
        if let Some(s) = &t.status {
            if s.is_empty() || s.len() > 32 {
                return Err(ApiError::new(
                    400,
                    "invalid_body",
                    "`status` must be 1 to 32 characters",
                ));
            }
        }
        if t.tags.len() > 32 {
            return Err(ApiError::new(400, "invalid_body", "at most 32 `tags`"));
        }
        Ok(t)
    }
}

/// `POST /rooms/{room}/presence`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PresenceIn {
    pub user: String,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default = "default_ttl")]
    pub ttl_ms: u64,
}

fn default_ttl() -> u64 {
    30_000
}

impl PresenceIn {
    pub fn parse(body: &[u8]) -> Result<PresenceIn, ApiError> {
        let p: PresenceIn = parse_body(body)?;
        check_name("user", &p.user)?;
        if !(100..=3_600_000).contains(&p.ttl_ms) {
            return Err(ApiError::new(
                400,
                "invalid_body",
                "`ttlMs` must be 100 to 3600000",
            ));
        }
        Ok(p)
    }
}

/// `POST /rooms/{room}/counters/{name}/increment` (the body may be empty: `by` defaults to 1).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IncrementIn {
    #[serde(default = "one")]
    pub by: i64,
}

fn one() -> i64 {
    1
}

impl IncrementIn {
    pub fn parse(body: &[u8]) -> Result<IncrementIn, ApiError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(IncrementIn { by: 1 });
        }
        let i: IncrementIn = parse_body(body)?;
        if i.by.abs() > 1_000_000 {
            return Err(ApiError::new(
                400,
                "invalid_body",
                "`by` must be within ±1000000",
            ));
        }
        Ok(i)
    }
}

/// `POST /rooms/{room}/sql`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SqlIn {
    pub sql: String,
    #[serde(default)]
    pub params: Vec<serde_json::Value>,
    #[serde(default = "default_rows")]
    pub max_rows: usize,
}

fn default_rows() -> usize {
    100
}

impl SqlIn {
    pub fn parse(body: &[u8]) -> Result<SqlIn, ApiError> {
        let q: SqlIn = parse_body(body)?;
        if q.sql.trim().is_empty() {
            return Err(ApiError::new(400, "invalid_body", "`sql` is empty"));
        }
        if q.max_rows == 0 || q.max_rows > MAX_SQL_ROWS {
            return Err(ApiError::new(
                400,
                "invalid_body",
                format!("`maxRows` must be 1 to {MAX_SQL_ROWS}"),
            ));
        }
        Ok(q)
    }

    /// The parameters as SQL values: null, numbers, strings, booleans (as 0/1).
    pub fn values(&self) -> Result<Vec<nanotype::Value>, ApiError> {
        use nanotype::Value;
        self.params
            .iter()
            .map(|p| match p {
                serde_json::Value::Null => Ok(Value::Null),
                serde_json::Value::Bool(b) => Ok(Value::Integer(i64::from(*b))),
                serde_json::Value::String(s) => Ok(Value::Text(s.clone())),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) if i.abs() <= nanotype::schema::model::MAX_SAFE_INTEGER => {
                        Ok(Value::Integer(i))
                    }
                    Some(_) => Err(ApiError::bad_request(
                        "integer parameters must be within ±(2^53 − 1)",
                    )),
                    None => Ok(Value::Real(n.as_f64().unwrap_or(0.0))),
                },
                _ => Err(ApiError::bad_request(
                    "`params` may hold null, booleans, numbers and strings",
                )),
            })
            .collect()
    }
}

/// How a listing should be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    Strong,
    Replica,
    ReadYourWrites(i64),
}

/// `GET /rooms/{room}/tasks?consistency=&seq=&after=&limit=&status=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListParams {
    pub mode: ReadMode,
    pub after: Option<i64>,
    pub limit: u32,
    pub status: Option<String>,
}

impl ListParams {
    /// From the query string's pairs. `consistency` defaults to `replica`; `read-your-writes`
    /// needs `seq`.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ListParams, ApiError> {
        let mut consistency = None;
        let mut seq = None;
        let mut after = None;
        let mut limit = 100;
        let mut status = None;
        let int = |k: &str, v: &str| -> Result<i64, ApiError> {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0 && *n <= nanotype::schema::model::MAX_SAFE_INTEGER)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`{k}` must be a non-negative integer"))
                })
        };
        for (k, v) in pairs {
            match k {
                "consistency" => consistency = Some(v.to_owned()),
                "seq" => seq = Some(int(k, v)?),
                "after" => after = Some(int(k, v)?),
                "limit" => {
                    let n = int(k, v)?;
                    if n < 1 || n > i64::from(MAX_LIMIT) {
                        return Err(ApiError::bad_request(format!(
                            "`limit` must be 1 to {MAX_LIMIT}"
                        )));
                    }
                    limit = n as u32;
                }
                "status" => {
                    if v.is_empty() || v.len() > 32 {
                        return Err(ApiError::bad_request("`status` must be 1 to 32 characters"));
                    }
                    status = Some(v.to_owned());
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{k}`"
                    )))
                }
            }
        }
        let mode = match consistency.as_deref() {
            None | Some("replica") => ReadMode::Replica,
            Some("strong") => ReadMode::Strong,
            Some("read-your-writes") => match seq {
                Some(s) => ReadMode::ReadYourWrites(s),
                None => return Err(ApiError::bad_request(
                    "`consistency=read-your-writes` needs `seq` (the x-nanotype-seq of your write)",
                )),
            },
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "`consistency` must be strong, replica or read-your-writes, not `{other}`"
                )))
            }
        };
        Ok(ListParams {
            mode,
            after,
            limit,
            status,
        })
    }

    pub fn page(&self) -> nanotype::Page {
        match self.after {
            Some(a) => nanotype::Page::after(a, self.limit),
            None => nanotype::Page::first(self.limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Routing as the deployed Worker does it (no bench routes).
    fn deployed(method: &str, path: &str) -> Result<Route, ApiError> {
        route(method, path, BenchRoutes::Off)
    }

    #[test]
    fn routes() {
        assert_eq!(deployed("GET", "/health"), Ok(Route::Health));
        assert_eq!(
            deployed("POST", "/rooms/a-1/tasks/7/complete"),
            Ok(Route::CompleteTask {
                room: "a-1".into(),
                id: 7
            })
        );
        assert_eq!(deployed("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(deployed("GET", "/rooms/a/nope").unwrap_err().status, 404);
        assert_eq!(deployed("PUT", "/rooms/a/tasks").unwrap_err().status, 405);
        assert_eq!(
            deployed("GET", "/rooms/a.b/tasks").unwrap_err().code,
            "invalid_name"
        );
        assert_eq!(
            deployed("GET", &format!("/rooms/{}/tasks", "x".repeat(65)))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            deployed("DELETE", "/rooms/a/tasks/abc").unwrap_err().code,
            "invalid_id"
        );
        assert_eq!(
            deployed("DELETE", "/rooms/a/tasks/0").unwrap_err().code,
            "invalid_id"
        );
        assert_eq!(
            deployed("DELETE", "/rooms/a/tasks/99999999999999999")
                .unwrap_err()
                .code,
            "invalid_id"
        );
    }

    #[test]
    fn bench_routes_exist_only_when_the_var_is_1() {
        for path in ["/rooms/a/bench/plain", "/rooms/a/bench/write-through"] {
            for method in ["POST", "GET"] {
                // Off: the same 404 as any unknown path, whatever the method.
                assert_eq!(
                    deployed(method, path),
                    Err(ApiError::not_found(format!("no route for {path}")))
                );
            }
            assert_eq!(route("GET", path, BenchRoutes::On).unwrap_err().status, 405);
        }
        assert_eq!(
            route("POST", "/rooms/a/bench/plain", BenchRoutes::On),
            Ok(Route::BenchPlain { room: "a".into() })
        );
        assert_eq!(
            route("POST", "/rooms/a/bench/write-through", BenchRoutes::On),
            Ok(Route::BenchWriteThrough { room: "a".into() })
        );
        assert_eq!(
            route("POST", "/rooms/a/bench/other", BenchRoutes::On)
                .unwrap_err()
                .status,
            404
        );
        for value in [None, Some(""), Some("0"), Some("true"), Some("1 ")] {
            assert_eq!(BenchRoutes::from_var(value), BenchRoutes::Off);
        }
        assert_eq!(BenchRoutes::from_var(Some("1")), BenchRoutes::On);
    }

    #[test]
    fn bodies() {
        assert_eq!(NewTask::parse(b"{").unwrap_err().code, "invalid_json");
        assert_eq!(NewTask::parse(b"").unwrap_err().code, "invalid_json");
        assert_eq!(NewTask::parse(b"{}").unwrap_err().code, "invalid_body");
        assert_eq!(
            NewTask::parse(br#"{"title": 5}"#).unwrap_err().code,
            "invalid_body"
        );
        assert_eq!(
            NewTask::parse(br#"{"title": "a", "x": 1}"#)
                .unwrap_err()
                .code,
            "invalid_body"
        );
        assert_eq!(
            NewTask::parse(br#"{"title": "  "}"#).unwrap_err().code,
            "invalid_body"
        );
        assert_eq!(
            NewTask::parse(&vec![b' '; MAX_BODY_BYTES + 1])
                .unwrap_err()
                .status,
            413
        );
        let t = NewTask::parse(br#"{"title": "a", "tags": ["x"]}"#).unwrap();
        assert_eq!(t.tags, ["x"]);
        assert_eq!(IncrementIn::parse(b"").unwrap().by, 1);
        assert_eq!(
            IncrementIn::parse(br#"{"by": "x"}"#).unwrap_err().status,
            400
        );
    }

    #[test]
    fn list_params() {
        let p = ListParams::parse([("consistency", "read-your-writes"), ("seq", "4")]).unwrap();
        assert_eq!(p.mode, ReadMode::ReadYourWrites(4));
        assert!(ListParams::parse([("consistency", "read-your-writes")]).is_err());
        assert!(ListParams::parse([("limit", "0")]).is_err());
        assert!(ListParams::parse([("after", "x")]).is_err());
        assert!(ListParams::parse([("consistency", "eventual")]).is_err());
        assert_eq!(ListParams::parse([]).unwrap().mode, ReadMode::Replica);
    }
}
