//! Expand and contract: a column renamed and another dropped, written as two D1 steps. Between
//! them D1 serves both Worker versions at once — the old one writing and reading `title` and
//! `legacy`, the new one `name` — with every row the same for both, foreign keys on and each
//! file applied in one transaction as `wrangler d1 migrations apply` does. After the contract, D1
//! is exactly what the structs declare and every row is still there.

mod common;

use common::*;
use rusqlite::Connection;

const V1: &str = r#"
#[nanotype::table(name = "tasks")]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index)]
    pub title: String,
    pub legacy: i32,
    pub status: String,
}

#[nanotype::table(name = "comments")]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "tasks.id", on_delete = "cascade")]
    pub task_id: i64,
    pub body: String,
}
"#;

fn v2() -> String {
    V1.replace(
        "    #[nanotype(index)]\n    pub title: String,\n    pub legacy: i32,\n",
        "    #[nanotype(index, renamed_from = \"title\")]\n    pub name: String,\n",
    )
}

/// What a Worker's replication sends: a multi-column upsert of the columns its structs know.
fn upsert(c: &Connection, columns: &[&str], values: &str) {
    let set: Vec<String> = columns
        .iter()
        .filter(|c| **c != "id")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    c.execute_batch(&format!(
        "INSERT INTO tasks (room_id, {}) VALUES ('r', {values}) ON CONFLICT (room_id, id) DO UPDATE SET {}",
        columns.join(", "),
        set.join(", ")
    ))
    .unwrap_or_else(|e| panic!("upsert of {columns:?} refused: {e}"));
}

