//! Ten successive versions of a schema, each turned into migrations by the real binary.
//!
//! After each step:
//! * all migrations applied to a fresh SQLite give exactly what `ddl` renders for the structs
//!   (Durable Object and D1 forms, compared by introspection);
//! * applied to databases holding rows from every earlier version, every row is still there,
//!   changed only as the step says;
//! * `--check` passes.

mod common;

use common::*;
use rusqlite::Connection;

const V1: &str = r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    #[nanotype(default = false)]
    pub done: bool,
    pub estimate: Option<i32>,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V2_ADD_COLUMNS: &str = r#"
#[nanotype::table(name = "todo")]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    #[nanotype(default = false)]
    pub done: bool,
    pub estimate: Option<i32>,
    pub due: Option<i64>,
    #[nanotype(default = 1)]
    pub priority: i32,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V3_ADD_INDEXES: &str = r#"
#[nanotype::table(name = "todo", index(priority, due))]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<i32>,
    pub due: Option<i64>,
    #[nanotype(default = 1)]
    pub priority: i32,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V4_RENAME_COLUMN: &str = r#"
#[nanotype::table(name = "todo", index(priority, due))]
pub struct Todo {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(renamed_from = "title")]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<i32>,
    pub due: Option<i64>,
    #[nanotype(default = 1)]
    pub priority: i32,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V5_RENAME_TABLE: &str = r#"
#[nanotype::table(name = "tasks", renamed_from = "todo", index(priority, due))]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(renamed_from = "title")]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<i32>,
    pub due: Option<i64>,
    #[nanotype(default = 1)]
    pub priority: i32,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V6_CHANGE_TYPE: &str = r#"
#[nanotype::table(name = "tasks", renamed_from = "todo", index(priority, due))]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(renamed_from = "title")]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<String>,
    pub due: Option<i64>,
    #[nanotype(default = 1)]
    pub priority: i32,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V7_NOT_NULL_WITH_DEFAULT: &str = r#"
#[nanotype::table(name = "tasks", renamed_from = "todo", index(priority, due))]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(renamed_from = "title")]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<String>,
    #[nanotype(default = 0)]
    pub due: i64,
    #[nanotype(default = 1)]
    pub priority: i32,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V8_DROP_COLUMN: &str = r#"
#[nanotype::table(name = "tasks", renamed_from = "todo", index(due))]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(renamed_from = "title")]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<String>,
    #[nanotype(default = 0)]
    pub due: i64,
}

#[nanotype::table(name = "notes")]
pub struct Note {
    #[nanotype(primary_key)]
    pub slug: String,
    pub body: String,
}
"#;

const V9_DROP_TABLE_ADD_UNIQUE: &str = r#"
#[nanotype::table(name = "tasks", renamed_from = "todo", index(due))]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(renamed_from = "title", unique)]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<String>,
    #[nanotype(default = 0)]
    pub due: i64,
}
"#;

const V10_CHANGE_KEY_TYPE: &str = r#"
#[nanotype::table(name = "tasks", renamed_from = "todo", index(due))]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i32,
    #[nanotype(renamed_from = "title", unique)]
    pub name: String,
    #[nanotype(index, default = false)]
    pub done: bool,
    pub estimate: Option<String>,
    #[nanotype(default = 0)]
    pub due: i64,
}
"#;

struct Step {
    what: &'static str,
    source: &'static str,
    /// The migration's file name, without number and `.sql`.
    name: &'static str,
    /// Refused without `--allow-data-loss`, naming this.
    loses: Option<&'static str>,
    /// What the step does to the rows already there.
    rows: fn(&mut Rows),
}

fn each(rows: &mut Rows, table: &str, f: impl Fn(&mut Row)) {
    for r in rows.get_mut(table).into_iter().flatten() {
        f(r);
    }
}

