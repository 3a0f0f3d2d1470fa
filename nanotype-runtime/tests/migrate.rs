//! The Durable Object's migration runner on a real SQLite (the native primary).

use nanotype::migrate::{apply, checksum, Migration, LEDGER};
use nanotype::native::NativePrimary;
use nanotype::{Error, Primary, Value};

const CREATE: Migration = Migration {
    name: "0001_create_tasks",
    sql: "CREATE TABLE \"tasks\" (\"id\" INTEGER PRIMARY KEY, \"title\" TEXT NOT NULL);",
};
const ADD: Migration = Migration {
    name: "0002_add_tasks_due",
    sql: "ALTER TABLE \"tasks\" ADD COLUMN \"due\" INTEGER;\n\
          CREATE INDEX \"tasks_due_idx\" ON \"tasks\" (\"due\");",
};

fn tables(db: &NativePrimary) -> Vec<String> {
    db.query(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
        &[],
    )
    .unwrap()
    .into_iter()
    .map(|r| match &r[0] {
        Value::Text(s) => s.clone(),
        v => panic!("{v:?}"),
    })
    .collect()
}

fn ledger(db: &NativePrimary) -> Vec<(String, String)> {
    db.query(
        &format!("SELECT name, checksum FROM \"{LEDGER}\" ORDER BY name"),
        &[],
    )
    .unwrap()
    .into_iter()
    .map(|r| match (&r[0], &r[1]) {
        (Value::Text(n), Value::Text(c)) => (n.clone(), c.clone()),
        v => panic!("{v:?}"),
    })
    .collect()
}

#[test]
fn applies_in_name_order_and_records_checksums() {
    let db = NativePrimary::open_in_memory().unwrap();
    // Given out of order: applied by name.
    assert_eq!(
        apply(&db, &[ADD, CREATE]).unwrap(),
        ["0001_create_tasks", "0002_add_tasks_due"]
    );
    assert_eq!(
        ledger(&db),
        [
            (CREATE.name.to_owned(), checksum(CREATE.sql)),
            (ADD.name.to_owned(), checksum(ADD.sql)),
        ]
    );
    assert_eq!(checksum("").len(), 64);
    let at = db
        .query("SELECT applied_at FROM \"_nt_migrations\" LIMIT 1", &[])
        .unwrap();
    assert!(matches!(at[0][0], Value::Integer(ms) if ms > 1_600_000_000_000));
}

#[test]
fn applying_twice_is_a_no_op() {
    let db = NativePrimary::open_in_memory().unwrap();
    apply(&db, &[CREATE]).unwrap();
    db.execute("INSERT INTO tasks (title) VALUES ('a')", &[])
        .unwrap();
    assert!(apply(&db, &[CREATE]).unwrap().is_empty());
    // Only the new one runs; the row is still there.
    assert_eq!(apply(&db, &[CREATE, ADD]).unwrap(), [ADD.name]);
    assert!(apply(&db, &[CREATE, ADD]).unwrap().is_empty());
    assert_eq!(
        db.query("SELECT count(*) FROM tasks", &[]).unwrap()[0][0],
        Value::Integer(1)
    );
}

