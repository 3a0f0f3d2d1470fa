//! The read token: what a client sends back (`x-nanotype-token`) so that its reads of a room never
//! see a state older than one it has seen or written.
//!
//! A token is `seq:shard:bookmark`: the room's seq the answer reflected (a write's own seq, the
//! watermark a replica read passed), the shard that answered, and the D1 bookmark of that
//! answer's session (empty where there is none). A read with a token needs the room's replica
//! watermark at `seq` or later; it starts its D1 session at the bookmark when the token comes
//! from the room's shard, so a read replica older than the last answer is never read. A token
//! belongs to one room; one sent with another room's read only asks for a newer state there.

use super::error::ApiError;

/// The request and response header that carries a [`ReadToken`].
pub const TOKEN_HEADER: &str = "x-nanotype-token";

/// A parsed read token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadToken {
    /// The room's seq the next read must reflect at least.
    pub seq: i64,
    /// The shard that answered (empty: unknown).
    pub shard: String,
    /// The D1 bookmark of that answer's session (empty: none).
    pub bookmark: String,
}

impl ReadToken {
    /// The token of an answer that reflected `seq`, from `shard`, with the session's `bookmark`.
    pub fn new(seq: i64, shard: &str, bookmark: Option<&str>) -> ReadToken {
        ReadToken {
            seq,
            shard: shard.to_owned(),
            bookmark: bookmark.unwrap_or_default().to_owned(),
        }
    }

    /// The header's text parsed; a 400 that says the form when it is not one.
    pub fn parse(text: &str) -> Result<ReadToken, ApiError> {
        let bad = || {
            ApiError::bad_request(format!(
                "`{TOKEN_HEADER}` must be a token a response returned (seq:shard:bookmark)"
            ))
        };
        let mut parts = text.trim().splitn(3, ':');
        let seq = parts
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| (0..=nanotype_schema::model::MAX_SAFE_INTEGER).contains(s))
            .ok_or_else(bad)?;
        let shard = parts.next().unwrap_or_default();
        let bookmark = parts.next().unwrap_or_default();
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(shard) || !printable(bookmark) || shard.len() > 64 || bookmark.len() > 256 {
            return Err(bad());
        }
        Ok(ReadToken::new(seq, shard, Some(bookmark)))
    }

    /// The header's text.
    pub fn to_header(&self) -> String {
        format!("{}:{}:{}", self.seq, self.shard, self.bookmark)
    }

    /// The bookmark to start a session on `shard` at: the token's when it comes from that shard.
    pub fn bookmark_on(&self, shard: &str) -> Option<&str> {
        (self.shard == shard && !self.bookmark.is_empty()).then_some(self.bookmark.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_no_response_returned() {
        let t = ReadToken::new(7, "DB_1", Some("0000abc-00000002"));
        assert_eq!(ReadToken::parse(&t.to_header()).unwrap(), t);
        assert_eq!(t.bookmark_on("DB_1"), Some("0000abc-00000002"));
        assert_eq!(t.bookmark_on("DB"), None);
        let bare = ReadToken::parse("12").unwrap();
        assert_eq!((bare.seq, bare.bookmark_on("")), (12, None));
        for bad in ["", "x", "-1:DB:", "9007199254740992:DB:", "1:D B:"] {
            assert_eq!(ReadToken::parse(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