fn steps() -> Vec<Step> {
    vec![
        Step {
            what: "create two tables",
            source: V1,
            name: "create_todo_notes",
            loses: None,
            rows: |rows| {
                rows.insert("todo".into(), Vec::new());
                rows.insert("notes".into(), Vec::new());
            },
        },
        Step {
            what: "add a nullable column and a NOT NULL column with a default",
            source: V2_ADD_COLUMNS,
            name: "add_todo_due_priority",
            loses: None,
            rows: |rows| {
                each(rows, "todo", |r| {
                    r.insert("due".into(), "n".into());
                    r.insert("priority".into(), "i:1".into());
                });
            },
        },
        Step {
            what: "add a single-column and a composite index",
            source: V3_ADD_INDEXES,
            name: "index_todo_done_idx_priority_due_idx",
            loses: None,
            rows: |_| {},
        },
        Step {
            what: "rename a column",
            source: V4_RENAME_COLUMN,
            name: "rename_todo_title_to_name",
            loses: None,
            rows: |rows| {
                each(rows, "todo", |r| {
                    let v = r.remove("title").unwrap();
                    r.insert("name".into(), v);
                });
            },
        },
        Step {
            what: "rename a table (its default-named indexes follow the new name)",
            source: V5_RENAME_TABLE,
            name: "rename_todo_to_tasks",
            loses: None,
            rows: |rows| {
                let r = rows.remove("todo").unwrap();
                rows.insert("tasks".into(), r);
            },
        },
        Step {
            what: "change a column's type (i32 → String): a rebuild",
            source: V6_CHANGE_TYPE,
            name: "alter_tasks",
            loses: None,
            rows: |rows| {
                each(rows, "tasks", |r| {
                    let v = r.get_mut("estimate").unwrap();
                    if let Some(i) = v.strip_prefix("i:") {
                        *v = format!("t:{i}");
                    }
                });
            },
        },
        Step {
            what: "make a column NOT NULL with a default: NULLs take the default",
            source: V7_NOT_NULL_WITH_DEFAULT,
            name: "alter_tasks",
            loses: None,
            rows: |rows| {
                each(rows, "tasks", |r| {
                    let v = r.get_mut("due").unwrap();
                    if v == "n" {
                        *v = "i:0".into();
                    }
                });
            },
        },
        Step {
            what: "drop a column (and the index over it), with --allow-data-loss",
            source: V8_DROP_COLUMN,
            name: "drop_tasks_priority",
            loses: Some("column `tasks.priority`"),
            rows: |rows| {
                each(rows, "tasks", |r| {
                    r.remove("priority");
                });
            },
        },
        Step {
            what: "drop a table and add a unique index, with --allow-data-loss",
            source: V9_DROP_TABLE_ADD_UNIQUE,
            name: "drop_notes",
            loses: Some("table `notes`"),
            rows: |rows| {
                rows.remove("notes");
            },
        },
        Step {
            what: "change the key's type (i64 → i32 is declared NOT NULL): a rebuild",
            source: V10_CHANGE_KEY_TYPE,
            name: "alter_tasks",
            loses: None,
            rows: |_| {},
        },
    ]
}

#[test]
fn ten_versions_of_a_schema() {
    let p = Project::new();
    // The databases that live through every version, as deployed ones do.
    let live_do = Connection::open_in_memory().unwrap();
    let live_d1 = Connection::open_in_memory().unwrap();

    for (i, step) in steps().iter().enumerate() {
        let number = i + 1;
        let ctx = format!("step {number} ({})", step.what);

        // Rows written by the previous version.
        if number > 1 {
            let previous = p.target();
            let first = number as i64 * 100;
            insert_rows(&live_do, &previous, Side::Primary, first, 3);
            insert_rows(&live_d1, &previous, Side::Replica, first, 3);
        }
        let before_do = rows(&live_do);
        let before_d1 = rows(&live_d1);

        p.write_schema(step.source);
        let files_before = file_names(&p.d1_dir()).len();
        if let Some(lost) = step.loses {
            let out = p.fails(&[]);
            assert!(
                out.contains(lost),
                "{ctx}: refusal should name {lost}:\n{out}"
            );
            assert!(out.contains("--allow-data-loss"), "{ctx}:\n{out}");
            assert!(out.contains("nothing written"), "{ctx}:\n{out}");
            assert_eq!(file_names(&p.d1_dir()).len(), files_before, "{ctx}");
            p.ok(&["--allow-data-loss"]);
        } else {
            let out = p.ok(&[]);
            assert!(out.contains("Wrote"), "{ctx}:\n{out}");
        }

        // One new file in each folder, named for the change.
        let expected_name = format!("{number:04}_{}.sql", step.name);
        let d1_files = sql_files(&p.d1_dir());
        let do_files = sql_files(&p.do_dir());
        assert_eq!(d1_files.len(), number, "{ctx}");
        assert_eq!(do_files.len(), number, "{ctx}");
        assert_eq!(file_names(&p.d1_dir())[i], expected_name, "{ctx}");
        assert_eq!(file_names(&p.do_dir())[i], expected_name, "{ctx}");

        // Incrementally: the rows survive, changed only as the step says.
        apply_files(&live_do, &do_files[i..]);
        apply_files(&live_d1, &d1_files[i..]);
        let mut expected_do = before_do;
        (step.rows)(&mut expected_do);
        let mut expected_d1 = before_d1;
        (step.rows)(&mut expected_d1);
        assert_eq!(rows(&live_do), expected_do, "{ctx}: Durable Object rows");
        assert_eq!(rows(&live_d1), expected_d1, "{ctx}: D1 rows");

        // From scratch, and incrementally: exactly the schema `ddl` renders for the structs.
        let target = p.target();
        for (side, files, live) in [
            (Side::Primary, &do_files, &live_do),
            (Side::Replica, &d1_files, &live_d1),
        ] {
            let fresh = Connection::open_in_memory().unwrap();
            apply_files(&fresh, files);
            let expected = dump(&expected_db(&target, side));
            assert_eq!(dump(&fresh), expected, "{ctx}: {side:?} from scratch");
            assert_eq!(dump(live), expected, "{ctx}: {side:?} migrated");
        }

        let out = p.ok(&["--check"]);
        assert!(out.contains("match the structs"), "{ctx}:\n{out}");
    }

    // The same structs again: nothing to write.
    let out = p.ok(&[]);
    assert!(out.contains("Nothing to do"), "{out}");
    assert_eq!(file_names(&p.d1_dir()).len(), 10);

    // Every row written along the way is still in the tasks table.
    let tasks = &rows(&live_do)["tasks"];
    assert_eq!(tasks.len(), 9 * 3);
    assert_eq!(rows(&live_d1)["tasks"].len(), 9 * 3 * 2);
}
