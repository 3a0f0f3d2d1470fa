-- Migration 0003_comments_reference_tasks for the D1 replica (every table carries room_id).
-- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this
-- file to learn the schema, so a hand edit is taken into account.
-- Deploy: breaking (table `comments` rebuilt: `task_id` references tasks.id ON DELETE CASCADE): the Worker running now fails on it between the D1 migration and the deploy; deploy in a quiet moment, or split it into expand (add the new, write both, backfill) and contract (drop the old) migrations.

-- rebuild table `comments`, keeping its rows: `task_id` references tasks.id ON DELETE CASCADE
-- The rows are copied into _nt_rebuild_comments and the tables swapped. Tables that reference it are
-- rebuilt with it: every new table is filled before an old one is dropped, children
-- first, so no ON DELETE runs and no PRAGMA is needed (D1 ignores
-- PRAGMA foreign_keys).
CREATE TABLE "_nt_rebuild_comments" (
    "room_id" TEXT NOT NULL,
    "id" INTEGER NOT NULL,
    "task_id" INTEGER NOT NULL,
    "created_at" INTEGER NOT NULL,
    PRIMARY KEY ("room_id", "id"),
    FOREIGN KEY ("room_id", "task_id") REFERENCES "tasks" ("room_id", "id") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO "_nt_rebuild_comments" ("room_id", "id", "task_id", "created_at") SELECT "room_id", "id", "task_id", "created_at" FROM "comments";
DROP TABLE "comments";
ALTER TABLE "_nt_rebuild_comments" RENAME TO "comments";
CREATE INDEX "comments_task_id_idx" ON "comments" ("room_id", "task_id");
