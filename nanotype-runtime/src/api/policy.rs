//! Authorization: the app's [`Policy`] decides every request before any data is read.
//!
//! The gateway will not serve without one: `nanotype::worker::serve` takes the policy as an
//! argument and there is no allow-everything default.
//!
//! ```
//! use nanotype::api::{Access, Decision, Policy, RequestParts, Vars};
//!
//! /// Tokens from a secret, `TOKENS = "token=room-prefix,..."` (`*`: every room).
//! struct Tokens;
//! impl Policy for Tokens {
//!     async fn authorize(&self, req: &RequestParts, env: &dyn Vars, access: &Access<'_>) -> Decision {
//!         let Some(token) = req.bearer_token() else { return Decision::unauthorized("no token") };
//!         let tokens = env.var("TOKENS").unwrap_or_default();
//!         match tokens.split(',').filter_map(|e| e.split_once('=')).find(|(t, _)| *t == token) {
//!             Some((_, rooms)) if rooms == "*" || access.room.starts_with(rooms) => Decision::Allow,
//!             Some(_) => Decision::forbidden("not your room"),
//!             None => Decision::unauthorized("unknown token"),
//!         }
//!     }
//! }
//! ```

use super::error::ApiError;
use super::route::Operation;

/// What a request wants to do: the room, the table (table routes) and the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access<'a> {
    /// The room addressed.
    pub room: &'a str,
    /// The table, for table routes.
    pub table: Option<&'a str>,
    /// What the request does.
    pub operation: Operation,
}

/// A policy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; the caller is nobody in particular (a shared token).
    Allow,
    /// Serve it, for this caller: routes, timers and validation see who it is.
    AllowAs(super::app::Caller),
    /// 401: no or unknown credentials (the message says what to send).
    Unauthorized(String),
    /// 403: these credentials may not do this.
    Forbidden(String),
}

impl Decision {
    /// [`Decision::Unauthorized`] with a message.
    pub fn unauthorized(message: impl Into<String>) -> Decision {
        Decision::Unauthorized(message.into())
    }

    /// [`Decision::Forbidden`] with a message.
    pub fn forbidden(message: impl Into<String>) -> Decision {
        Decision::Forbidden(message.into())
    }

    /// The caller when allowed, else the 401 or 403 error.
    pub fn into_result(self) -> Result<super::app::Caller, ApiError> {
        match self {
            Decision::Allow => Ok(super::app::Caller::anonymous()),
            Decision::AllowAs(caller) => Ok(caller),
            Decision::Unauthorized(m) => Err(ApiError::new(401, "unauthorized", m)),
            Decision::Forbidden(m) => Err(ApiError::new(403, "forbidden", m)),
        }
    }
}

/// The parts of a request a policy looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestParts {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL's path.
    pub path: String,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
}

