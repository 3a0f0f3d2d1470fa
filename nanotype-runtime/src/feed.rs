//! The room's change feed: what its WebSocket clients receive, and the log they resume from.
//!
//! When a room's feed is on ([`FeedConfig`], from [`crate::api::RoomHooks::feed`]), every write
//! also appends its change to `_nt_changes(seq, msg, at)` in the same transaction as the row and
//! its outbox record: `seq` is the room's seq (the outbox's), `msg` the message a client gets,
//! already encoded. The log is kept by its own rules, by count and by age, independent of the
//! outbox (whose records later changes take as soon as D1 has them), so a client that reconnects with the last
//! seq it saw receives every change it missed, once and in order ([`catch_up`]); when that seq is
//! older than the log keeps, it gets a [`Message::Reset`] instead and reloads a snapshot.
//!
//! What it costs: one more row written in the Durable Object per write (the log's insert), and
//! the trim, which deletes the log's oldest rows in ranges every [`TRIM_EVERY`] seqs (each row is
//! deleted once; reading the oldest window costs at most [`TRIM_EVERY`] rows read per trim, so
//! about one per write). A room whose feed is off pays nothing.
//!
//! Messages, one JSON object per WebSocket text message:
//!
//! ```text
//! {"type":"change","seq":12,"table":"tasks","op":"upsert","key":3,"row":{...}}
//! {"type":"change","seq":13,"table":"tasks","op":"delete","key":3}
//! {"type":"reset","seq":13,"reason":"..."}    reload a snapshot; changes after 13 follow
//! {"type":"live","seq":13}                    the missed changes are sent; live ones follow
//! ```
//!
//! A client acknowledges with `{"type":"ack","seq":N}`; one that leaves more than
//! [`FeedConfig::max_unacked`] changes unacknowledged is closed with [`CLOSE_BEHIND`] and resumes
//! from its seq like any reconnect, so a stuck client never holds the room's memory or its writes.

use serde_json::{json, Value as Json};

use crate::error::Result;
use crate::primary::Primary;
use crate::value::Value;

/// Close code: the client left too many changes unacknowledged; reconnect with `since`.
pub const CLOSE_BEHIND: u16 = 4008;
/// Close code: the room has [`FeedConfig::max_clients`] clients already; try again later.
pub const CLOSE_FULL: u16 = 4029;
/// Close code: a client message was over [`FeedConfig::max_message_bytes`] or not understood.
pub const CLOSE_BAD_MESSAGE: u16 = 4400;
/// The log is trimmed when a seq is a multiple of this.
#[doc(hidden)]
pub const TRIM_EVERY: i64 = 256;

/// A room's feed limits. The defaults suit rooms of tens of clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// Changes the log keeps at least, for clients that reconnect (10,000).
    pub retain_changes: u64,
    /// Oldest change the log keeps, in ms (24 h); older ones may be trimmed.
    pub retain_ms: u64,
    /// WebSocket clients one room holds (256); the next is closed with [`CLOSE_FULL`].
    pub max_clients: usize,
    /// Changes a client may leave unacknowledged (1,000) before it is closed with
    /// [`CLOSE_BEHIND`].
    pub max_unacked: u64,
    /// Largest message a client may send, and largest change sent with its row (64 KiB): a
    /// bigger row is sent without it (`"row": null, "rowOmitted": true`) for the client to read.
    pub max_message_bytes: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            retain_changes: 10_000,
            retain_ms: 24 * 3_600_000,
            max_clients: 256,
            max_unacked: 1_000,
            max_message_bytes: 64 * 1024,
        }
    }
}

/// A message of the feed, server to client.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A committed change, already encoded.
    Change {
        /// Its seq.
        seq: i64,
        /// The message text.
        text: String,
    },
    /// The seq asked for is older than the log keeps (or none was given): reload a snapshot,
    /// then apply the changes after `seq`, which follow.
    Reset {
        /// The room's seq now.
        seq: i64,
        /// Why.
        reason: String,
    },
    /// Every missed change was sent; live ones follow.
    Live {
        /// The room's seq now.
        seq: i64,
    },
}

impl Message {
    /// The message as sent on the socket.
    pub fn text(&self) -> String {
        match self {
            Message::Change { text, .. } => text.clone(),
            Message::Reset { seq, reason } => {
                json!({ "type": "reset", "seq": seq, "reason": reason }).to_string()
            }
            Message::Live { seq } => json!({ "type": "live", "seq": seq }).to_string(),
        }
    }
}

/// The text of a change message: `row` is the row as its struct's JSON (`None` for a delete).
#[doc(hidden)]
pub fn change_text(
    seq: i64,
    table: &str,
    key: Json,
    row: Option<Json>,
    max_bytes: usize,
) -> String {
    let Some(row) = row else {
        return json!({ "type": "change", "seq": seq, "table": table, "op": "delete", "key": key })
            .to_string();
    };
    let text =
        json!({ "type": "change", "seq": seq, "table": table, "op": "upsert", "key": key, "row": row })
            .to_string();
    if text.len() <= max_bytes {
        return text;
    }
    json!({ "type": "change", "seq": seq, "table": table, "op": "upsert", "key": key,
            "row": null, "rowOmitted": true })
    .to_string()
}

const INSERT: &str = "INSERT INTO \"_nt_changes\" (\"seq\", \"msg\") VALUES (?1, ?2)";

/// Append a change to the log; call inside the write's transaction. Trims the log every
/// [`TRIM_EVERY`] seqs.
#[doc(hidden)]
pub fn record<P: Primary>(db: &P, config: &FeedConfig, seq: i64, text: &str) -> Result<()> {
    db.query(INSERT, &[Value::Integer(seq), Value::Text(text.to_owned())])?;
    if seq % TRIM_EVERY == 0 {
        trim(db, config, seq)?;
    }
    Ok(())
}

