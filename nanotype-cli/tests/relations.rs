//! Foreign keys through gen-migrations, checked the way that caught drizzle-kit losing child rows:
//! migrations applied with foreign keys on (D1 cannot turn them off), each file inside one
//! transaction as `wrangler d1 migrations apply` runs it, rows counted in every table before and
//! after, and `PRAGMA foreign_key_check` clean.

mod common;

use common::*;
use rusqlite::Connection;

const V1: &str = r#"
#[nanotype::table(name = "tasks")]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
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

#[nanotype::table(name = "reactions")]
pub struct Reaction {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "comments.id", on_delete = "cascade")]
    pub comment_id: i64,
    pub emoji: String,
}

#[nanotype::table(name = "parts")]
pub struct Part {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "parts.id", on_delete = "set_null")]
    pub parent_id: Option<i64>,
    pub name: String,
}
"#;

fn counts(c: &Connection) -> Vec<(String, i64)> {
    ["tasks", "comments", "reactions", "parts"]
        .iter()
        .map(|t| {
            let n: i64 = c
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t.to_string(), n)
        })
        .collect()
}

fn fill(c: &Connection, room: Option<&str>) {
    let (cols, val) = match room {
        Some(r) => ("room_id, ", format!("'{r}', ")),
        None => ("", String::new()),
    };
    let mut sql = String::new();
    for t in 1..=3 {
        sql += &format!(
            "INSERT INTO tasks ({cols}id, title, status) VALUES ({val}{t}, 't{t}', 'open');\n"
        );
    }
    for (id, task) in [(1, 1), (2, 1), (3, 2), (4, 3), (5, 3)] {
        sql += &format!(
            "INSERT INTO comments ({cols}id, task_id, body) VALUES ({val}{id}, {task}, 'c');\n"
        );
    }
    for (id, comment) in [(1, 1), (2, 1), (3, 4), (4, 5)] {
        sql += &format!("INSERT INTO reactions ({cols}id, comment_id, emoji) VALUES ({val}{id}, {comment}, ':)');\n");
    }
    for (id, parent) in [(1, "NULL"), (2, "1"), (3, "2"), (4, "1")] {
        sql += &format!(
            "INSERT INTO parts ({cols}id, parent_id, name) VALUES ({val}{id}, {parent}, 'p');\n"
        );
    }
    c.execute_batch(&sql).unwrap();
}

#[test]
fn references_are_declared_on_both_sides_and_read_back() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    let d1 = std::fs::read_to_string(&sql_files(&p.d1_dir())[0]).unwrap();
    assert!(
        d1.contains("FOREIGN KEY (\"room_id\", \"task_id\") REFERENCES \"tasks\" (\"room_id\", \"id\") ON DELETE CASCADE"),
        "{d1}"
    );
    let dobj = std::fs::read_to_string(&sql_files(&p.do_dir())[0]).unwrap();
    assert!(
        dobj.contains(
            "\"task_id\" INTEGER NOT NULL REFERENCES \"tasks\" (\"id\") ON DELETE CASCADE"
        ),
        "{dobj}"
    );
    assert!(
        dobj.contains("REFERENCES \"parts\" (\"id\") ON DELETE SET NULL"),
        "{dobj}"
    );
    // Replayed, the references are what the structs say: nothing to do.
    assert!(p.ok(&["--check"]).contains("match the structs"));
    // A reference changed: the child is rebuilt to carry it.
    p.write_schema(&V1.replace(
        "#[nanotype(references = \"comments.id\", on_delete = \"cascade\")]",
        "#[nanotype(references = \"comments.id\", on_delete = \"restrict\")]",
    ));
    let out = p.ok(&["--dry-run"]);
    assert!(out.contains("rebuild table `reactions`"), "{out}");
    assert!(
        out.contains("references comments.id ON DELETE RESTRICT"),
        "{out}"
    );
}

