//! Cloudflare's request and response types to and from the runtime's ([`crate::host::http`]).

use worker::{Env, Request, Response, Result};

use crate::api::{self, ApiError, Vars};
use crate::host::{HttpRequest, HttpResponse};

/// The whole request as the runtime's. The body is always read, even when the route takes
/// none: `wrangler dev` drops requests whose bodies are left unread.
pub async fn request(req: &mut Request) -> std::result::Result<HttpRequest, ApiError> {
    let url = req.url().map_err(internal)?;
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
    api::body::check_body_size(body.len())?;
    Ok(HttpRequest {
        // The method as sent: workers-rs' `Method` reads any it does not know (QUERY,
        // PROPFIND, …) as GET, which would serve them as reads.
        method: req.inner().method(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or("").to_owned(),
        headers: req
            .headers()
            .entries()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body,
    })
}

/// The runtime's request as one for a Durable Object (which reads only its path and query).
pub fn to_worker(req: &HttpRequest) -> Result<Request> {
    let headers = worker::Headers::new();
    for (k, v) in &req.headers {
        headers.set(k, v)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::from(req.method.clone()))
        .with_headers(headers);
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        init.with_body(Some(js_sys::Uint8Array::from(req.body.as_slice()).into()));
    }
    let query = if req.query.is_empty() {
        String::new()
    } else {
        format!("?{}", req.query)
    };
    Request::new_with_init(&format!("https://room.nanotype{}{query}", req.path), &init)
}

/// The runtime's response as the platform's.
pub fn response(resp: &HttpResponse) -> Result<Response> {
    let mut out = Response::from_bytes(resp.body.clone())?.with_status(resp.status);
    for (k, v) in &resp.headers {
        out.headers_mut().set(k, v)?;
    }
    Ok(out)
}

/// A Durable Object's response as the runtime's.
pub async fn from_worker(mut resp: Response) -> std::result::Result<HttpResponse, ApiError> {
    let body = resp.bytes().await.map_err(internal)?;
    Ok(HttpResponse {
        status: resp.status_code(),
        headers: resp
            .headers()
            .entries()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body,
    })
}

/// The error's JSON response.
pub fn error(e: &ApiError) -> Result<Response> {
    response(&HttpResponse::error(e))
}

/// A platform error as a 500.
pub fn internal(e: worker::Error) -> ApiError {
    ApiError::internal(e.to_string())
}

/// The Worker's variables and secrets, for a policy and the room's settings.
#[derive(Clone)]
pub struct EnvVars(pub Env);

impl crate::api::app::EnvSource for EnvVars {
    fn as_any(&self) -> &dyn std::any::Any {
        &self.0
    }
}

/// The Worker's own environment behind app code's [`crate::api::Environment`]: its bindings (KV, R2,
/// Queues, service bindings, other Durable Objects).
///
/// ```ignore
/// async fn notify(room: RoomCtx, _req: AppRequest) -> Result<Reply, ApiError> {
///     let env = nanotype::worker::bindings(room.env()).expect("in a Worker");
///     let kv = env.kv("NOTES").map_err(|e| ApiError::internal(e.to_string()))?;
///     // ...
/// }
/// ```
pub fn bindings(env: &crate::api::Environment) -> Option<&Env> {
    env.platform::<Env>()
}

impl Vars for EnvVars {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .secret(name)
            .ok()
            .map(|s| s.to_string())
            .or_else(|| self.0.var(name).ok().map(|v| v.to_string()))
    }
}