impl RequestParts {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token of an `Authorization: Bearer <token>` header, if sent.
    pub fn bearer_token(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        let (scheme, token) = v.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// The Worker's variables and secrets (`env.var`/`env.secret`; `.dev.vars` locally).
pub trait Vars {
    /// The variable or secret `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Who may do what. Called by the gateway for every room route, before any data is read.
#[allow(async_fn_in_trait)]
pub trait Policy {
    /// Allow `access` (saying who the caller is, when the policy knows), or refuse it with 401
    /// or 403. It may `await` (a key set fetched and cached, a lookup).
    async fn authorize(&self, req: &RequestParts, env: &dyn Vars, access: &Access<'_>) -> Decision;

    /// Which rooms the caller of `req` may see, when the policy can say it before reading any
    /// (`GET /_rooms` then reads only those: a prefix is a range of the replica's key). The
    /// default puts each room to [`Policy::authorize`].
    async fn visible_rooms(&self, _req: &RequestParts, _env: &dyn Vars) -> super::rooms::RoomScope {
        super::rooms::RoomScope::EachRoom
    }
}

/// The policy most apps start with, chosen by the app: bearer tokens from a Worker secret, each
/// allowed the rooms whose names start with its prefix (`*`: every room), for every operation.
/// The secret reads `token=room-prefix,token=room-prefix,…`.
///
/// ```
/// use nanotype::api::{Access, Decision, Operation, Policy, RequestParts, RoomTokens};
/// let policy = RoomTokens::from_var("API_TOKENS");
/// let env = |name: &str| (name == "API_TOKENS").then(|| "t-a=alpha-".to_owned());
/// let req = RequestParts {
///     headers: vec![("authorization".into(), "Bearer t-a".into())],
///     ..RequestParts::default()
/// };
/// let access = |room| Access { room, table: None, operation: Operation::Read };
/// assert_eq!(pollster::block_on(policy.authorize(&req, &env, &access("alpha-1"))), Decision::Allow);
/// assert!(matches!(pollster::block_on(policy.authorize(&req, &env, &access("beta-1"))), Decision::Forbidden(_)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomTokens {
    var: &'static str,
}

impl RoomTokens {
    /// Tokens from the Worker variable or secret `var` (`.dev.vars` locally).
    pub const fn from_var(var: &'static str) -> RoomTokens {
        RoomTokens { var }
    }
}

impl Policy for RoomTokens {
    async fn authorize(&self, req: &RequestParts, env: &dyn Vars, access: &Access<'_>) -> Decision {
        let Some(token) = req.bearer_token() else {
            return Decision::unauthorized("send `Authorization: Bearer <token>`");
        };
        let tokens = env.var(self.var).unwrap_or_default();
        let first = prefixes(&tokens, token).next();
        match first {
            Some(rooms) if rooms == "*" || access.room.starts_with(rooms) => Decision::Allow,
            Some(_) => {
                Decision::forbidden(format!("this token may not use room `{}`", access.room))
            }
            None => Decision::unauthorized("unknown token"),
        }
    }

    /// A token's prefix (`*`: every room); an unknown token sees none (and is a 401).
    async fn visible_rooms(&self, req: &RequestParts, env: &dyn Vars) -> super::rooms::RoomScope {
        use super::rooms::RoomScope;
        let Some(token) = req.bearer_token() else {
            return RoomScope::Prefixes(Vec::new());
        };
        let tokens = env.var(self.var).unwrap_or_default();
        // The token's first entry, as `authorize` reads it.
        let first = prefixes(&tokens, token).next();
        match first {
            Some("*") => RoomScope::All,
            Some(prefix) => RoomScope::Prefixes(vec![prefix.to_owned()]),
            None => RoomScope::Prefixes(Vec::new()),
        }
    }
}

/// Either policy: the first's decision, unless it does not know the credentials (401), when the
/// second decides. `(RoomTokens, Jwt)` takes service tokens and users' JWTs side by side.
impl<A: Policy, B: Policy> Policy for (A, B) {
    async fn authorize(&self, req: &RequestParts, env: &dyn Vars, access: &Access<'_>) -> Decision {
        match self.0.authorize(req, env, access).await {
            Decision::Unauthorized(first) => match self.1.authorize(req, env, access).await {
                Decision::Unauthorized(second) => {
                    Decision::Unauthorized(format!("{first}; or {second}"))
                }
                decided => decided,
            },
            decided => decided,
        }
    }

    async fn visible_rooms(&self, req: &RequestParts, env: &dyn Vars) -> super::rooms::RoomScope {
        match self.0.visible_rooms(req, env).await {
            super::rooms::RoomScope::Prefixes(p) if p.is_empty() => {
                self.1.visible_rooms(req, env).await
            }
            scope => scope,
        }
    }
}

/// The room prefixes the secret `tokens` (`token=room-prefix,…`) gives `token`, in order.
fn prefixes<'a>(tokens: &'a str, token: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    tokens
        .split(',')
        .filter_map(|e| e.trim().split_once('='))
        .filter(move |(t, _)| *t == token)
        .map(|(_, rooms)| rooms)
}
