//! What app code gets: the [`RoomCtx`] it runs in (its database, clock, timers, environment and
//! caller), the request of a custom route ([`AppRequest`]), and the [`Router`] that maps a
//! method and a path pattern to an `async` handler.
//!
//! ```
//! use nanotype::api::{ApiError, AppRequest, Reply, RoomCtx, Router};
//!
//! async fn hello(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
//!     let who = room.caller().subject().unwrap_or("stranger").to_owned();
//!     Ok(Reply::json(200, nanotype::json!({ "room": room.name(), "hello": who, "id": req.param("id") })))
//! }
//!
//! let router = Router::new().get("hello/:id", hello);
//! assert!(router.kind("GET", &["hello".into(), "7".into()]).is_some());
//! assert!(router.kind("GET", &["bye".into()]).is_none());
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::error::ApiError;
use super::policy::Vars;
use super::room::{Reply, RouteKind};
use crate::clock::Scheduler;
use crate::primary::Database;

/// Who made a request, as the app's [`super::Policy`] decided: its subject and claims (a JWT's,
/// an identity provider's), or nobody in particular (a shared token). Routes, timers and
/// validation see it, so an app can stamp the author of a row or refuse a change to another's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    claims: serde_json::Map<String, Json>,
}

impl Caller {
    /// A caller known only as allowed.
    pub fn anonymous() -> Caller {
        Caller::default()
    }

    /// A caller with this subject (a user id).
    pub fn subject_of(subject: impl Into<String>) -> Caller {
        Caller {
            subject: Some(subject.into()),
            claims: serde_json::Map::new(),
        }
    }

    /// The same caller with these claims.
    pub fn with_claims(mut self, claims: serde_json::Map<String, Json>) -> Caller {
        self.claims = claims;
        self
    }

    /// The subject (a user id), when the policy knows one.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// A claim by name.
    pub fn claim(&self, name: &str) -> Option<&Json> {
        self.claims.get(name)
    }

    /// Every claim.
    pub fn claims(&self) -> &serde_json::Map<String, Json> {
        &self.claims
    }

    /// The caller as a header value (ASCII JSON), as the gateway tells the room.
    pub(crate) fn to_header(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        out
    }

    /// The caller the gateway named in the header (anonymous when none).
    pub(crate) fn from_header(value: Option<&str>) -> Caller {
        value
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }
}

/// The environment app code runs in: the Worker's variables and secrets, and the platform's own
/// bindings (`nanotype::worker::bindings` gives the `worker::Env`, for KV, R2, Queues, fetch).
#[derive(Clone)]
pub struct Environment(Rc<dyn EnvSource>);

/// What a platform puts behind an [`Environment`].
pub trait EnvSource: Vars {
    /// The platform's own environment, for [`Environment::platform`].
    fn as_any(&self) -> &dyn std::any::Any;
}

impl Environment {
    /// The environment over `source`.
    pub fn new(source: impl EnvSource + 'static) -> Environment {
        Environment(Rc::new(source))
    }

    /// A variable or secret.
    pub fn var(&self, name: &str) -> Option<String> {
        self.0.var(name)
    }

    /// The platform's environment as `T`, when it is one.
    pub fn platform<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

impl Vars for Environment {
    fn var(&self, name: &str) -> Option<String> {
        self.0.var(name)
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment")
    }
}

/// The room app code runs in: a handle (clones share it) that an `async` handler owns.
#[derive(Clone)]
pub struct RoomCtx {
    name: Rc<str>,
    db: Database,
    clock: Rc<dyn Scheduler>,
    env: Environment,
    caller: Rc<Caller>,
}

impl RoomCtx {
    pub(crate) fn new(
        name: &str,
        db: Database,
        clock: Rc<dyn Scheduler>,
        env: Environment,
        caller: Rc<Caller>,
    ) -> RoomCtx {
        RoomCtx {
            name: name.into(),
            db,
            clock,
            env,
            caller,
        }
    }

    /// The room's database: generated writes through it replicate like the gateway's.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room's clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The environment: variables, secrets, the platform's bindings.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// Who made the request (anonymous in a timer).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Run [`super::RoomHooks::timer`] with `name` in `delay_ms` (replacing a timer of that
    /// name). Timers are stored in the room's SQLite and share the room's one alarm with
    /// replication.
    pub fn set_timer(&self, name: &str, delay_ms: u64) -> Result<(), ApiError> {
        if name.starts_with(crate::schema::RESERVED_PREFIX) {
            return Err(ApiError::internal(format!(
                "timer names starting with `{}` are the runtime's",
                crate::schema::RESERVED_PREFIX
            )));
        }
        let at = self.now_ms().saturating_add(delay_ms as i64);
        Ok(crate::timers::set(&self.db, &*self.clock, name, at)?)
    }

