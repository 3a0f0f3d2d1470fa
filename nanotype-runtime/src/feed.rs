//! The room's change feed: what its WebSocket clients receive, and the log they resume from.
//!
//! When a room's feed is on ([`FeedConfig`], from [`crate::api::RoomHooks::feed`]), every
//! committed write is sent to the room's clients with its row as it was written, in seq order.
//! The log they resume from is the room's outbox ([`crate::outbox`]): the one record per change
//! that the capture triggers write in the row's own statement, which replication reads from D1's
//! watermark and the feed from a client's seq. With the feed on, its records are kept by the
//! feed's retention (by count, [`FeedConfig::retain_changes`], and by age) instead of being taken
//! by the next change as soon as D1 has them, so a client that reconnects with the last seq it
//! saw receives every change it missed, once and in order ([`catch_up`]), each with its row as
//! it is now (several changes to one row between the client's seq and now all carry the latest
//! row); when that seq is older than the log keeps, it gets a [`Message::Reset`] instead and
//! reloads a snapshot.
//!
//! What it costs: nothing written per write beyond the outbox record every room writes (one row
//! written, overwritten in place), and a ring of `retain_changes` small records; a client that
//! resumes reads each record it missed and each changed row once.
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

use crate::clock::Scheduler;
use crate::error::Result;
use crate::primary::Primary;
use crate::sync::RoomDb;

/// Close code: the client left too many changes unacknowledged; reconnect with `since`.
pub const CLOSE_BEHIND: u16 = 4008;
/// Close code: the room has [`FeedConfig::max_clients`] clients already; try again later.
pub const CLOSE_FULL: u16 = 4029;
/// Close code: a client message was over [`FeedConfig::max_message_bytes`] or not understood.
pub const CLOSE_BAD_MESSAGE: u16 = 4400;

/// A room's feed limits. The defaults suit rooms of tens of clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// Changes the log keeps, for clients that reconnect (10,000): the room's outbox keeps this
    /// many records once D1 has them, one row each, overwritten in place by later changes.
    pub retain_changes: u64,
    /// Age in ms past which the oldest change may be overwritten even when the log holds fewer
    /// than `retain_changes` (24 h), so a quiet room keeps a day of changes, not 10,000 rows.
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

/// What a client connecting with `since` gets first: the changes after it, then
/// [`Message::Live`]; or a [`Message::Reset`] when the log no longer holds them all (or `since`
/// is `None`, or ahead of the room, or the room's feed is off). `current` is the room's seq.
/// Each change is sent with its row as it is now (a row deleted since is sent as a delete), so
/// a client that applies them in order has the room's state when [`Message::Live`] arrives.
#[doc(hidden)]
pub fn catch_up<P: Primary, S: Scheduler>(
    db: &RoomDb<P, S>,
    since: Option<i64>,
    current: i64,
) -> Result<Vec<Message>> {
    db.catch_up(since, current)
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
