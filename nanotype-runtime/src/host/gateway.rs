//! The Worker's side, whatever runs it: [`serve`] routes every request of a [`Schema`]'s API
//! over a [`GatewayPlatform`] (the Worker in `nanotype::worker`, the native test app).
//!
//! Every room route is first put to the app's [`Policy`]. Replica reads (the default consistency)
//! are answered here from D1 in one round trip: a batch (one transaction) that reads the room's
//! replication state and the rows together, so the rows are served only when that state says
//! they are whole (the room is known, not being rebuilt, and has the caller's seq for
//! read-your-writes). Otherwise, and for strong reads and every write, the request goes to the
//! room, with the reason for a fallback in `x-nanotype-fallback`.

use super::http::{HttpRequest, HttpResponse};
use crate::api::params::{self, ReadParams};
use crate::api::room::{rows_json, Reply};
use crate::api::{self, Access, ApiError, Caller, Policy, Route, TableOp, Vars};
use crate::read::{get_query_of, Consistency, RoomQuery};
use crate::registry::{Schema, TableEntry};
use crate::replica::{Replica, SessionStart, Statement};
use crate::shard::{ShardCache, Shards, SHARD_HEADER};
use crate::sync::statements::room_state;
use crate::sync::RoomState;

/// The variable that picks where a room's reads go when they name no consistency: `replica`
/// (unset: D1) or `room` (the room's Durable Object).
pub const ROOM_READS_VAR: &str = "NANOTYPE_ROOM_READS";

/// What a platform gives the gateway: the replica's shards, the rooms, the variables.
#[allow(async_fn_in_trait)]
pub trait GatewayPlatform {
    /// The shared replica (D1).
    type Replica: Replica;
    /// The replica's shard `shard` (a D1 binding name), or why there is none.
    fn replica(&self, shard: &str) -> Result<Self::Replica, crate::Error>;
    /// Where rooms away from their home shard were last seen (kept across requests).
    fn shard_cache(&self) -> &ShardCache;
    /// The replica's shards ([`crate::shard::SHARDS_VAR`]).
    fn shards(&self) -> Shards {
        Shards::from_vars(self.vars())
    }
    /// The environment's variables and secrets.
    fn vars(&self) -> &dyn Vars;
    /// `req` sent to the room `room` (its Durable Object, by name), and its answer.
    async fn forward(&self, room: &str, req: HttpRequest) -> Result<HttpResponse, ApiError>;
}

/// What the gateway answers.
#[derive(Debug)]
pub enum Outcome {
    /// This response.
    Respond(HttpResponse),
    /// A feed subscription the policy allowed: the platform passes the upgrade to the room's
    /// object as it is, with the room header set, and returns its socket.
    Upgrade {
        /// The room subscribed to.
        room: String,
    },
}

/// Serve `req` for the app's schema `S` under `policy`: the Worker's whole `fetch`.
pub async fn serve<S: Schema, G: GatewayPlatform>(
    platform: &G,
    policy: &(impl Policy + ?Sized),
    req: &HttpRequest,
) -> Outcome {
    if let Err(e) = api::body::check_body_size(req.body.len()) {
        return Outcome::Respond(HttpResponse::error(&e));
    }
    match route_and_serve::<S, G>(platform, policy, req).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Respond(HttpResponse::error(&e)),
    }
}

