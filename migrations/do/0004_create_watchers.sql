-- Migration 0004_create_watchers for the room's SQLite (Durable Object).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.
-- Deploy: additive: apply D1 first, then deploy; the old and the new Worker both work in between.

-- create table `watchers`
CREATE TABLE "watchers" (
    "task_id" INTEGER NOT NULL REFERENCES "tasks" ("id") ON DELETE CASCADE,
    "user" TEXT NOT NULL,
    "muted" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("task_id", "user")
);