#[test]
fn a_parent_rebuilt_with_its_children_keeps_every_row_with_foreign_keys_on() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    let (primary, replica) = (fk_db(), fk_db());
    apply_in_transactions(&primary, &sql_files(&p.do_dir()));
    apply_in_transactions(&replica, &sql_files(&p.d1_dir()));
    fill(&primary, None);
    fill(&replica, Some("r"));
    let before = (counts(&primary), counts(&replica));

    // `tasks.status` gets a default, `parts.name` too: both tables must be rebuilt, and with them
    // every table below them (comments and reactions under tasks; parts under itself).
    p.write_schema(
        &V1.replace(
            "    pub status: String,",
            "    #[nanotype(default = \"open\")]\n    pub status: String,",
        )
        .replace(
            "    pub name: String,",
            "    #[nanotype(default = \"part\")]\n    pub name: String,",
        ),
    );
    let out = p.ok(&[]);
    assert!(
        out.contains("rebuild table `tasks`")
            && out.contains(
                "with `comments` (it references `tasks`), `reactions` (it references `tasks`)"
            ),
        "{out}"
    );
    assert!(out.contains("rebuild table `parts`"), "{out}");
    let new_do = sql_files(&p.do_dir()).pop().unwrap();
    let new_d1 = sql_files(&p.d1_dir()).pop().unwrap();
    for f in [&new_do, &new_d1] {
        let text = std::fs::read_to_string(f).unwrap();
        let statements: Vec<&str> = text.lines().filter(|l| !l.starts_with("--")).collect();
        assert!(
            !statements
                .iter()
                .any(|l| l.to_ascii_uppercase().contains("PRAGMA")),
            "no PRAGMA: {text}"
        );
    }
    apply_in_transactions(&primary, &[new_do]);
    apply_in_transactions(&replica, &[new_d1]);
    assert_eq!(
        (counts(&primary), counts(&replica)),
        before,
        "rows before = after"
    );
    assert_eq!(fk_problems(&primary), 0);
    assert_eq!(fk_problems(&replica), 0);
    // The references still hold, and still cascade.
    primary
        .execute_batch("DELETE FROM tasks WHERE id = 1")
        .unwrap();
    assert_eq!(counts(&primary)[1], ("comments".into(), 3));
    assert_eq!(counts(&primary)[2], ("reactions".into(), 2));
    replica
        .execute_batch("DELETE FROM tasks WHERE room_id = 'r' AND id = 1")
        .unwrap();
    assert_eq!(counts(&replica)[2], ("reactions".into(), 2));
    assert!(p.ok(&["--check"]).contains("match the structs"));
}

#[test]
fn a_referenced_table_cannot_be_dropped_nor_a_child_changed_during_its_rebuild() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    // Dropping `tasks` while `comments` references it: refused (and the schema check says so).
    let without_tasks = V1.replace(
        "#[nanotype::table(name = \"tasks\")]\npub struct Task {\n    #[nanotype(primary_key)]\n    pub id: i64,\n    pub title: String,\n    pub status: String,\n}\n",
        "",
    );
    p.write_schema(&without_tasks);
    let out = p.fails(&["--allow-data-loss"]);
    assert!(out.contains("no table `tasks` is in the schema"), "{out}");
    // Rebuilding `tasks` while adding a column to `comments`: one at a time.
    p.write_schema(
        &V1.replace(
            "    pub status: String,",
            "    #[nanotype(default = \"open\")]\n    pub status: String,",
        )
        .replace(
            "    pub body: String,",
            "    pub body: String,\n    pub edited: Option<i64>,",
        ),
    );
    let out = p.fails(&[]);
    assert!(out.contains("in a migration of its own first"), "{out}");
}

const SLOTS: &str = r#"
#[nanotype::table(name = "slots", unique(owner, day, where = "cancelled = 0"), check = "starts_at < ends_at")]
pub struct Slot {
    #[nanotype(primary_key)]
    pub id: i64,
    pub owner: String,
    pub day: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub cancelled: bool,
}
"#;

