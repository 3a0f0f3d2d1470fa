//! A request and a response in plain Rust: what the gateway and a room host read and answer,
//! converted to and from the platform's own types at its edge (`nanotype::worker`, the native
//! test app).

use serde_json::Value as Json;

use crate::api::{self, ApiError, Reply, RequestParts};

/// An HTTP request as the runtime sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL's path (`/rooms/r1/tasks`).
    pub path: String,
    /// The URL's query string, without `?`.
    pub query: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and no body. `target` is a path with an optional `?query`.
    pub fn new(method: &str, target: &str) -> HttpRequest {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            ..HttpRequest::default()
        }
    }

    /// The same request with a header added (its name lower-cased).
    pub fn with_header(mut self, name: &str, value: &str) -> HttpRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The same request with a body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpRequest {
        self.body = body.into();
        self
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request asks for a WebSocket.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// What a policy sees of the request. A browser's WebSocket cannot send headers: on the
    /// feed's upgrade only, its token comes as the subprotocol `bearer.<token>` (next to
    /// `nanotype`) and reaches the policy as a bearer token; on any other request that header
    /// is no credential.
    pub fn parts(&self) -> RequestParts {
        let mut headers = self.headers.clone();
        if let Some(token) = self.feed_subprotocol_token() {
            if !headers.iter().any(|(k, _)| k == "authorization") {
                headers.push(("authorization".into(), format!("Bearer {token}")));
            }
        }
        RequestParts {
            method: self.method.clone(),
            path: self.path.clone(),
            headers,
        }
    }

    fn feed_subprotocol_token(&self) -> Option<String> {
        if !self.is_websocket_upgrade() || !self.path.trim_end_matches('/').ends_with("/_feed") {
            return None;
        }
        self.header("sec-websocket-protocol")
            .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("bearer.")))
            .map(str::to_owned)
    }

    /// The subprotocol a feed's answer names: one of those the client offers, or browsers and
    /// `ws` drop the connection: `nanotype` when offered, else the client's own `bearer.<token>`
    /// (a client that offers only that, as a hand-written one may).
    pub fn feed_protocol(&self) -> Option<String> {
        let offered: Vec<&str> = self
            .header("sec-websocket-protocol")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        offered
            .iter()
            .find(|p| **p == "nanotype")
            .or_else(|| offered.iter().find(|p| p.starts_with("bearer.")))
            .map(|p| (*p).to_owned())
    }
}

/// An HTTP response as the runtime answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status.
    pub status: u16,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON response.
    pub fn json(status: u16, body: &Json) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// The error's response: `{"error": {"code", "message"}}`, with `Allow` on a 405.
    pub fn error(e: &ApiError) -> HttpResponse {
        let mut resp = HttpResponse::json(e.status, &e.body());
        if let Some(allow) = e.allow {
            resp.set_header("allow", allow);
        }
        resp
    }

    /// A route's reply: its body and status, the seq header after a write, where it was
    /// answered, and why it fell back (header values are printable ASCII).
    pub fn reply(reply: &Reply, source: &str, fallback: Option<&str>) -> HttpResponse {
        let mut resp = HttpResponse::json(reply.status, &reply.body);
        if let Some(seq) = reply.seq {
            resp.set_header(api::SEQ_HEADER, &seq.to_string());
        }
        resp.set_header(api::SOURCE_HEADER, source);
        if reply.replayed {
            resp.set_header(api::idempotency::REPLAYED_HEADER, "true");
        }
        if let Some(token) = &reply.token {
            resp.set_header(api::TOKEN_HEADER, token);
        }
        if let Some(why) = fallback {
            resp.set_header(api::FALLBACK_HEADER, &header_text(why));
        }
        resp
    }

    /// A static file of the runtime ([`crate::api::assets`]).
    pub fn asset(asset: &api::assets::Asset) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), asset.content_type.into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            body: asset.body.as_bytes().to_vec(),
        }
    }

    /// Set a header, replacing one of that name.
    pub fn set_header(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(k, _)| *k != name);
        self.headers.push((name, value.to_owned()));
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is not).
    pub fn json_body(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or(Json::Null)
    }
}

/// `text` as a header value: printable ASCII, at most 200 characters.
#[doc(hidden)]
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
