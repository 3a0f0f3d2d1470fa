-- Migration 0002_comments for the D1 replica (every table carries room_id).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.

-- drop table `counters` (its rows are lost)
DROP TABLE "counters";

-- create table `comments` with index comments_task_id_idx
CREATE TABLE "comments" (
    "room_id" TEXT NOT NULL,
    "id" INTEGER NOT NULL,
    "task_id" INTEGER NOT NULL,
    "created_at" INTEGER NOT NULL,
    PRIMARY KEY ("room_id", "id")
);
CREATE INDEX "comments_task_id_idx" ON "comments" ("room_id", "task_id");
