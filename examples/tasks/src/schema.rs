//! The tasks app's tables and schema. `cargo run --bin gen-migrations` reads this file to
//! generate `migrations/` (D1) and `migrations/do/` (the room Durable Object).

use serde::{Deserialize, Serialize};

/// A task in a room.
#[nanotype::table(name = "tasks", index(status, created_at))]
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

/// A comment on a task.
#[nanotype::table(name = "comments")]
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
