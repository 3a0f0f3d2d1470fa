-- The table as an earlier build of the `Note` struct below made it: `title` was text, and
-- `pinned` did not exist. The struct changed since without gen-migrations being run.
CREATE TABLE "notes" (
    "id" INTEGER PRIMARY KEY,
    "title" TEXT NOT NULL
);
