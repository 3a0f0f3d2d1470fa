//! The tasks app's tables and schema. `cargo run --bin gen-migrations` reads this file to
//! generate `migrations/` (D1) and `migrations/do/` (the room Durable Object).

use nanotype::prelude::*;
use serde::{Deserialize, Serialize};

/// Longest task title or comment, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

fn text_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= MAX_TEXT_CHARS
}

/// A task in a room.
#[nanotype::table(name = "tasks", index(status, created_at), validate)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    #[nanotype(index, default = "open")]
    pub status: String,
    #[nanotype(default = false)]
    pub done: bool,
    /// Set by the room when the task is created.
    #[serde(default)]
    pub created_at: i64,
    pub assignee: Option<String>,
    #[nanotype(json)]
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Every write of a task: a title and a status of sensible length; `done` follows the status;
/// the creation time is the room's.
impl Validate for Task {
    fn validate(&mut self, write: &WriteCtx<'_>) -> Result<(), ApiError> {
        if !text_ok(&self.title) || self.status.is_empty() || self.status.len() > 32 {
            return Err(ApiError::rejected(format!(
                "`title` must be 1 to {MAX_TEXT_CHARS} characters, `status` 1 to 32"
            )));
        }
        self.done = self.status == "done";
        if write.op() == WriteOp::Create {
            self.created_at = write.now_ms();
        }
        Ok(())
    }
}

/// A comment on a task.
#[nanotype::table(name = "comments", validate)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    /// Deleting the task deletes its comments, in the room and in D1.
    #[nanotype(index, references = "tasks.id", on_delete = "cascade")]
    pub task_id: i64,
    pub body: String,
    #[serde(default)]
    pub created_at: i64,
}

impl Validate for Comment {
    fn validate(&mut self, write: &WriteCtx<'_>) -> Result<(), ApiError> {
        if !text_ok(&self.body) {
            return Err(ApiError::rejected("`body` must be 1 to 500 characters"));
        }
        if write.op() == WriteOp::Create {
            self.created_at = write.now_ms();
        }
        Ok(())
    }
}

/// Who watches a task: keyed by both fields (`/rooms/{room}/watchers/{task_id}/{user}`).
#[nanotype::table(name = "watchers")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watcher {
    #[nanotype(primary_key, references = "tasks.id", on_delete = "cascade")]
    pub task_id: i64,
    #[nanotype(primary_key)]
    pub user: String,
    #[nanotype(default = false)]
    pub muted: bool,
}

nanotype::schema!(pub App = [Task, Comment, Watcher], migrations = "../../migrations/do");
