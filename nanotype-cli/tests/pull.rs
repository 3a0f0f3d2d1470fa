//! `nanotype pull`: the structs of a database made by hand parse back, through the macro's own
//! parser, into tables whose shapes are the database's; what nanotype cannot declare is reported.

use std::process::Command;

use nanotype_schema::migration::shape;
use rusqlite::Connection;

const NANOTYPE: &str = env!("CARGO_BIN_EXE_nanotype");

#[test]
fn pulled_structs_parse_back_to_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("existing.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        r#"CREATE TABLE "projects" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, "budget" REAL, "logo" BLOB);
           CREATE UNIQUE INDEX "projects_name_key" ON "projects" ("name");
           CREATE TABLE "tasks" (
               "id" INTEGER PRIMARY KEY,
               "project_id" INTEGER NOT NULL REFERENCES "projects" ("id") ON DELETE CASCADE,
               "status" TEXT NOT NULL DEFAULT 'open',
               "type" INTEGER NOT NULL DEFAULT 0,
               "done_at" INTEGER
           );
           CREATE INDEX "tasks_project_id_status_idx" ON "tasks" ("project_id", "status");
           CREATE INDEX "by_status" ON "tasks" ("status");
           CREATE TABLE "pairs" ("a" INTEGER NOT NULL, "b" TEXT NOT NULL, PRIMARY KEY ("a", "b"));
           CREATE TABLE "odd" ("a" INTEGER NOT NULL, "b" TEXT NOT NULL, PRIMARY KEY ("b", "a"));"#,
    )
    .unwrap();
    let out = Command::new(NANOTYPE)
        .arg("pull")
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("pub struct Tasks {"), "{text}");
    assert!(
        text.contains("#[nanotype(references = \"projects.id\", on_delete = \"cascade\")]"),
        "{text}"
    );
    assert!(text.contains("pub r#type: i64,"), "{text}");
    assert!(text.contains("pub done_at: Option<i64>,"), "{text}");
    assert!(text.contains("index(project_id, status)"), "{text}");
    assert!(
        text.contains("index `by_status` will be recreated as `tasks_status_idx`"),
        "{text}"
    );
    // A composite key is pulled as several key fields; one in another order than its columns
    // cannot be declared.
    assert!(
        text.contains("pub struct Pairs {\n    #[nanotype(primary_key)]\n    pub a: i32,\n    #[nanotype(primary_key)]\n    pub b: String,"),
        "{text}"
    );
    assert!(
        text.contains("Not pulled: table `odd` has a composite key in another order"),
        "{text}"
    );

    // The structs, read back by the macro's parser, describe the same tables.
    let src = dir.path().join("schema.rs");
    std::fs::write(&src, &text).unwrap();
    let tables =
        nanotype_cli::sources::read_tables(&[src]).unwrap_or_else(|p| panic!("{p:?}\n{text}"));
    let mut names: Vec<&str> = tables.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["pairs", "projects", "tasks"]);
    let live = nanotype_cli::replay::introspect(&conn).unwrap();
    for t in &tables {
        let expected = shape::primary(t);
        let actual = live
            .iter()
            .find(|s| s.name == t.name.as_ref())
            .unwrap()
            .clone();
        // Index names aside (the note above says which one the first migration renames).
        let strip = |mut s: shape::TableShape| {
            for i in &mut s.indexes {
                i.name.clear();
            }
            s.indexes.sort_by(|a, b| a.columns.cmp(&b.columns));
            s
        };
        assert_eq!(strip(expected), strip(actual), "table `{}`", t.name);
    }
}

#[test]
fn a_database_without_tables_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 1")
        .unwrap();
    let out = Command::new(NANOTYPE)
        .arg("pull")
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tables"));
}
