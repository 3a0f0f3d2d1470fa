//! JSON responses and errors for the Worker and the Durable Object.

use serde::Serialize;
use worker::{Env, Request, Response, Result};

use crate::api::{self, ApiError, BenchRoutes};

pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

pub fn error(e: &ApiError) -> Result<Response> {
    json(e.status, &e.json())
}

/// The whole body. Always read, even when the route takes none: `wrangler dev` drops requests
/// whose bodies are left unread.
pub async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, ApiError> {
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
    api::check_body_size(body.len())?;
    Ok(body)
}

/// Whether this Worker serves the bench routes: only when its config sets the var to `"1"`.
pub fn bench_routes(env: &Env) -> BenchRoutes {
    let value = env.var(BenchRoutes::VAR).ok().map(|v| v.to_string());
    BenchRoutes::from_var(value.as_deref())
}

/// The HTTP face of a runtime error.
pub fn from_nanotype(e: nanotype::Error) -> ApiError {
    use nanotype::Error as E;
    match &e {
        E::NotFound { .. } => ApiError::not_found(e.to_string()),
        E::InvalidRoom(_) => ApiError::new(400, "invalid_name", e.to_string()),
        E::Rejected(_) => ApiError::new(400, "rejected", e.to_string()),
        E::IntegerOutOfRange { .. } | E::NaN { .. } => ApiError::bad_request(e.to_string()),
        E::WrongRoom { .. } => ApiError::new(409, "wrong_room", e.to_string()),
        E::Replica(_) => ApiError::new(503, "replica_unavailable", e.to_string()),
        _ => ApiError::new(500, "internal", e.to_string()),
    }
}

pub fn from_worker(e: worker::Error) -> ApiError {
    ApiError::new(500, "internal", e.to_string())
}