/// Delete what the log no longer keeps: changes more than `retain_changes` behind `seq`, and,
/// among the oldest [`TRIM_EVERY`], those older than `retain_ms`.
#[doc(hidden)]
pub fn trim<P: Primary>(db: &P, config: &FeedConfig, seq: i64) -> Result<()> {
    let keep_from = seq.saturating_sub(config.retain_changes.min(i64::MAX as u64) as i64);
    db.query(
        "DELETE FROM \"_nt_changes\" WHERE \"seq\" <= ?1 OR (\"seq\" IN \
         (SELECT \"seq\" FROM \"_nt_changes\" ORDER BY \"seq\" LIMIT ?2) \
         AND \"at\" < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?3)",
        &[
            Value::Integer(keep_from),
            Value::Integer(TRIM_EVERY),
            Value::Integer(config.retain_ms.min(i64::MAX as u64) as i64),
        ],
    )?;
    Ok(())
}

/// What a client connecting with `since` gets first: the changes after it, then
/// [`Message::Live`]; or a [`Message::Reset`] when the log no longer holds them all (or `since`
/// is `None`, or ahead of the room). `current` is the room's seq.
#[doc(hidden)]
pub fn catch_up<P: Primary>(db: &P, since: Option<i64>, current: i64) -> Result<Vec<Message>> {
    let reset = |reason: &str| {
        Ok(vec![Message::Reset {
            seq: current,
            reason: reason.to_owned(),
        }])
    };
    let Some(since) = since else {
        return reset("no seq given: load a snapshot");
    };
    if since > current {
        return reset("the seq given is ahead of the room (a different room, or a reset one)");
    }
    if since < current {
        // The oldest change kept must be the one right after `since` or older: otherwise some
        // changes the client needs were trimmed. (Seqs of writes made while the feed was off
        // were never logged, which reads the same way: a reset.)
        let oldest = db.query("SELECT MIN(\"seq\") FROM \"_nt_changes\"", &[])?;
        let oldest = match oldest.first().and_then(|r| r.first()) {
            Some(Value::Integer(s)) => *s,
            _ => return reset("the changes after that seq are no longer kept: load a snapshot"),
        };
        if oldest > since + 1 {
            return reset("the changes after that seq are no longer kept: load a snapshot");
        }
    }
    let rows = db.query(
        "SELECT \"seq\", \"msg\" FROM \"_nt_changes\" WHERE \"seq\" > ?1 ORDER BY \"seq\"",
        &[Value::Integer(since)],
    )?;
    // Every seq from `since + 1` to `current` must be there, once: a client applies them in
    // order and cannot tell a missing change from one that never happened.
    let mut out: Vec<Message> = Vec::with_capacity(rows.len() + 1);
    let mut expect = since + 1;
    for row in rows {
        let (Some(Value::Integer(seq)), Some(Value::Text(text))) = (row.first(), row.get(1)) else {
            return reset("the room's change log holds an unreadable record: load a snapshot");
        };
        if *seq != expect {
            return reset("the changes after that seq are not all kept: load a snapshot");
        }
        expect += 1;
        out.push(Message::Change {
            seq: *seq,
            text: text.clone(),
        });
    }
    if expect != current + 1 {
        return reset("the changes after that seq are not all kept: load a snapshot");
    }
    out.push(Message::Live { seq: current });
    Ok(out)
}

/// [`catch_up`] for a room never written (seq 0, no log), which a subscriber does not create.
#[doc(hidden)]
pub fn catch_up_unborn(since: Option<i64>) -> Vec<Message> {
    match since {
        Some(0) => vec![Message::Live { seq: 0 }],
        Some(_) => vec![Message::Reset {
            seq: 0,
            reason: "the seq given is ahead of the room (a different room, or a reset one)".into(),
        }],
        None => vec![Message::Reset {
            seq: 0,
            reason: "no seq given: load a snapshot".into(),
        }],
    }
}

/// A client's message, parsed. `Err` gives the close reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// `{"type":"ack","seq":N}`: every change up to `seq` was received.
    Ack(i64),
    /// `{"type":"ping"}`: answered with `{"type":"pong","seq":N}`.
    Ping,
}

/// Parse a client's message; `Err` is the reason to close it with [`CLOSE_BAD_MESSAGE`].
#[doc(hidden)]
pub fn parse_client(text: &str, config: &FeedConfig) -> std::result::Result<ClientMessage, String> {
    if text.len() > config.max_message_bytes {
        return Err(format!(
            "message of {} bytes is over the limit of {}",
            text.len(),
            config.max_message_bytes
        ));
    }
    let v: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("type").and_then(Json::as_str) {
        Some("ack") => v
            .get("seq")
            .and_then(Json::as_i64)
            .map(ClientMessage::Ack)
            .ok_or_else(|| "an ack needs an integer `seq`".to_owned()),
        Some("ping") => Ok(ClientMessage::Ping),
        _ => {
            Err("unknown message: send {\"type\":\"ack\",\"seq\":N} or {\"type\":\"ping\"}".into())
        }
    }
}

/// What a server remembers of one client (the WebSocket's attachment, which survives
/// hibernation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientState {
    /// The seq the client had when it connected, or the last it acknowledged.
    pub acked: i64,
}

impl ClientState {
    /// Whether a client that acknowledged `acked` is too far behind to be sent `seq`.
    pub fn behind(&self, seq: i64, config: &FeedConfig) -> bool {
        seq.saturating_sub(self.acked) > config.max_unacked.min(i64::MAX as u64) as i64
    }
}
