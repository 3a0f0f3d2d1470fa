-- Migration 0001_create_tasks_counters for the room's SQLite (Durable Object).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.

-- create table `tasks` with index tasks_status_idx, tasks_status_created_at_idx
CREATE TABLE "tasks" (
    "id" INTEGER PRIMARY KEY,
    "title" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'open',
    "done" INTEGER NOT NULL DEFAULT 0,
    "created_at" INTEGER NOT NULL,
    "assignee" TEXT,
    "tags" TEXT NOT NULL
);
CREATE INDEX "tasks_status_idx" ON "tasks" ("status");
CREATE INDEX "tasks_status_created_at_idx" ON "tasks" ("status", "created_at");

-- create table `counters`
CREATE TABLE "counters" (
    "name" TEXT PRIMARY KEY NOT NULL,
    "value" INTEGER NOT NULL
);