fn read(c: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn both_worker_versions_work_between_expand_and_contract_and_no_row_is_lost() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    let (room, d1) = (fk_db(), fk_db());
    apply_in_transactions(&room, &sql_files(&p.do_dir()));
    apply_in_transactions(&d1, &sql_files(&p.d1_dir()));
    d1.execute_batch(
        "INSERT INTO tasks (room_id, id, title, legacy, status) VALUES ('r', 1, 'one', 7, 'open'), ('r', 2, 'two', 8, 'done');
         INSERT INTO comments (room_id, id, task_id, body) VALUES ('r', 1, 1, 'c1'), ('r', 2, 2, 'c2');",
    )
    .unwrap();

    // The rename and the drop, as an expand step.
    p.write_schema(&v2());
    let refused = p.fails(&["--expand"]);
    assert!(refused.contains("--allow-data-loss"), "{refused}");
    let out = p.ok(&["--expand", "--allow-data-loss"]);
    assert!(out.contains("expand step"), "{out}");
    let files = (sql_files(&p.do_dir()), sql_files(&p.d1_dir()));
    assert_eq!(files.1.len(), 2);
    assert!(file_names(&p.d1_dir())[1].contains("_expand_"), "{out}");
    apply_in_transactions(&room, &files.0[1..]);
    apply_in_transactions(&d1, &files.1[1..]);
    // The room made the real change.
    assert_eq!(
        read(
            &room,
            "SELECT name FROM pragma_table_info('tasks') ORDER BY name"
        ),
        ["id", "name", "status"]
    );
    // gen-migrations reads the expanded D1 back: nothing to do, the contract pending.
    let check = p.ok(&["--check"]);
    assert!(check.contains("match the structs"), "{check}");
    assert!(check.contains("waits for its contract"), "{check}");
    // Further changes wait for the contract.
    p.write_schema(&v2().replace(
        "    pub status: String,\n",
        "    pub status: String,\n    pub due: Option<i64>,\n",
    ));
    let waits = p.fails(&[]);
    assert!(waits.contains("waits for its contract"), "{waits}");
    p.write_schema(&v2());

    // Both versions at once: the old Worker writes and reads `title` and `legacy`, the new one
    // `name`; each sees the other's writes.
    upsert(
        &d1,
        &["id", "title", "legacy", "status"],
        "3, 'old-worker', 9, 'open'",
    );
    upsert(&d1, &["id", "name", "status"], "4, 'new-worker', 'open'");
    upsert(
        &d1,
        &["id", "name", "status"],
        "1, 'one, renamed by new', 'open'",
    );
    upsert(
        &d1,
        &["id", "title", "legacy", "status"],
        "2, 'two, renamed by old', 8, 'done'",
    );
    let old_view = read(
        &d1,
        "SELECT id, title FROM tasks WHERE room_id = 'r' ORDER BY id",
    );
    let new_view = read(
        &d1,
        "SELECT id, name FROM tasks WHERE room_id = 'r' ORDER BY id",
    );
    assert_eq!(
        new_view,
        [
            "1|one, renamed by new",
            "2|two, renamed by old",
            "3|old-worker",
            "4|new-worker"
        ]
    );
    assert_eq!(old_view, new_view, "both names hold the same value");
    // The old Worker's index on `title` is there for its reads, and the new one's on `name`.
    let indexes = read(
        &d1,
        "SELECT name FROM pragma_index_list('tasks') ORDER BY name",
    );
    assert!(indexes.iter().any(|i| i.contains("title")), "{indexes:?}");
    assert!(indexes.iter().any(|i| i.contains("name")), "{indexes:?}");
    assert_eq!(fk_problems(&d1), 0);

    // The contract: D1 becomes exactly what the structs declare; the rows stay.
    let out = p.ok(&["--contract"]);
    assert!(out.contains("contract step"), "{out}");
    let files = (sql_files(&p.do_dir()), sql_files(&p.d1_dir()));
    assert_eq!(files.1.len(), 3);
    apply_in_transactions(&room, &files.0[2..]);
    apply_in_transactions(&d1, &files.1[2..]);
    let target = p.target();
    let mut want = dump(&expected_db(&target, Side::Replica));
    let mut got = dump(&d1);
    for d in [&mut want, &mut got] {
        d.remove("d1_migrations");
    }
    assert_eq!(
        got, want,
        "D1 after the contract is what the structs declare"
    );
    // And in the structs' column order (the expand added `name` last).
    assert_eq!(
        read(
            &d1,
            "SELECT group_concat(name, ',') FROM pragma_table_info('tasks')"
        ),
        ["room_id,id,name,status"],
        "the contract keeps the struct's column order"
    );
    assert_eq!(
        read(&d1, "SELECT id, name, status FROM tasks ORDER BY id"),
        [
            "1|one, renamed by new|open",
            "2|two, renamed by old|done",
            "3|old-worker|open",
            "4|new-worker|open"
        ]
    );
    assert_eq!(
        read(&d1, "SELECT COUNT(*) FROM comments"),
        ["2"],
        "the rows referencing the table are kept"
    );
    assert_eq!(fk_problems(&d1), 0);
    let triggers = read(&d1, "SELECT name FROM sqlite_schema WHERE type = 'trigger'");
    assert!(triggers.is_empty(), "{triggers:?}");
    let check = p.ok(&["--check"]);
    assert!(check.contains("match the structs"), "{check}");
    assert!(!check.contains("contract"), "{check}");
    assert!(p.fails(&["--contract"]).contains("no expand step"));
}

#[test]
fn changes_without_expand_and_contract_steps_are_refused_with_why() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    p.write_schema(&V1.replace(
        "name = \"comments\")]",
        "name = \"notes\", renamed_from = \"comments\")]",
    ));
    let out = p.fails(&["--expand"]);
    assert!(out.contains("table `comments` renamed to `notes`"), "{out}");
    p.write_schema(&V1.replace(
        "    pub status: String,\n",
        "    pub status: String,\n    pub due: Option<i64>,\n",
    ));
    let out = p.fails(&["--expand"]);
    assert!(out.contains("without --expand"), "{out}");
    // A renamed foreign key column is one step.
    p.write_schema(
        &V1.replace(
            "    pub task_id: i64,",
            "    #[nanotype(renamed_from = \"task_id\")]\n    pub task: i64,",
        )
        .replace(
            "references = \"tasks.id\", on_delete = \"cascade\")]\n    #[nanotype(renamed_from",
            "references = \"tasks.id\", on_delete = \"cascade\", renamed_from",
        ),
    );
    let out = p.fails(&["--expand"]);
    assert!(out.contains("foreign key"), "{out}");
}