#[test]
fn partial_indexes_and_checks_are_declared_read_back_and_enforced() {
    let p = Project::new();
    p.write_schema(SLOTS);
    p.ok(&[]);
    let dobj = std::fs::read_to_string(&sql_files(&p.do_dir())[0]).unwrap();
    assert!(dobj.contains("CHECK (starts_at < ends_at)"), "{dobj}");
    assert!(
        dobj.contains("CREATE UNIQUE INDEX \"slots_owner_day_key\" ON \"slots\" (\"owner\", \"day\") WHERE cancelled = 0;"),
        "{dobj}"
    );
    let d1 = std::fs::read_to_string(&sql_files(&p.d1_dir())[0]).unwrap();
    assert!(
        d1.contains("(\"room_id\", \"owner\", \"day\") WHERE cancelled = 0;"),
        "{d1}"
    );
    // Replayed, the condition and the check are what the struct says.
    assert!(p.ok(&["--check"]).contains("match the structs"));

    // Enforced: a cancelled duplicate is allowed, a live one and a backwards slot are not.
    let c = fk_db();
    apply_in_transactions(&c, &sql_files(&p.do_dir()));
    let insert = |id: i64, day: i64, start: i64, end: i64, cancelled: i64| {
        c.execute(
            "INSERT INTO slots (id, owner, day, starts_at, ends_at, cancelled) VALUES (?1, 'a', ?2, ?3, ?4, ?5)",
            rusqlite::params![id, day, start, end, cancelled],
        )
    };
    insert(1, 1, 9, 10, 0).unwrap();
    insert(2, 1, 9, 10, 1).unwrap();
    assert!(
        insert(3, 1, 11, 12, 0).is_err(),
        "a second live slot that day"
    );
    assert!(insert(4, 2, 12, 11, 0).is_err(), "the check");

    // Another condition: the index is replaced; another check: the table is rebuilt, rows kept.
    p.write_schema(&SLOTS.replace(
        "where = \"cancelled = 0\"",
        "where = \"cancelled = 0 AND day > 0\"",
    ));
    let out = p.ok(&["--dry-run"]);
    assert!(out.contains("drop index `slots_owner_day_key`"), "{out}");
    assert!(out.contains("WHERE cancelled = 0 AND day > 0"), "{out}");
    p.write_schema(&SLOTS.replace("starts_at < ends_at", "starts_at <= ends_at"));
    let out = p.ok(&[]);
    assert!(
        out.contains("rebuild table `slots`") && out.contains("checks change"),
        "{out}"
    );
    apply_in_transactions(&c, &[sql_files(&p.do_dir()).pop().unwrap()]);
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM slots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    assert!(p.ok(&["--check"]).contains("match the structs"));
}

const MEMBERS_V1: &str = r#"
#[nanotype::table(name = "teams")]
pub struct Team {
    #[nanotype(primary_key)]
    pub id: i64,
    pub name: String,
}

#[nanotype::table(name = "members")]
pub struct Member {
    #[nanotype(primary_key, references = "teams.id", on_delete = "cascade")]
    pub team_id: i64,
    #[nanotype(primary_key)]
    pub user: String,
    pub role: String,
}
"#;

