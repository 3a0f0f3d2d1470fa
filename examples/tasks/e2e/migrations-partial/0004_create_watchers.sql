-- Migration 0004_create_watchers for the D1 replica (every table carries room_id).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.
-- Deploy: additive: apply D1 first, then deploy; the old and the new Worker both work in between.

-- create table `watchers`
CREATE TABLE "watchers" (
    "room_id" TEXT NOT NULL,
    "task_id" INTEGER NOT NULL,
    "user" TEXT NOT NULL,
    "muted" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("room_id", "task_id", "user"),
    FOREIGN KEY ("room_id", "task_id") REFERENCES "tasks" ("room_id", "id") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
