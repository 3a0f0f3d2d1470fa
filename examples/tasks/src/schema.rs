//! The tasks app's tables. `cargo run --bin gen-migrations` reads this file to generate
//! `migrations/` (D1) and `migrations/do/` (the Room Durable Object).

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
    pub created_at: i64,
    pub assignee: Option<String>,
    #[nanotype(json)]
    pub tags: Vec<String>,
}

/// A named counter, written by the debounced writer.
#[nanotype::table(name = "counters")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    #[nanotype(primary_key)]
    pub name: String,
    pub value: i64,
}
