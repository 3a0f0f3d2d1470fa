-- Migration 0001_create_tasks_counters for the D1 replica (every table carries room_id).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.

-- create table `_nt_rooms` (D1 only: the replica's per-room sync state)
CREATE TABLE "_nt_rooms" (
    "room_id" TEXT PRIMARY KEY NOT NULL,
    "watermark" INTEGER NOT NULL DEFAULT 0,
    "read_seq" INTEGER NOT NULL DEFAULT 0,
    "primary_id" TEXT NOT NULL DEFAULT '',
    "updated_at" INTEGER NOT NULL DEFAULT 0
);

-- create table `tasks` with index tasks_status_idx, tasks_status_created_at_idx
CREATE TABLE "tasks" (
    "room_id" TEXT NOT NULL,
    "id" INTEGER NOT NULL,
    "title" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'open',
    "done" INTEGER NOT NULL DEFAULT 0,
    "created_at" INTEGER NOT NULL,
    "assignee" TEXT,
    "tags" TEXT NOT NULL,
    PRIMARY KEY ("room_id", "id")
);
CREATE INDEX "tasks_status_idx" ON "tasks" ("room_id", "status");
CREATE INDEX "tasks_status_created_at_idx" ON "tasks" ("room_id", "status", "created_at");

-- create table `counters`
CREATE TABLE "counters" (
    "room_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "value" INTEGER NOT NULL,
    PRIMARY KEY ("room_id", "name")
);