    /// Cancel the timer `name`; whether it was set.
    pub fn cancel_timer(&self, name: &str) -> Result<bool, ApiError> {
        Ok(crate::timers::cancel(&self.db, name)?)
    }
}

/// A request to one of the app's custom routes, owned by its handler.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppRequest {
    method: String,
    path: Vec<String>,
    params: BTreeMap<String, String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl AppRequest {
    /// A request (the host makes them; tests may too).
    pub fn new(method: &str, path: &[&str]) -> AppRequest {
        AppRequest {
            method: method.to_owned(),
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            ..AppRequest::default()
        }
    }

    /// A request of the host's, with everything it carries.
    pub(crate) fn from_parts(
        method: &str,
        path: Vec<String>,
        query: Vec<(String, String)>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> AppRequest {
        AppRequest {
            method: method.to_owned(),
            path,
            params: BTreeMap::new(),
            query,
            headers,
            body,
        }
    }

    /// `GET`, `POST`, …
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path's segments after `/rooms/{room}/`.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// A `:name` segment of the route's pattern.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request header as the client sent it (every one but the runtime's own `x-nanotype-room`,
    /// `x-nanotype-caller` and `x-nanotype-fallback`, which only the gateway sets, and the
    /// hop-by-hop ones).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as `T` from JSON: a 400 `invalid_body` that says why when it is not.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::invalid_body(format!("invalid request body: {e}")))
    }
}

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>>>>;

type Handler = Rc<dyn Fn(RoomCtx, AppRequest) -> HandlerFuture>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Clone)]
struct Entry {
    method: String,
    pattern: Vec<Segment>,
    kind: RouteKind,
    handler: Handler,
}

/// The app's custom routes under `/rooms/{room}/`: a method and a path pattern (`stats`,
/// `tasks/:id/close`) to an `async` handler. Nothing else under a room is one: any other path
/// is a 404, and only a route that writes ([`RouteKind::Writes`]: every method but `GET` and
/// `HEAD`, unless declared with [`Router::route`]) brings a room never written into being.
#[derive(Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for e in &self.entries {
            list.entry(&format!("{} {:?}", e.method, e.pattern));
        }
        list.finish()
    }
}

impl Router {
    /// No routes.
    pub fn new() -> Router {
        Router::default()
    }

    /// `GET pattern`, a route that only reads.
    pub fn get<F, Fut>(self, pattern: &str, handler: F) -> Router
    where
        F: Fn(RoomCtx, AppRequest) -> Fut + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + 'static,
    {
        self.route("GET", pattern, RouteKind::Reads, handler)
    }

    /// `POST pattern`, a route that may write.
    pub fn post<F, Fut>(self, pattern: &str, handler: F) -> Router
    where
        F: Fn(RoomCtx, AppRequest) -> Fut + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + 'static,
    {
        self.route("POST", pattern, RouteKind::Writes, handler)
    }

    /// `PUT pattern`, a route that may write.
    pub fn put<F, Fut>(self, pattern: &str, handler: F) -> Router
    where
        F: Fn(RoomCtx, AppRequest) -> Fut + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + 'static,
    {
        self.route("PUT", pattern, RouteKind::Writes, handler)
    }

    /// `PATCH pattern`, a route that may write.
    pub fn patch<F, Fut>(self, pattern: &str, handler: F) -> Router
    where
        F: Fn(RoomCtx, AppRequest) -> Fut + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + 'static,
    {
        self.route("PATCH", pattern, RouteKind::Writes, handler)
    }

    /// `DELETE pattern`, a route that may write.
    pub fn delete<F, Fut>(self, pattern: &str, handler: F) -> Router
    where
        F: Fn(RoomCtx, AppRequest) -> Fut + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + 'static,
    {
        self.route("DELETE", pattern, RouteKind::Writes, handler)
    }

    /// `method pattern`, declared as reading or writing. Segments of the pattern are separated
    /// by `/`; a segment `:name` matches any one segment, read with [`AppRequest::param`]. The
    /// method is one a Worker can carry to a room (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS,
    /// CONNECT, TRACE, REPORT); a request with any other is a 405 before it reaches the room.
    pub fn route<F, Fut>(
        mut self,
        method: &str,
        pattern: &str,
        kind: RouteKind,
        handler: F,
    ) -> Router
    where
        F: Fn(RoomCtx, AppRequest) -> Fut + 'static,
        Fut: Future<Output = Result<Reply, ApiError>> + 'static,
    {
        let pattern = pattern
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        self.entries.push(Entry {
            method: method.to_ascii_uppercase(),
            pattern,
            kind,
            handler: Rc::new(move |room, req| Box::pin(handler(room, req))),
        });
        self
    }

    /// Whether `method path` is one of the routes, and whether it writes.
    pub fn kind(&self, method: &str, path: &[String]) -> Option<RouteKind> {
        self.find(method, path).map(|(e, _)| e.kind)
    }

    /// The methods a path takes, when it matches a pattern (for the 404's message).
    pub(crate) fn methods_of(&self, path: &[String]) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| matches(&e.pattern, path).is_some())
            .map(|e| e.method.as_str())
            .collect()
    }

    fn find(&self, method: &str, path: &[String]) -> Option<(&Entry, BTreeMap<String, String>)> {
        self.entries
            .iter()
            .filter(|e| e.method == method || (method == "HEAD" && e.method == "GET"))
            .find_map(|e| matches(&e.pattern, path).map(|params| (e, params)))
    }

    /// Run the route for `req` in `room`; `None` when no route matches.
    pub(crate) fn call(&self, room: RoomCtx, mut req: AppRequest) -> Option<HandlerFuture> {
        let (entry, params) = self.find(&req.method, &req.path)?;
        req.params = params;
        Some((entry.handler)(room, req))
    }
}

fn matches(pattern: &[Segment], path: &[String]) -> Option<BTreeMap<String, String>> {
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (seg, part) in pattern.iter().zip(path) {
        match seg {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                params.insert(name.clone(), part.clone());
            }
        }
    }
    Some(params)
}
