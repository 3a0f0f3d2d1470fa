//! `--check`, refusals, hand edits and the other flags, on the real binary.

mod common;

use common::*;

const V1: &str = r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    pub estimate: Option<i32>,
}
"#;

const V2_DUE: &str = r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    pub estimate: Option<i32>,
    pub due: Option<i64>,
}
"#;

#[test]
fn check_fails_on_drift_and_passes_when_current() {
    let p = Project::new();
    p.write_schema(V1);
    // No migrations yet: behind.
    let out = p.fails(&["--check"]);
    assert!(out.contains("create table `todo`"), "{out}");
    assert!(out.contains("create table `_nt_rooms`"), "{out}");
    assert!(file_names(&p.d1_dir()).is_empty(), "--check writes nothing");

    p.ok(&[]);
    assert!(p.ok(&["--check"]).contains("match the structs"));

    p.write_schema(V2_DUE);
    let out = p.fails(&["--check"]);
    assert!(out.contains("add column `todo.due` INTEGER"), "{out}");
    assert!(out.contains("cargo run --bin gen-migrations"), "{out}");

    p.ok(&[]);
    p.ok(&["--check"]);
}

#[test]
fn check_reports_do_and_d1_disagreeing() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    // A hand edit to one folder only.
    let do_file = &sql_files(&p.do_dir())[0];
    let mut sql = std::fs::read_to_string(do_file).unwrap();
    sql.push_str("CREATE INDEX \"todo_title_idx\" ON \"todo\" (\"title\");\n");
    std::fs::write(do_file, sql).unwrap();

    let out = p.fails(&["--check"]);
    assert!(out.contains("disagree"), "{out}");
    assert!(
        out.contains("index `todo_title_idx` on `todo` is missing"),
        "{out}"
    );
    // The structs lack the index too.
    assert!(out.contains("drop index `todo_title_idx`"), "{out}");
    // Generating from two schemas is refused.
    let out = p.fails(&[]);
    assert!(out.contains("disagree"), "{out}");
    assert_eq!(file_names(&p.d1_dir()).len(), 1);

    // A missing counterpart file is reported by name.
    std::fs::remove_file(do_file).unwrap();
    let out = p.fails(&["--check"]);
    assert!(
        out.contains("0001_create_todo.sql has no Durable Object counterpart"),
        "{out}"
    );
}

#[test]
fn a_hand_written_migration_is_read_for_what_it_does() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    // The user writes 0002 by hand, in both folders, with a backfill the generator would not.
    let sql = "ALTER TABLE todo ADD COLUMN due INTEGER;\nUPDATE todo SET due = 0;\n";
    let replica_sql =
        "-- D1\nALTER TABLE \"todo\" ADD COLUMN \"due\" INTEGER;\nUPDATE todo SET due = 0;\n";
    std::fs::write(p.do_dir().join("0002_due_by_hand.sql"), sql).unwrap();
    std::fs::write(p.d1_dir().join("0002_due_by_hand.sql"), replica_sql).unwrap();
    p.write_schema(V2_DUE);
    assert!(p.ok(&["--check"]).contains("match the structs"));
    assert!(p.ok(&[]).contains("Nothing to do"));
}

#[test]
fn dropping_needs_allow_data_loss_and_lists_what_is_lost() {
    let p = Project::new();
    p.write_schema(V2_DUE);
    p.ok(&[]);
    // `due` gone, `title` gone (looks renamed, but is not marked), table `notes` gone.
    p.write_schema(
        r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    pub name: String,
    pub estimate: Option<i32>,
}
"#,
    );
    let out = p.fails(&[]);
    assert!(out.contains("would destroy data"), "{out}");
    assert!(out.contains("column `todo.due`"), "{out}");
    assert!(out.contains("column `todo.title`"), "{out}");
    assert!(out.contains("renamed_from = \"title\""), "hint: {out}");
    assert!(out.contains("--allow-data-loss"), "{out}");
    assert_eq!(file_names(&p.d1_dir()).len(), 1, "nothing written");
    // --check lists the same refusal without writing.
    let out = p.fails(&["--check"]);
    assert!(out.contains("would be refused"), "{out}");

    // The table itself.
    p.write_schema("");
    let out = p.fails(&[]);
    assert!(out.contains("table `todo` and all its rows"), "{out}");
    let out = p.ok(&["--allow-data-loss"]);
    assert!(out.contains("drop table `todo`"), "{out}");
    assert_eq!(file_names(&p.d1_dir())[1], "0002_drop_todo.sql");
    p.ok(&["--check"]);
}

