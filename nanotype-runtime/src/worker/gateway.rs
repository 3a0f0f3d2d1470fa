//! The Worker's side: one call, [`serve`], routes every request of a [`Schema`]'s API.
//!
//! Every room route is first put to the app's [`Policy`]. Replica reads (the default consistency)
//! are answered here from D1 in one round trip: a batch (one transaction) that reads the room's
//! replication state and the rows together, so the rows are served only when that state says
//! they are whole (the room is known, not being rebuilt, and has the caller's seq for
//! read-your-writes). Otherwise, and for strong reads and every write, the request goes to the
//! room's Durable Object, with the reason for a fallback in `x-nanotype-fallback`.

use worker::{Env, Method, Request, RequestInit, Response, Result};

use super::http::{self, EnvVars};
use super::room::{D1_BINDING, ROOM_BINDING};
use super::D1Replica;
use crate::api::params::{self, ReadParams};
use crate::api::room::{rows_json, Reply};
use crate::api::{self, Access, ApiError, Policy, Route, TableOp};
use crate::read::{get_query_of, Consistency, RoomQuery};
use crate::registry::{Schema, TableEntry};
use crate::replica::Replica;
use crate::sync::statements::room_state;
use crate::sync::RoomState;

/// Serve `req` for the app's schema `S` under `policy`: the Worker's whole `fetch`.
///
/// ```ignore
/// #[worker::event(fetch)]
/// async fn fetch(req: worker::Request, env: worker::Env, _: worker::Context) -> worker::Result<worker::Response> {
///     nanotype::worker::serve::<App>(req, &env, &Tokens).await
/// }
/// ```
pub async fn serve<S: Schema>(
    mut req: Request,
    env: &Env,
    policy: &impl Policy,
) -> Result<Response> {
    let body = match http::read_body(&mut req).await {
        Ok(b) => b,
        Err(e) => return http::error(&e),
    };
    match route_and_serve::<S>(&req, env, policy, body).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::error(&e),
    }
}

async fn route_and_serve<S: Schema>(
    req: &Request,
    env: &Env,
    policy: &impl Policy,
    body: Vec<u8>,
) -> std::result::Result<Response, ApiError> {
    let url = req.url().map_err(http::internal)?;
    let route = api::route::route::<S>(req.method().as_ref(), url.path())?;
    match &route {
        Route::Asset(asset) => return http::asset(asset).map_err(http::internal),
        Route::Rooms => return rooms(req, env, policy, url.path()).await,
        _ => {}
    }
    let Some(room) = route.room().map(str::to_owned) else {
        return http::json(200, &serde_json::json!({ "ok": true })).map_err(http::internal);
    };
    let access = Access {
        room: &room,
        table: route.table().map(|t| t.name()),
        operation: route.operation(),
    };
    policy
        .authorize(&http::parts(req, url.path()), &EnvVars(env), &access)
        .into_result()?;
    if let Route::Feed { .. } = route {
        if !http::is_websocket_upgrade(req) {
            return Err(ApiError::new(
                426,
                "upgrade_required",
                "the feed is a WebSocket: send `Upgrade: websocket`",
            ));
        }
        return forward_upgrade(req, env, &room).await;
    }
    let content_type = req.headers().get("content-type").ok().flatten();
    api::body::check_content_type(&route, content_type.as_deref(), body.len())?;

    let mut fallback = None;
    if let Route::Table { table, op, .. } = &route {
        let query = params::query_pairs(url.query().unwrap_or(""))?;
        let seq = req.headers().get(api::SEQ_HEADER).ok().flatten();
        let read = match op {
            TableOp::List => Some(ReadParams::parse(table, &query, seq.as_deref())?),
            TableOp::Get(_) => Some(get_params(&query, seq.as_deref())?),
            _ => None,
        };
        if let Some(read) = read {
            match replica_read(env, &room, table, op, &read).await {
                Ok(reply) => return http::reply(&reply, "replica", None).map_err(http::internal),
                Err(why) => fallback = why,
            }
        }
    }
    let rows_asked = matches!(route, Route::Sync { .. })
        && url.query_pairs().any(|(k, v)| k == "rows" && v == "1");
    let resp = forward(req, env, &room, body, fallback.as_deref()).await?;
    if rows_asked && resp.status_code() == 200 {
        return with_replica_rows::<S>(resp, env, &room).await;
    }
    Ok(resp)
}