async fn route_and_serve<S: Schema, G: GatewayPlatform>(
    platform: &G,
    policy: &(impl Policy + ?Sized),
    req: &HttpRequest,
) -> Result<Outcome, ApiError> {
    let route = api::route::route::<S>(&req.method, &req.path)?;
    let respond = |r: HttpResponse| Ok(Outcome::Respond(r));
    match &route {
        Route::Asset(asset) => return respond(HttpResponse::asset(asset)),
        Route::Rooms => return respond(rooms(platform, policy, req).await?),
        Route::Across { table } => return respond(across(platform, policy, req, table).await?),
        Route::OpenApi => return respond(openapi::<S, G>(platform, policy, req).await?),
        _ => {}
    }
    let Some(room) = route.room().map(str::to_owned) else {
        return respond(HttpResponse::json(200, &serde_json::json!({ "ok": true })));
    };
    let access = Access {
        room: &room,
        table: route.table().map(super::super::registry::TableEntry::name),
        operation: route.operation(),
    };
    let caller = policy
        .authorize(&req.parts(), platform.vars(), &access)
        .await
        .into_result()?;
    if let Route::Feed { .. } = route {
        if !req.is_websocket_upgrade() {
            return Err(ApiError::new(
                426,
                "upgrade_required",
                "the feed is a WebSocket: send `Upgrade: websocket`",
            ));
        }
        return Ok(Outcome::Upgrade { room });
    }
    api::body::check_content_type(&route, req.header("content-type"), req.body.len())?;
    if let Route::Sync { .. } = route {
        params::sync_query(&params::query_pairs(&req.query)?)?;
    }

    let mut fallback = None;
    if let Route::Table { table, op, .. } = &route {
        let query = params::query_pairs(&req.query)?;
        let token = req
            .header(api::TOKEN_HEADER)
            .map(api::ReadToken::parse)
            .transpose()?;
        // A token asks for its seq, as `x-nanotype-seq` does: the later of the two.
        let seq = match (req.header(api::SEQ_HEADER), &token) {
            (Some(s), Some(t)) => Some(match s.trim().parse::<i64>() {
                Ok(n) => n.max(t.seq).to_string(),
                Err(_) => s.to_owned(),
            }),
            (Some(s), None) => Some(s.to_owned()),
            (None, Some(t)) => Some(t.seq.to_string()),
            (None, None) => None,
        };
        let read = match op {
            TableOp::List => Some(ReadParams::parse(table, &query, seq.as_deref())?),
            TableOp::Get(_) => Some(get_params(&query, seq.as_deref())?),
            _ => None,
        };
        // `NANOTYPE_ROOM_READS=room`: a read that names no consistency and no seq goes to the
        // room (see docs/scaling.md for when that is the better default).
        let to_room_by_default = platform.vars().var(ROOM_READS_VAR).as_deref() == Some("room")
            && !query.iter().any(|(k, _)| k == "consistency")
            && read
                .as_ref()
                .is_some_and(|r| r.consistency == Consistency::Replica);
        if let Some(read) = read.filter(|_| !to_room_by_default) {
            match replica_read(platform, &room, table, op, &read, token.as_ref()).await {
                Ok(answer) => {
                    let mut resp = HttpResponse::reply(&answer.reply, answer.source, None);
                    resp.set_header(SHARD_HEADER, &answer.shard);
                    resp.set_header(api::TOKEN_HEADER, &answer.token.to_header());
                    return respond(resp);
                }
                Err(why) => fallback = why,
            }
        }
    }
    let rows_asked = matches!(route, Route::Sync { .. })
        && params::query_pairs(&req.query)?
            .iter()
            .any(|(k, v)| k == "rows" && v == "1");
    let resp = platform
        .forward(&room, to_room(req, &room, &caller, fallback.as_deref()))
        .await?;
    if let Some(shard) = resp.header(SHARD_HEADER) {
        // The room is the authority on where its rows are.
        platform
            .shard_cache()
            .learn(&platform.shards(), &room, shard);
    }
    if rows_asked && resp.status == 200 {
        return respond(with_replica_rows::<S, G>(platform, resp, &room).await);
    }
    respond(resp)
}