#[test]
fn not_null_without_a_default_is_refused_even_with_the_flag() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    let v2 = V1.replace("pub estimate: Option<i32>,", "pub estimate: i32,");
    p.write_schema(&v2);
    let out = p.fails(&["--allow-data-loss"]);
    assert!(out.contains("`todo.estimate` becomes NOT NULL"), "{out}");
    assert!(out.contains("default"), "{out}");
    // A new NOT NULL column without a default too.
    let v3 = V1.replace(
        "pub title: String,",
        "pub title: String,\n    pub owner: String,",
    );
    p.write_schema(&v3);
    let out = p.fails(&[]);
    assert!(
        out.contains("new column `todo.owner` is NOT NULL without a default"),
        "{out}"
    );
    assert_eq!(file_names(&p.d1_dir()).len(), 1);
}

#[test]
fn dry_run_prints_both_files_and_writes_nothing() {
    let p = Project::new();
    p.write_schema(V1);
    let out = p.ok(&["--dry-run", "--name", "Initial schema!"]);
    assert!(
        out.contains("migrations/0001_initial_schema.sql (D1)"),
        "{out}"
    );
    assert!(
        out.contains("migrations/do/0001_initial_schema.sql (Durable Object)"),
        "{out}"
    );
    assert!(out.contains("PRIMARY KEY (\"room_id\", \"id\")"), "{out}");
    assert!(out.contains("\"id\" INTEGER PRIMARY KEY,"), "{out}");
    assert!(!p.d1_dir().exists());
    p.ok(&["--name", "Initial schema!"]);
    assert_eq!(file_names(&p.d1_dir()), ["0001_initial_schema.sql"]);
    assert_eq!(file_names(&p.do_dir()), ["0001_initial_schema.sql"]);
}

#[test]
fn source_out_and_manifest_flags() {
    let p = Project::new();
    std::fs::create_dir(p.path().join("src")).unwrap();
    std::fs::write(p.path().join("src/other.rs"), V1).unwrap();
    // --source and --out replace the manifest's settings.
    p.ok(&["--source", "src/other.rs", "--out", "db"]);
    assert_eq!(file_names(&p.path().join("db")), ["0001_create_todo.sql"]);
    assert_eq!(
        file_names(&p.path().join("db/do")),
        ["0001_create_todo.sql"]
    );
    p.ok(&["--source", "src/other.rs", "--out", "db", "--check"]);

    // --manifest from elsewhere: paths are relative to the manifest.
    p.write_schema(V1);
    let out = std::process::Command::new(BIN)
        .arg("--manifest")
        .arg(p.path().join("Cargo.toml"))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(file_names(&p.d1_dir()), ["0001_create_todo.sql"]);

    // No manifest, no sources: a clear error.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("[workspace.metadata.nanotype]"));
}

#[test]
fn struct_errors_are_reported_with_their_location() {
    let p = Project::new();
    p.write_schema(
        r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(indx)]
    pub title: String,
    pub n: u64,
}
"#,
    );
    let out = p.fails(&[]);
    assert!(
        out.contains("schema.rs:6:16: unknown field attribute `indx`"),
        "{out}"
    );
    assert!(
        out.contains("schema.rs:8:12: `u64` is not supported"),
        "{out}"
    );
    assert!(!p.d1_dir().exists());
}

#[test]
fn a_rebuild_is_refused_when_a_hand_written_foreign_key_points_at_the_table() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    // By hand, in both folders: a child table with ON DELETE CASCADE (`_nt_`-prefixed so that it
    // is not taken for a table the structs dropped).
    for dir in [p.d1_dir(), p.do_dir()] {
        std::fs::write(
            dir.join("0002_child.sql"),
            "CREATE TABLE _nt_child (id INTEGER PRIMARY KEY, todo INTEGER REFERENCES todo(id) ON DELETE CASCADE);\n",
        )
        .unwrap();
    }
    p.ok(&["--check"]);
    // `estimate` changes type: a rebuild of `todo`, which would cascade.
    p.write_schema(&V1.replace("Option<i32>", "Option<String>"));
    let out = p.fails(&[]);
    assert!(
        out.contains("referenced by a foreign key of `_nt_child`"),
        "{out}"
    );
    assert_eq!(file_names(&p.d1_dir()).len(), 2);
}

