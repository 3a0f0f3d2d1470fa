//! Retried writes applied once: a write sent with an `Idempotency-Key` header is recorded with
//! its reply in the same transaction as the write itself (`_nt_idempotency` in the room's
//! SQLite), so a retry with the same key answers what the first attempt answered and writes
//! nothing, even when the first attempt's response was lost. A key sent again with a different
//! request is refused (422). Records are kept for [`RETENTION_MS`].

use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::room::Reply;
use crate::error::Result;
use crate::primary::Primary;
use crate::value::Value;

/// The request header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// The response header set on a replayed reply.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a key is remembered: a day.
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// A key is 1 to 128 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "`Idempotency-Key` must be 1 to 128 visible ASCII characters",
        ))
    }
}

/// What identifies a request under one key, in a canonical form that stays the same across
/// deploys: the write (`create`, `put`, `patch`, `delete`), the table, the key as JSON and the
/// body as JSON with its object keys sorted (the bytes as sent, when it is not JSON). The same
/// request retried gets the same hash whatever the spacing or key order of its body.
pub fn request_hash(
    write: &str,
    table: &str,
    key: Option<&serde_json::Value>,
    body: &[u8],
) -> String {
    let mut h = Sha256::new();
    for part in [write, table] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(
        key.map(std::string::ToString::to_string)
            .unwrap_or_default()
            .as_bytes(),
    );
    h.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        // `serde_json::Map` is ordered by key: the text is canonical.
        Ok(json) => h.update(json.to_string().as_bytes()),
        Err(_) => h.update(body),
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The reply recorded under `key`, if any, checked against this request's hash.
pub fn replay<P: Primary>(
    db: &P,
    key: &str,
    hash: &str,
) -> Result<Option<Result<Reply, ApiError>>> {
    let rows = db.query(
        "SELECT \"request\", \"status\", \"body\", \"seq\" FROM \"_nt_idempotency\" WHERE \"key\" = ?1",
        &[Value::Text(key.to_owned())],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let [Value::Text(request), Value::Integer(status), Value::Text(body), seq] = &row[..] else {
        return Ok(None);
    };
    if request != hash {
        return Ok(Some(Err(ApiError::new(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request; use a new key for a new request",
        ))));
    }
    let body = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    Ok(Some(Ok(Reply {
        status: u16::try_from(*status).unwrap_or(200),
        body,
        seq: match seq {
            Value::Integer(s) => Some(*s),
            _ => None,
        },
        sync_after: false,
        replayed: true,
        token: None,
    })))
}

/// Record `reply` under `key` (in the write's transaction), and forget keys past retention.
pub fn record<P: Primary>(db: &P, key: &str, hash: &str, reply: &Reply, now_ms: i64) -> Result<()> {
    db.query(
        "DELETE FROM \"_nt_idempotency\" WHERE \"at\" < ?1",
        &[Value::Integer(now_ms - RETENTION_MS)],
    )?;
    db.query(
        "INSERT INTO \"_nt_idempotency\" (\"key\", \"request\", \"status\", \"body\", \"seq\", \"at\") \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            Value::Text(key.to_owned()),
            Value::Text(hash.to_owned()),
            Value::Integer(i64::from(reply.status)),
            Value::Text(reply.body.to_string()),
            reply.seq.map_or(Value::Null, Value::Integer),
            Value::Integer(now_ms),
        ],
    )?;
    Ok(())
}