/// `GET /rooms/{room}/_sync?rows=1`: the room's row counts (from its Durable Object) next to
/// D1's for the same room, one D1 batch.
async fn with_replica_rows<S: Schema>(
    mut resp: Response,
    env: &Env,
    room: &str,
) -> std::result::Result<Response, ApiError> {
    let mut body: serde_json::Value = resp.json().await.map_err(http::internal)?;
    let defs = S::defs();
    let counts: Vec<crate::replica::Statement> = defs
        .iter()
        .map(|d| {
            crate::replica::Statement::new(
                format!("SELECT COUNT(*) FROM \"{}\" WHERE \"room_id\" = ?1", d.name),
                vec![crate::Value::Text(room.to_owned())],
            )
        })
        .collect();
    let replica = match D1Replica::from_env(env, D1_BINDING) {
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
    http::json(200, &body).map_err(http::internal)
}

/// A single-row read takes only `consistency` and `seq`.
fn get_params(query: &[(String, String)], seq: Option<&str>) -> Result<ReadParams, ApiError> {
    let mut mode = None;
    let mut seq = seq.map(|s| s.to_owned());
    for (k, v) in query {
        match k.as_str() {
            "consistency" => mode = Some(v.as_str()),
            "seq" => seq = Some(v.clone()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}`"
                )))
            }
        }
    }
    let seq = match seq {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::bad_request("`seq` must be a non-negative integer"))?,
        ),
        None => None,
    };
    Ok(ReadParams {
        consistency: params::consistency(mode, seq)?,
        page: crate::read::Page::first(1),
        filter: None,
    })
}

/// The read answered from D1, or `Err(reason)` when the room's Durable Object must answer it
/// (`Err(None)`: strong consistency was asked for).
async fn replica_read(
    env: &Env,
    room: &str,
    table: &'static TableEntry,
    op: &TableOp,
    read: &ReadParams,
) -> std::result::Result<Reply, Option<String>> {
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
    let d1 = D1Replica::from_env(env, D1_BINDING).map_err(|e| Some(e.to_string()))?;
    // One round trip, one snapshot: the room's state and the rows.
    let results = d1
        .batch(&[room_state(room), query.for_replica(room)])
        .await
        .map_err(|e| Some(e.to_string()))?;
    let state = results.first().and_then(|rows| RoomState::from_rows(rows));
    params::replica_gate(room, state.as_ref(), need).map_err(Some)?;
    let rows = results.into_iter().nth(1).unwrap_or_default();
    let body = match op {
        TableOp::Get(key) => match rows.into_iter().next() {
            Some(row) => serde_json::json!({
                "row": table.row_to_json(row).map_err(|e| Some(e.to_string()))?,
                "source": "replica",
            }),
            None => {
                let e = ApiError::not_found(format!(
                    "no `{}` row with key {} (replica)",
                    table.name(),
                    table.sql().key_json(key)
                ));
                return Ok(Reply::json(404, e.body()));
            }
        },
        _ => serde_json::json!({
            "rows": rows_json(table, rows).map_err(|e| Some(e.message))?,
            "source": "replica",
        }),
    };
    Ok(Reply::json(200, body))
}

/// Send the request to the room's Durable Object (by name), telling it its room.
async fn forward(
    req: &Request,
    env: &Env,
    room: &str,
    body: Vec<u8>,
    fallback: Option<&str>,
) -> std::result::Result<Response, ApiError> {
    let url = req.url().map_err(http::internal)?;
    let headers = worker::Headers::new();
    let _ = headers.set(api::ROOM_HEADER, room);
    let _ = headers.set("content-type", "application/json");
    for name in [api::SEQ_HEADER, api::idempotency::HEADER] {
        if let Ok(Some(value)) = req.headers().get(name) {
            let _ = headers.set(name, &value);
        }
    }
    if let Some(why) = fallback {
        let _ = headers.set(api::FALLBACK_HEADER, &http::header_text(why));
    }
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers);
    if !matches!(req.method(), Method::Get | Method::Head) {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let inner = Request::new_with_init(url.as_str(), &init).map_err(http::internal)?;
    fetch_room(env, room, inner).await
}

/// `inner` sent to the Durable Object of `room` (by name).
async fn fetch_room(
    env: &Env,
    room: &str,
    inner: Request,
) -> std::result::Result<Response, ApiError> {
    let unavailable = |e: worker::Error| ApiError::new(503, "room_unavailable", e.to_string());
    let stub = env
        .durable_object(ROOM_BINDING)
        .and_then(|ns| ns.get_by_name(room))
        .map_err(unavailable)?;
    stub.fetch_with_request(inner).await.map_err(unavailable)
}

/// A feed subscription, passed to the room's Durable Object with its upgrade headers; the
/// object's answer (the WebSocket) goes back as it is.
async fn forward_upgrade(
    req: &Request,
    env: &Env,
    room: &str,
) -> std::result::Result<Response, ApiError> {
    let url = req.url().map_err(http::internal)?;
    let headers = worker::Headers::new();
    for (k, v) in req.headers().entries() {
        let _ = headers.set(&k, &v);
    }
    let _ = headers.set(api::ROOM_HEADER, room);
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let inner = Request::new_with_init(url.as_str(), &init).map_err(http::internal)?;
    fetch_room(env, room, inner).await
}

/// `GET /_rooms?after=&limit=`: a page of the rooms D1 knows that the policy lets the caller
/// see, with their replication state and the cursor of the next page ([`api::rooms`]).
async fn rooms(
    req: &Request,
    env: &Env,
    policy: &impl Policy,
    path: &str,
) -> std::result::Result<Response, ApiError> {
    let parts = http::parts(req, path);
    let vars = EnvVars(env);
    let url = req.url().map_err(http::internal)?;
    let (mut after, mut limit) = (None, api::rooms::DEFAULT_LIMIT);
    for (k, v) in api::params::query_pairs(url.query().unwrap_or(""))? {
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
                    })?
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}` (after, limit)"
                )))
            }
        }
    }
    let d1 = D1Replica::from_env(env, D1_BINDING)
        .map_err(|e| ApiError::new(503, "replica_unavailable", e.to_string()))?;
    let page = api::rooms::list(&d1, policy, &parts, &vars, after.as_deref(), limit).await?;
    http::json(200, &page.to_json()).map_err(http::internal)
}