#[test]
fn typescript_declarations_are_written_with_the_migrations_and_checked_for_drift() {
    let p = Project::new();
    std::fs::write(
        p.path().join("Cargo.toml"),
        "[workspace]\n\n[workspace.metadata.nanotype]\nsources = [\"schema.rs\"]\nmigrations = \"migrations\"\ntypes = \"web/tables.d.ts\"\n",
    )
    .unwrap();
    p.write_schema(V1);
    let out = p.ok(&[]);
    assert!(
        out.contains("Wrote web/tables.d.ts") || out.contains("tables.d.ts"),
        "{out}"
    );
    let ts = std::fs::read_to_string(p.path().join("web/tables.d.ts")).unwrap();
    assert!(ts.contains("export interface Todo {"), "{ts}");
    assert!(ts.contains("  estimate: number | null;"), "{ts}");
    assert!(ts.contains("  todo: Todo;"), "{ts}");
    assert!(p.ok(&["--check"]).contains("match the structs"));

    // A field added: the migration and the declarations are both behind, and both written.
    p.write_schema(V2_DUE);
    let out = p.fails(&["--check"]);
    assert!(out.contains("tables.d.ts is stale"), "{out}");
    p.ok(&[]);
    let ts = std::fs::read_to_string(p.path().join("web/tables.d.ts")).unwrap();
    assert!(ts.contains("  due: number | null;"), "{ts}");
    p.ok(&["--check"]);
    // Edited by hand: stale again.
    std::fs::write(p.path().join("web/tables.d.ts"), "// mine\n").unwrap();
    assert!(p.fails(&["--check"]).contains("is stale"));
}

#[test]
fn each_migration_says_whether_the_running_worker_survives_it() {
    let p = Project::new();
    p.write_schema(V1);
    let out = p.ok(&[]);
    assert!(out.contains("Deploy: additive"), "{out}");
    p.write_schema(V2_DUE);
    assert!(p.ok(&[]).contains("Deploy: additive"));
    // A rename breaks the Worker running now: say so, and how to avoid it.
    p.write_schema(&V2_DUE.replace(
        "    pub due: Option<i64>,",
        "    #[nanotype(renamed_from = \"due\")]\n    pub due_at: Option<i64>,",
    ));
    let out = p.ok(&[]);
    assert!(
        out.contains("Deploy: breaking (column `todo.due` renamed to `due_at`)"),
        "{out}"
    );
    assert!(out.contains("expand"), "{out}");
    let names = file_names(&p.d1_dir());
    let last = names.last().unwrap();
    for dir in [p.d1_dir(), p.d1_dir().join("do")] {
        let text = std::fs::read_to_string(dir.join(last)).unwrap();
        assert!(
            text.contains("-- Deploy: breaking (column `todo.due` renamed"),
            "{text}"
        );
    }
    let first = std::fs::read_to_string(p.d1_dir().join(&names[0])).unwrap();
    assert!(first.contains("-- Deploy: additive"), "{first}");
}

#[test]
fn empty_writes_the_next_migration_in_both_layouts_for_hand_written_sql() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    let out = p.ok(&["--empty", "Backfill titles"]);
    assert!(out.contains("0002_backfill_titles.sql"), "{out}");
    assert_eq!(
        file_names(&p.d1_dir()).last().unwrap(),
        "0002_backfill_titles.sql"
    );
    assert_eq!(
        file_names(&p.do_dir()).last().unwrap(),
        "0002_backfill_titles.sql"
    );
    // Filled by hand with a data fix on both sides, it is replayed and checked like any other.
    for dir in [p.d1_dir(), p.do_dir()] {
        let f = dir.join("0002_backfill_titles.sql");
        let mut text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("written by hand"), "{text}");
        text.push_str("UPDATE \"todo\" SET \"title\" = trim(\"title\");\n");
        std::fs::write(&f, text).unwrap();
    }
    assert!(p.ok(&["--check"]).contains("match the structs"));
    // The next generated migration numbers after it.
    p.write_schema(V2_DUE);
    assert!(p.ok(&[]).contains("0003_"));
}

/// Two table structs; each test adds its own `schema!` line.
const TWO_TABLES: &str = r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
}

#[nanotype::table(name = "tags")]
pub struct Tag {
    #[nanotype(primary_key)]
    pub id: i64,
}
"#;

#[test]
fn a_table_struct_left_out_of_the_schema_list_is_refused_with_the_fix() {
    let p = Project::new();
    p.write_schema(&format!(
        "{TWO_TABLES}\nnanotype::schema!(pub App = [Todo], migrations = \"migrations/do\");\n"
    ));
    let out = p.fails(&[]);
    assert!(
        out.contains("schema.rs:9:12: struct `Tag` is a `#[nanotype::table]` but not in `nanotype::schema!(App = [Todo])` (schema.rs:14:1): add it to the list"),
        "{out}"
    );
    assert!(!out.contains("`Todo` is"), "{out}");
    assert!(!p.d1_dir().exists(), "nothing written");
    // Listed, it is migrated.
    p.write_schema(&format!("{TWO_TABLES}\nnanotype::schema!(pub App = [Todo, crate::Tag], migrations = \"migrations/do\");\n"));
    p.ok(&[]);
    assert!(p.ok(&["--check"]).contains("match the structs"));
}
