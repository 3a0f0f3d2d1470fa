//! The one error format of every route: a status and `{"error": {"code", "message"}}`.
//!
//! | code | status | when |
//! |---|---|---|
//! | `bad_request` | 400 | a query parameter is malformed or unknown |
//! | `invalid_json` | 400 | the body is not JSON (or empty where one is needed) |
//! | `invalid_body` | 400 | the body is JSON of the wrong shape (serde's message names the field) |
//! | `invalid_name` | 400 | a room name outside 1–64 of `[A-Za-z0-9_-]` |
//! | `invalid_key` | 400 | a key in the path does not fit the table's key type |
//! | `rejected` | 400 | the app's validation refused the write, or read-only SQL refused a statement |
//! | `sql_error` | 400 | read-only SQL failed to prepare or run |
//! | `unauthorized` | 401 | the policy found no credentials |
//! | `forbidden` | 403 | the policy refused these credentials this room, table or operation |
//! | `not_found` | 404 | no such route, table or row |
//! | `method_not_allowed` | 405 | the route exists with other methods |
//! | `conflict` | 409 | the request named another room than the Durable Object's |
//! | `constraint_violation` | 409 | the write breaks a constraint of the table (a unique value already taken) |
//! | `idempotency_key_reused` | 422 | an `Idempotency-Key` sent again with a different request |
//! | `key_space_exhausted` | 507 | a table whose keys are assigned holds a row for every key from 1 to 2^53 − 1 |
//! | `body_too_large` | 413 | the body is over [`super::body::MAX_BODY_BYTES`] |
//! | `unsupported_media_type` | 415 | a JSON route's body is not sent as `application/json` |
//! | `upgrade_required` | 426 | the feed route was asked for without a WebSocket upgrade |
//! | `room_unavailable` | 503 | the room's Durable Object could not be reached |
//! | `migration_failed` | 503 | the room cannot open: one of its migrations failed (nothing of that migration was kept) or an applied one was edited; the message names it; other rooms go on |
//! | `schema_mismatch` | 503 | the room's tables differ from the structs where it breaks reads or writes (a struct changed without `cargo run --bin gen-migrations`); the message names each column; nothing is changed |
//! | `replica_not_migrated` | 503 | a D1 database without nanotype's tables (its migrations never applied): `npx wrangler d1 migrations apply <BINDING>`, or `nanotype migrate-d1`; writes wait in their rooms |
//! | `replica_unavailable` | 503 | D1 failed, or a shard is not bound (routes that only D1 answers: `/_rooms`, `/_across`); a room's own reads fall back to the room instead |
//! | `internal` | 500 | anything else (a bug or a platform failure) |

use serde_json::json;

/// Every code of the table above with its status, in the table's order (the OpenAPI document's
/// list of codes).
pub const CODES: &[(&str, u16)] = &[
    ("bad_request", 400),
    ("invalid_json", 400),
    ("invalid_body", 400),
    ("invalid_name", 400),
    ("invalid_key", 400),
    ("rejected", 400),
    ("sql_error", 400),
    ("unauthorized", 401),
    ("forbidden", 403),
    ("not_found", 404),
    ("method_not_allowed", 405),
    ("conflict", 409),
    ("constraint_violation", 409),
    ("idempotency_key_reused", 422),
    ("key_space_exhausted", 507),
    ("body_too_large", 413),
    ("unsupported_media_type", 415),
    ("upgrade_required", 426),
    ("room_unavailable", 503),
    ("migration_failed", 503),
    ("schema_mismatch", 503),
    ("replica_not_migrated", 503),
    ("replica_unavailable", 503),
    ("internal", 500),
];

use crate::error::{Error, SqlError, SqlKind};

/// A request that cannot be served: a status, a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code (see the module's table).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// For a 405: the methods the route takes (sent as the `Allow` header, RFC 9110).
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// An error with its status, code and message.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// 405 `method_not_allowed`: `path` takes the methods in `allow` (`"GET, HEAD"`).
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed on {path}: it takes {allow}"),
            )
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// 400 `invalid_body`.
    pub fn invalid_body(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_body", message)
    }

    /// 400 `rejected`: what an app's validation returns.
    pub fn rejected(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "rejected", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal", message)
    }

    /// The JSON body: `{"error": {"code", "message"}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl From<Error> for ApiError {
    /// The HTTP face of a runtime error.
    fn from(e: Error) -> ApiError {
        let message = e.to_string();
        match e {
            Error::NotFound { .. } => ApiError::not_found(message),
            Error::InvalidRoom(_) => ApiError::new(400, "invalid_name", message),
            Error::Rejected(_) => ApiError::rejected(message),
            Error::InvalidRow(_)
            | Error::IntegerOutOfRange { .. }
            | Error::NaN { .. }
            | Error::Json { .. } => ApiError::invalid_body(message),
            Error::WrongRoom { .. } => ApiError::new(409, "conflict", message),
            Error::KeySpaceExhausted { .. } => ApiError::new(507, "key_space_exhausted", message),
            // A write the table's constraints refuse (a unique value taken, a check, a foreign
            // key), by SQLite's code: the request's fault, not the server's.
            Error::Primary(SqlError {
                kind: SqlKind::Constraint(_),
                message: ref m,
                ..
            }) => ApiError::new(
                409,
                "constraint_violation",
                format!("the write breaks a constraint of the table: {m}"),
            ),
            Error::Migration { .. } | Error::MigrationChanged { .. } => ApiError::new(
                503,
                "migration_failed",
                format!(
                    "this room cannot open: {message}; nothing of that migration was kept and the \
                     room keeps the ones before it; other rooms are not affected. Fix the \
                     migration (or the room's rows it conflicts with) and deploy again"
                ),
            ),
            Error::SchemaMismatch { .. } => ApiError::new(503, "schema_mismatch", message),
            Error::ReplicaNotMigrated => ApiError::new(503, "replica_not_migrated", message),
            Error::Replica(_) => ApiError::new(503, "replica_unavailable", message),
            _ => ApiError::internal(message),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}
