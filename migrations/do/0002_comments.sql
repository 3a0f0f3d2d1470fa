-- Migration 0002_comments for the room's SQLite (Durable Object).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.

-- drop table `counters` (its rows are lost)
DROP TABLE "counters";

-- create table `comments` with index comments_task_id_idx
CREATE TABLE "comments" (
    "id" INTEGER PRIMARY KEY,
    "task_id" INTEGER NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" INTEGER NOT NULL
);
CREATE INDEX "comments_task_id_idx" ON "comments" ("task_id");
