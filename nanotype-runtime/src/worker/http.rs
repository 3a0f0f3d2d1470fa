//! JSON responses and request plumbing shared by the gateway and the room Durable Object.

use worker::{Env, Request, Response, Result};

use crate::api::{self, room::Reply, ApiError, RequestParts, Vars};

/// A JSON response with `status`.
pub fn json(status: u16, body: &serde_json::Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// The error's JSON response.
pub fn error(e: &ApiError) -> Result<Response> {
    let resp = json(e.status, &e.body())?;
    if let Some(allow) = e.allow {
        resp.headers().set("allow", allow)?;
    }
    Ok(resp)
}

/// A route's reply: its body and status, the seq header after a write, where it was answered,
/// and why it fell back (header values are printable ASCII).
pub fn reply(reply: &Reply, source: &str, fallback: Option<&str>) -> Result<Response> {
    let resp = json(reply.status, &reply.body)?;
    let headers = resp.headers();
    if let Some(seq) = reply.seq {
        headers.set(api::SEQ_HEADER, &seq.to_string())?;
    }
    headers.set(api::SOURCE_HEADER, source)?;
    if reply.replayed {
        headers.set(api::idempotency::REPLAYED_HEADER, "true")?;
    }
    if let Some(why) = fallback {
        headers.set(api::FALLBACK_HEADER, &header_text(why))?;
    }
    Ok(resp)
}

/// `text` as a header value: printable ASCII, at most 200 characters.
pub fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// The whole body. Always read, even when the route takes none: `wrangler dev` drops requests
/// whose bodies are left unread.
pub async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, ApiError> {
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
    api::body::check_body_size(body.len())?;
    Ok(body)
}

/// A platform error as a 500.
pub fn internal(e: worker::Error) -> ApiError {
    ApiError::internal(e.to_string())
}

/// What a policy sees of a request.
pub fn parts(req: &Request, path: &str) -> RequestParts {
    let mut headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    // A browser's WebSocket cannot send headers: its token comes as the subprotocol
    // `bearer.<token>` (next to `nanotype`), and reaches the policy as a bearer token. Only on
    // the feed's upgrade: on any other request that header is no credential.
    let token = feed_subprotocol_token(req, path, &headers);
    if let Some(token) = token {
        if !headers.iter().any(|(k, _)| k == "authorization") {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
    }
    RequestParts {
        method: req.method().to_string(),
        path: path.to_owned(),
        headers,
    }
}

/// Whether `req` asks for a WebSocket.
pub fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers()
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The Worker's variables and secrets, for a policy.
pub struct EnvVars<'a>(pub &'a Env);

impl Vars for EnvVars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .secret(name)
            .ok()
            .map(|s| s.to_string())
            .or_else(|| self.0.var(name).ok().map(|v| v.to_string()))
    }
}

/// A static file of the runtime ([`crate::api::assets`]).
pub fn asset(asset: &crate::api::assets::Asset) -> Result<Response> {
    let mut resp = Response::ok(asset.body)?;
    let _ = resp.headers_mut().set("content-type", asset.content_type);
    let _ = resp.headers_mut().set("cache-control", "no-cache");
    Ok(resp)
}

/// The token a feed client offers as the subprotocol `bearer.<token>`, on the feed's WebSocket
/// upgrade only.
fn feed_subprotocol_token(
    req: &Request,
    path: &str,
    headers: &[(String, String)],
) -> Option<String> {
    if !is_websocket_upgrade(req) || !path.trim_end_matches('/').ends_with("/_feed") {
        return None;
    }
    headers
        .iter()
        .find(|(k, _)| k == "sec-websocket-protocol")
        .and_then(|(_, v)| v.split(',').find_map(|p| p.trim().strip_prefix("bearer.")))
        .map(str::to_owned)
}