fn member_keys(c: &Connection) -> Vec<(i64, String, String)> {
    c.prepare("SELECT team_id, user, role FROM members ORDER BY team_id, user")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn key_columns(c: &Connection, table: &str) -> Vec<String> {
    let mut cols: Vec<(i64, String)> = c
        .prepare(&format!(
            "SELECT pk, name FROM pragma_table_info('{table}') WHERE pk > 0"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    cols.sort();
    cols.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn a_composite_key_is_created_added_to_in_place_and_reordered_by_a_rebuild_keeping_its_rows() {
    let p = Project::new();
    p.write_schema(MEMBERS_V1);
    p.ok(&[]);
    let (primary, replica) = (fk_db(), fk_db());
    apply_in_transactions(&primary, &sql_files(&p.do_dir()));
    apply_in_transactions(&replica, &sql_files(&p.d1_dir()));
    assert_eq!(key_columns(&primary, "members"), ["team_id", "user"]);
    assert_eq!(
        key_columns(&replica, "members"),
        ["room_id", "team_id", "user"]
    );
    assert!(p.ok(&["--check"]).contains("match the structs"));
    for (c, room) in [(&primary, ""), (&replica, "'r', ")] {
        let cols = if room.is_empty() { "" } else { "room_id, " };
        c.execute_batch(&format!(
            "INSERT INTO teams ({cols}id, name) VALUES ({room}1, 'a'), ({room}2, 'b');
             INSERT INTO members ({cols}team_id, user, role) VALUES
                 ({room}1, 'ada', 'lead'), ({room}1, 'bo', 'dev'), ({room}2, 'ada', 'dev');"
        ))
        .unwrap();
    }
    let before = member_keys(&primary);

    // A column added: in place, the key untouched.
    let v2 = MEMBERS_V1.replace(
        "    pub role: String,\n",
        "    pub role: String,\n    pub note: Option<String>,\n",
    );
    p.write_schema(&v2);
    let out = p.ok(&[]);
    assert!(out.contains("add column `members.note`"), "{out}");
    assert!(!out.contains("rebuild"), "{out}");

    // The key's order changed (user first): the table is rebuilt, its rows kept.
    let v3 = v2.replace(
        "    #[nanotype(primary_key, references = \"teams.id\", on_delete = \"cascade\")]\n    pub team_id: i64,\n    #[nanotype(primary_key)]\n    pub user: String,\n",
        "    #[nanotype(primary_key)]\n    pub user: String,\n    #[nanotype(primary_key, references = \"teams.id\", on_delete = \"cascade\")]\n    pub team_id: i64,\n",
    );
    assert_ne!(v2, v3);
    p.write_schema(&v3);
    let out = p.ok(&[]);
    assert!(out.contains("rebuild table `members`"), "{out}");
    assert!(out.contains("key"), "{out}");
    let files = [sql_files(&p.do_dir()), sql_files(&p.d1_dir())];
    apply_in_transactions(&primary, &files[0][1..]);
    apply_in_transactions(&replica, &files[1][1..]);
    assert_eq!(key_columns(&primary, "members"), ["user", "team_id"]);
    assert_eq!(
        key_columns(&replica, "members"),
        ["room_id", "user", "team_id"]
    );
    assert_eq!(member_keys(&primary), before, "rows before = after");
    assert_eq!(member_keys(&replica), before, "rows before = after");
    assert_eq!(fk_problems(&primary) + fk_problems(&replica), 0);
    assert!(p.ok(&["--check"]).contains("match the structs"));
    // Still one row per whole key, and still cascading.
    assert!(primary
        .execute_batch("INSERT INTO members (user, team_id, role) VALUES ('ada', 1, 'x')")
        .is_err());
    primary
        .execute_batch("DELETE FROM teams WHERE id = 1")
        .unwrap();
    assert_eq!(member_keys(&primary).len(), 1);
}

#[test]
fn a_table_carried_along_with_a_change_of_its_own_names_it_in_the_summary_and_the_deploy_line() {
    let p = Project::new();
    p.write_schema(V1);
    p.ok(&[]);
    p.write_schema(
        &V1.replace(
            "    pub status: String,",
            "    #[nanotype(default = \"open\")]\n    pub status: String,",
        )
        .replace("    pub body: String,", "    pub body: Option<String>,"),
    );
    let out = p.ok(&[]);
    let summary = out
        .lines()
        .find(|l| l.contains("rebuild table `tasks`"))
        .unwrap();
    assert!(
        summary.contains("`comments` (it references `tasks`; "),
        "{out}"
    );
    assert!(
        summary[summary.find("`comments` (").unwrap()..].contains("`body`"),
        "{out}"
    );
    let deploy = out.lines().find(|l| l.starts_with("Deploy:")).unwrap();
    assert!(
        deploy.contains("table `comments` rebuilt with it: "),
        "{deploy}"
    );
    assert!(deploy.contains("`body`"), "{deploy}");
}
