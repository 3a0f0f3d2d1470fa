//! The Worker: replica-consistency listings straight from D1 (the point of the design: the
//! Durable Object keeps the writes, D1 takes the reads), everything else to the room's Durable
//! Object, addressed by the room's name.

use nanotype::read::ReplicaReads;
use nanotype::worker::D1Replica;
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Result};

use crate::api::{self, ApiError, ListParams, ReadMode, Route};
use crate::http;
use crate::schema::Task;

/// Header the Worker sets when it sends a replica read to the Durable Object instead, saying why.
pub const FALLBACK_HEADER: &str = "x-nanotype-fallback";

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let body = match http::read_body(&mut req).await {
        Ok(b) => b,
        Err(e) => return http::error(&e),
    };
    match serve(&req, &env, body).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::error(&e),
    }
}

async fn serve(req: &Request, env: &Env, body: Vec<u8>) -> std::result::Result<Response, ApiError> {
    let url = req.url().map_err(http::from_worker)?;
    let route = api::route(req.method().as_ref(), url.path(), http::bench_routes(env))?;
    let room = match &route {
        Route::Health => {
            return http::json(200, &serde_json::json!({ "ok": true })).map_err(http::from_worker)
        }
        r => r.room().unwrap_or_default().to_owned(),
    };
    let mut fallback = None;
    if let Route::ListTasks { .. } = route {
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let params = ListParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        match replica_list(env, &room, &params).await {
            Ok(resp) => return Ok(resp),
            // Strong reads and stale or failing replicas: the room's primary answers.
            Err(why) => fallback = why,
        }
    }
    forward(req, env, &room, body, fallback.as_deref()).await
}

/// A listing from D1, or `Err(reason)` when the Durable Object must answer instead
/// (`Err(None)`: strong consistency was asked for).
async fn replica_list(
    env: &Env,
    room: &str,
    params: &ListParams,
) -> std::result::Result<Response, Option<String>> {
    let replica = match params.mode {
        ReadMode::Strong => return Err(None),
        _ => D1Replica::from_env(env, "DB").map_err(|e| Some(e.to_string()))?,
    };
    if let ReadMode::ReadYourWrites(seq) = params.mode {
        let watermark = nanotype::sync::replica_watermark(&replica, room)
            .await
            .map_err(|e| Some(e.to_string()))?;
        if watermark < seq {
            return Err(Some(format!("replica watermark {watermark} < seq {seq}")));
        }
    }
    let reads = ReplicaReads(replica);
    let page = params.page();
    let tasks = match &params.status {
        Some(s) => Task::room_find_by_status(&reads, room, s, &page).await,
        None => Task::room_list(&reads, room, &page).await,
    }
    .map_err(|e| Some(e.to_string()))?;
    http::json(
        200,
        &serde_json::json!({ "room": room, "tasks": tasks, "source": "replica", "servedBy": "worker" }),
    )
    .map_err(|e| Some(e.to_string()))
}

/// Send the request to the room's Durable Object (by name), telling it its room.
async fn forward(
    req: &Request,
    env: &Env,
    room: &str,
    body: Vec<u8>,
    fallback: Option<&str>,
) -> std::result::Result<Response, ApiError> {
    let unavailable = |e: worker::Error| ApiError::new(503, "room_unavailable", e.to_string());
    let url = req.url().map_err(http::from_worker)?;
    let headers = Headers::new();
    let _ = headers.set(api::ROOM_HEADER, room);
    let _ = headers.set("content-type", "application/json");
    if let Some(why) = fallback {
        // Header values must be printable ASCII.
        let why: String = why
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(200)
            .collect();
        let _ = headers.set(FALLBACK_HEADER, &why);
    }
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers);
    if !matches!(req.method(), Method::Get | Method::Head) {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let inner = Request::new_with_init(url.as_str(), &init).map_err(http::from_worker)?;
    let stub = env
        .durable_object("ROOM")
        .and_then(|ns| ns.get_by_name(room))
        .map_err(unavailable)?;
    stub.fetch_with_request(inner).await.map_err(unavailable)
}
