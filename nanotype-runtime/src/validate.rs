//! Validation on the table: a struct declared `#[nanotype::table(validate)]` implements
//! [`Validate`], and every write of its table goes through it — the gateway's creates, puts and
//! patches, and the typed functions (`Task::insert`, `upsert`, `update`) that custom routes and
//! timers call. A table that names `validate` without the impl is a compile error on the flag.
//!
//! ```
//! use nanotype::api::ApiError;
//! use nanotype::{Validate, WriteCtx};
//!
//! #[nanotype::table(name = "notes", validate)]
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! pub struct Note {
//!     #[nanotype(primary_key)]
//!     pub id: i64,
//!     pub text: String,
//!     #[nanotype(default = "")]
//!     pub author: String,
//! }
//!
//! impl Validate for Note {
//!     fn validate(&mut self, write: &WriteCtx<'_>) -> Result<(), ApiError> {
//!         if self.text.trim().is_empty() {
//!             return Err(ApiError::rejected("`text` is empty"));
//!         }
//!         // Stamped by the server: whatever the client sent.
//!         self.author = write.caller().subject().unwrap_or("anonymous").to_owned();
//!         Ok(())
//!     }
//! }
//! ```

use crate::api::{ApiError, Caller, WriteOp};

/// A table's own check of every row written to it (`#[nanotype::table(validate)]`). It may
/// change the row (a server-side timestamp, a normalised field, the author); an error refuses
/// the write and nothing is written.
pub trait Validate {
    /// Check and adjust `self` before it is written.
    fn validate(&mut self, write: &WriteCtx<'_>) -> Result<(), ApiError>;
}

/// The write a row is validated for.
#[derive(Clone, Copy, Debug)]
pub struct WriteCtx<'a> {
    op: WriteOp,
    now_ms: i64,
    caller: &'a Caller,
}

impl<'a> WriteCtx<'a> {
    pub(crate) fn new(op: WriteOp, now_ms: i64, caller: &'a Caller) -> WriteCtx<'a> {
        WriteCtx { op, now_ms, caller }
    }

    /// A create, a put or a patch (`insert`, `upsert`, `update` from app code).
    pub fn op(&self) -> WriteOp {
        self.op
    }

    /// The room's clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Who is writing, as the policy decided (anonymous in a timer).
    pub fn caller(&self) -> &'a Caller {
        self.caller
    }
}