/// The request as its room gets it: the room named, the caller as the policy decided, the
/// client's headers (app code reads them) but the runtime's own and the hop-by-hop ones, the body.
fn to_room(req: &HttpRequest, room: &str, caller: &Caller, fallback: Option<&str>) -> HttpRequest {
    let mut inner = HttpRequest::new(&req.method, &req.path)
        .with_header(api::ROOM_HEADER, room)
        .with_header(api::CALLER_HEADER, &caller.to_header())
        .with_header("content-type", "application/json");
    inner.query = req.query.clone();
    for (name, value) in &req.headers {
        let runtime_only = [api::ROOM_HEADER, api::CALLER_HEADER, api::FALLBACK_HEADER];
        let hop = [
            "host",
            "connection",
            "content-length",
            "transfer-encoding",
            "upgrade",
            "content-type",
        ];
        if !runtime_only.contains(&name.as_str()) && !hop.contains(&name.as_str()) {
            inner = inner.with_header(name, value);
        }
    }
    if let Some(why) = fallback {
        inner = inner.with_header(api::FALLBACK_HEADER, &super::http::header_text(why));
    }
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        inner.body = req.body.clone();
    }
    inner
}

/// `GET /rooms/{room}/_sync?rows=1`: the room's row counts (from its Durable Object) next to
/// D1's for the same room, one D1 batch.
async fn with_replica_rows<S: Schema, G: GatewayPlatform>(
    platform: &G,
    resp: HttpResponse,
    room: &str,
) -> HttpResponse {
    let mut body = resp.json_body();
    let defs = S::defs();
    let counts: Vec<Statement> = defs
        .iter()
        .map(|d| {
            Statement::new(
                format!("SELECT COUNT(*) FROM \"{}\" WHERE \"room_id\" = ?1", d.name),
                vec![crate::Value::Text(room.to_owned())],
            )
        })
        .collect();
    let shards = platform.shards();
    let shard = resp
        .header(SHARD_HEADER)
        .map_or_else(|| shards.home(room).to_owned(), str::to_owned);
    let replica = match platform.replica(&shard) {
        Ok(d1) => d1.batch(&counts).await.ok(),
        Err(_) => None,
    };
    for (i, d) in defs.iter().enumerate() {
        let n = replica
            .as_ref()
            .and_then(|r| r.get(i))
            .and_then(|rows| rows.first().and_then(|r| r.first()))
            .and_then(crate::Value::as_integer);
        body["rows"][&d.name[..]]["replica"] = n.into();
    }
    let mut out = HttpResponse::json(200, &body);
    for (k, v) in &resp.headers {
        if k != "content-type" {
            out.set_header(k, v);
        }
    }
    out
}