#[test]
fn an_edited_migration_is_refused_by_name() {
    let db = NativePrimary::open_in_memory().unwrap();
    apply(&db, &[CREATE]).unwrap();
    let edited = Migration {
        name: CREATE.name,
        sql: "CREATE TABLE \"tasks\" (\"id\" INTEGER PRIMARY KEY);",
    };
    let err = apply(&db, &[edited, ADD]).unwrap_err();
    match &err {
        Error::MigrationChanged {
            name,
            applied,
            current,
        } => {
            assert_eq!(name, CREATE.name);
            assert_eq!(applied, &checksum(CREATE.sql));
            assert_eq!(current, &checksum(edited.sql));
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("0001_create_tasks"), "{err}");
    assert!(err.to_string().contains("restore the file"), "{err}");
    // Checked before anything runs: the newer migration was not applied.
    assert_eq!(ledger(&db).len(), 1);
    assert!(!tables(&db).contains(&"tasks_due_idx".to_owned()));
}

#[test]
fn a_failing_migration_keeps_nothing() {
    let db = NativePrimary::open_in_memory().unwrap();
    let broken = Migration {
        name: "0002_broken",
        // The first statement works; the second fails. Neither may stay.
        sql: "CREATE TABLE \"notes\" (\"id\" INTEGER PRIMARY KEY);\n\
              ALTER TABLE \"missing\" ADD COLUMN \"x\" INTEGER;",
    };
    let later = Migration {
        name: "0003_later",
        sql: "CREATE TABLE \"later\" (\"id\" INTEGER PRIMARY KEY);",
    };
    let err = apply(&db, &[CREATE, broken, later]).unwrap_err();
    match &err {
        Error::Migration { name, message } => {
            assert_eq!(name, "0002_broken");
            assert!(message.contains("missing"), "{message}");
        }
        e => panic!("{e:?}"),
    }
    // What the room's routes answer meanwhile: a 503 that names the migration.
    let api = nanotype::api::ApiError::from(err);
    assert_eq!((api.status, api.code), (503, "migration_failed"));
    assert!(api.message.contains("0002_broken"), "{}", api.message);
    assert!(
        api.message.contains("other rooms are not affected"),
        "{}",
        api.message
    );
    let t = tables(&db);
    assert!(t.contains(&"tasks".to_owned()), "{t:?}");
    assert!(!t.contains(&"notes".to_owned()), "{t:?}");
    assert!(!t.contains(&"later".to_owned()), "{t:?}");
    assert_eq!(ledger(&db).len(), 1);
    // Fixed, it applies on the next start.
    let fixed = Migration {
        name: "0002_broken",
        sql: "CREATE TABLE \"notes\" (\"id\" INTEGER PRIMARY KEY);",
    };
    assert_eq!(
        apply(&db, &[CREATE, fixed, later]).unwrap(),
        ["0002_broken", "0003_later"]
    );
}

#[test]
fn duplicate_names_are_refused() {
    let db = NativePrimary::open_in_memory().unwrap();
    let err = apply(&db, &[CREATE, CREATE]).unwrap_err();
    assert!(matches!(err, Error::Migration { .. }), "{err:?}");
}

/// The repo's committed Durable Object migrations, embedded by the macro as the example does.
const REPO: &[Migration] = nanotype::migrations!("../migrations/do");

#[test]
fn the_repos_migrations_embed_and_apply() {
    assert!(!REPO.is_empty());
    assert!(REPO.windows(2).all(|w| w[0].name < w[1].name));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/do");
    for m in REPO {
        let text = std::fs::read_to_string(format!("{dir}/{}.sql", m.name)).unwrap();
        assert_eq!(m.sql, text);
    }
    let db = NativePrimary::open_in_memory().unwrap();
    assert_eq!(apply(&db, REPO).unwrap().len(), REPO.len());
    assert!(apply(&db, REPO).unwrap().is_empty());
    let t = tables(&db);
    assert!(
        t.contains(&"tasks".to_owned()) && t.contains(&"comments".to_owned()),
        "{t:?}"
    );
}

/// The model the CREATE and ADD migrations build.
#[nanotype::table(name = "tasks")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
    #[nanotype(index)]
    pub due: Option<i64>,
}

#[test]
fn a_database_made_without_the_ledger_is_adopted_when_it_matches_the_structs() {
    use nanotype::migrate::apply_or_adopt;
    use nanotype::Table;
    // Made by hand (or by another app): the same tables, no ledger, rows in it.
    let db = NativePrimary::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, due INTEGER);
         CREATE INDEX tasks_due_idx ON tasks (due);
         INSERT INTO tasks (title) VALUES ('kept');",
    )
    .unwrap();
    let applied = apply_or_adopt(&db, &[CREATE, ADD], &[Task::DEF]).unwrap();
    assert!(applied.is_empty(), "nothing ran: {applied:?}");
    assert_eq!(
        ledger(&db).into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
        ["0001_create_tasks", "0002_add_tasks_due"],
        "the baseline records every migration"
    );
    let n = db.query("SELECT COUNT(*) FROM tasks", &[]).unwrap();
    assert_eq!(n[0][0], Value::Integer(1), "the rows are kept");
    // From then on, the ledger rules: a new migration applies, an adopted one does not again.
    let later = Migration {
        name: "0003_notes",
        sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY);",
    };
    assert_eq!(
        apply_or_adopt(&db, &[CREATE, ADD, later], &[Task::DEF]).unwrap(),
        ["0003_notes"]
    );
}

#[test]
fn a_database_that_differs_from_the_structs_is_refused_with_the_differences() {
    use nanotype::migrate::apply_or_adopt;
    use nanotype::Table;
    let db = NativePrimary::open_in_memory().unwrap();
    db.execute_batch("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, extra BLOB);")
        .unwrap();
    let err = apply_or_adopt(&db, &[CREATE, ADD], &[Task::DEF]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no migration ledger"), "{text}");
    assert!(text.contains("`tasks.title`"), "{text}");
    assert!(text.contains("`tasks.extra` is not in the model"), "{text}");
    assert!(
        text.contains("index `tasks_due_idx` on `tasks` is missing"),
        "{text}"
    );
    assert!(!tables(&db).contains(&LEDGER.to_owned()), "nothing written");
    // A fresh database is migrated as always.
    let fresh = NativePrimary::open_in_memory().unwrap();
    assert_eq!(
        apply_or_adopt(&fresh, &[CREATE, ADD], &[Task::DEF]).unwrap(),
        ["0001_create_tasks", "0002_add_tasks_due"]
    );
}