/// A single-row read takes only `consistency` and `seq`.
fn get_params(query: &[(String, String)], seq: Option<&str>) -> Result<ReadParams, ApiError> {
    let mut mode = None;
    // The header is checked even when `seq=` overrides it, as a listing's is: a malformed one
    // is a 400, never ignored.
    let mut seq = match seq {
        Some(s) => Some(params::non_negative("x-nanotype-seq", s)?),
        None => None,
    };
    for (k, v) in query {
        match k.as_str() {
            "consistency" => mode = Some(v.as_str()),
            "seq" => seq = Some(params::non_negative(k, v)?),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}`"
                )))
            }
        }
    }
    Ok(ReadParams {
        consistency: params::consistency(mode, seq)?,
        page: crate::read::Page::first(1),
        filter: None,
    })
}

/// A read D1 answered.
struct ReplicaAnswer {
    reply: Reply,
    /// The shard read.
    shard: String,
    /// `replica` (the session's copy, a read replica in production) or `replica-primary` (D1's
    /// primary, asked when the first copy lacked the seq the read needs).
    source: &'static str,
    /// For the client's next read: the watermark this answer passed, and its bookmark.
    token: api::ReadToken,
}

/// The read answered from D1, or `Err(reason)` when the room must answer it (`Err(None)`:
/// strong consistency was asked for).
///
/// The read runs in a D1 session: from the token's bookmark when the token comes from the room's
/// shard (a copy at least as new as the client's last answer), else from any copy. When that
/// copy lacks the seq the read needs and was not D1's primary, the primary is asked
/// (`first-primary`) before the room.
async fn replica_read<G: GatewayPlatform>(
    platform: &G,
    room: &str,
    table: &'static TableEntry,
    op: &TableOp,
    read: &ReadParams,
    token: Option<&api::ReadToken>,
) -> Result<ReplicaAnswer, Option<String>> {
    let need = match read.consistency {
        Consistency::Strong => return Err(None),
        Consistency::Replica => 0,
        Consistency::ReadYourWrites(seq) => seq,
    };
    let query: RoomQuery = match op {
        // A key or cursor that does not fit: the room answers, with the error.
        TableOp::Get(key) => {
            get_query_of(table.sql(), key.clone()).map_err(|e| Some(e.to_string()))?
        }
        _ => read.list_query(table).map_err(|e| Some(e.message))?,
    };
    let shards = platform.shards();
    let shard = platform.shard_cache().shard_of(&shards, room).into_owned();
    let d1 = platform.replica(&shard).map_err(|e| Some(e.to_string()))?;
    // One round trip, one snapshot: the room's state and the rows.
    let stmts = [room_state(room), query.for_replica(room)];
    let mut start = match token.and_then(|t| t.bookmark_on(&shard)) {
        Some(bookmark) => SessionStart::After(bookmark),
        None => SessionStart::Any,
    };
    let (answer, state) = loop {
        let answer = match d1.session_batch(start, &stmts).await {
            Ok(answer) => answer,
            Err(e) => return Err(Some(e.of_replica(&d1).await.to_string())),
        };
        let state = answer
            .rows
            .first()
            .and_then(|rows| RoomState::from_rows(rows));
        match params::replica_check(state.as_ref(), need) {
            Ok(()) => break (answer, state),
            Err(params::GateRefusal::Behind { .. })
                if start != SessionStart::Primary && answer.served_by_primary != Some(true) =>
            {
                start = SessionStart::Primary;
            }
            Err(refusal) => return Err(Some(refusal.reason(room))),
        }
    };
    let source = if start == SessionStart::Primary {
        "replica-primary"
    } else {
        "replica"
    };
    let watermark = state.map_or(0, |s| s.watermark);
    let token = api::ReadToken::new(watermark.max(need), &shard, answer.bookmark.as_deref());
    let rows = answer.rows.into_iter().nth(1).unwrap_or_default();
    let reply = match op {
        TableOp::Get(key) => {
            if let Some(row) = rows.into_iter().next() {
                Reply::json(
                    200,
                    serde_json::json!({
                        "row": table.row_to_json(row).map_err(|e| Some(e.to_string()))?,
                        "source": "replica",
                    }),
                )
            } else {
                let e = ApiError::not_found(format!(
                    "no `{}` row with key {} (replica)",
                    table.name(),
                    table.sql().key_json(key)
                ));
                Reply::json(404, e.body())
            }
        }
        _ => Reply::json(
            200,
            serde_json::json!({
                "rows": rows_json(table, rows).map_err(|e| Some(e.message))?,
                "source": "replica",
            }),
        ),
    };
    Ok(ReplicaAnswer {
        reply,
        shard,
        source,
        token,
    })
}

/// Every shard of the replica, or 503 when one is not bound.
fn all_shards<G: GatewayPlatform>(platform: &G) -> Result<Vec<G::Replica>, ApiError> {
    platform
        .shards()
        .names()
        .iter()
        .map(|name| platform.replica(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::new(503, "replica_unavailable", e.to_string()))
}

/// `GET /_across/{table}?{field}=&after=&limit=`: a page of `table`'s rows across the rooms the
/// policy lets the caller see ([`crate::across`]), from every shard at once. Only a policy that
/// can name those rooms as prefixes ([`Policy::visible_rooms`]) serves it: a query across rooms
/// never reads a row of a room the caller may not see.
async fn across<G: GatewayPlatform>(
    platform: &G,
    policy: &(impl Policy + ?Sized),
    req: &HttpRequest,
    table: &'static TableEntry,
) -> Result<HttpResponse, ApiError> {
    // Who asks comes before what is asked: without credentials, a malformed query is a 401 too.
    let parts = req.parts();
    let scope = policy.visible_rooms(&parts, platform.vars()).await;
    if let api::rooms::RoomScope::Prefixes(p) = &scope {
        if p.is_empty() {
            api::rooms::refuse_or_empty(policy, &parts, platform.vars()).await?;
        }
    }
    let mut q = params::across(table, &params::query_pairs(&req.query)?)?;
    match scope {
        api::rooms::RoomScope::All => {}
        api::rooms::RoomScope::Prefixes(p) if p.is_empty() => {
            return Ok(HttpResponse::json(
                200,
                &serde_json::json!({ "rows": [], "next": null, "source": "replica" }),
            ));
        }
        api::rooms::RoomScope::Prefixes(p) => q = q.rooms_with_prefixes(p),
        api::rooms::RoomScope::EachRoom => {
            return Err(ApiError::new(
                403,
                "forbidden",
                "queries across rooms need a policy that names the rooms a caller may see \
                 (Policy::visible_rooms); this one decides room by room",
            ))
        }
    }
    let shards = all_shards(platform)?;
    let (rows, more) = match crate::across::rows(&shards, table.def, table.sql(), &q).await {
        Ok(page) => page,
        Err(mut e) => {
            // Which shard failed is not said: a shard without nanotype's tables is the one
            // failure with a fix to name.
            for shard in &shards {
                e = e.of_replica(shard).await;
                if matches!(e, crate::Error::ReplicaNotMigrated) {
                    break;
                }
            }
            return Err(ApiError::from(e));
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut next = None;
    for (room, row) in rows {
        let key = table.sql().key_json(&table.sql().row_key(&row));
        next = Some(serde_json::json!([room, key]));
        let row = table.row_to_json(row).map_err(ApiError::from)?;
        out.push(serde_json::json!({ "room": room, "row": row }));
    }
    let next = if more {
        next.map(|n| n.to_string())
    } else {
        None
    };
    Ok(HttpResponse::json(
        200,
        &serde_json::json!({ "rows": out, "next": next, "source": "replica" }),
    ))
}

/// `GET /_nanotype/openapi.json`: the description of the schema's routes, to any caller the
/// policy does not refuse outright (a 401); a 403 for every room still reads it, as it holds no
/// data.
async fn openapi<S: Schema, G: GatewayPlatform>(
    platform: &G,
    policy: &(impl Policy + ?Sized),
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let access = Access {
        room: "",
        table: None,
        operation: api::Operation::Describe,
    };
    match policy
        .authorize(&req.parts(), platform.vars(), &access)
        .await
        .into_result()
    {
        Err(e) if e.status == 401 => Err(e),
        _ => Ok(HttpResponse::json(
            200,
            &api::openapi::document(S::TABLES, platform.shards().names()),
        )),
    }
}

/// `GET /_rooms?after=&limit=`: a page of the rooms D1 knows that the policy lets the caller
/// see, with their replication state and the cursor of the next page ([`api::rooms`]).
async fn rooms<G: GatewayPlatform>(
    platform: &G,
    policy: &(impl Policy + ?Sized),
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (mut after, mut limit) = (None, api::rooms::DEFAULT_LIMIT);
    for (k, v) in params::query_pairs(&req.query)? {
        match k.as_str() {
            "after" => after = Some(v),
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=api::rooms::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`limit` must be 1 to {}",
                            api::rooms::MAX_LIMIT
                        ))
                    })?;
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}` (after, limit)"
                )))
            }
        }
    }
    let shards = all_shards(platform)?;
    let page = api::rooms::list(
        &shards,
        policy,
        &req.parts(),
        platform.vars(),
        after.as_deref(),
        limit,
    )
    .await?;
    Ok(HttpResponse::json(200, &page.to_json()))
}
