//! The usual mistakes, caught where they are made and answered with their fix: a struct changed
//! without its migration, a filter on a field that cannot filter, a reference to a row that does
//! not exist.

use nanotype::api::RoomTokens;
use nanotype::native::TestApp;
use serde_json::json;

/// `title` was a `String` and `pinned` did not exist when the migration in
/// `tests/migrations/mismatch` was written.
#[nanotype::table(name = "notes")]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Note {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: i64,
    pub pinned: bool,
}

nanotype::schema!(Stale = [Note], migrations = "tests/migrations/mismatch");

/// An app of schema `S` whose one token sees every room.
fn app<S: nanotype::Schema>() -> TestApp<S, (), RoomTokens> {
    TestApp::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .token("t")
}

fn stale_app() -> TestApp<Stale, (), RoomTokens> {
    app()
}

#[test]
fn a_struct_changed_without_its_migration_is_one_503_naming_each_column_and_the_fix() {
    let app = stale_app();
    let made = app.post("/rooms/r/notes", json!({"title": 1, "pinned": false}));
    assert_eq!(made.status, 503, "{}", made.json_body());
    let error = &made.json_body()["error"];
    assert_eq!(error["code"], "schema_mismatch", "{error}");
    let message = error["message"].as_str().unwrap();
    for part in [
        "notes.title",
        "notes.pinned",
        "cargo run --bin gen-migrations",
    ] {
        assert!(message.contains(part), "{part} not in {message}");
    }
    // Nothing was written: the room is still unborn, so a read of it has no rows.
    let read = app.get("/rooms/r/notes?consistency=strong");
    assert_eq!(read.json_body()["rows"], json!([]), "{}", read.json_body());
}

#[test]
fn a_room_an_earlier_build_made_answers_every_route_with_the_mismatch_and_keeps_its_rows() {
    let app = stale_app();
    // The room as the earlier build left it: its migration applied and recorded, one note.
    let sql = include_str!("migrations/mismatch/0001_create_notes.sql");
    let db = app.room_db("old").unwrap();
    db.connection().execute_batch(sql).unwrap();
    db.connection()
        .execute_batch(nanotype::migrate::LEDGER_DDL)
        .unwrap();
    db.connection()
        .execute(
            "INSERT INTO _nt_migrations (name, checksum) VALUES ('0001_create_notes', ?1)",
            [nanotype::migrate::checksum(sql)],
        )
        .unwrap();
    db.connection()
        .execute_batch(
            "CREATE TABLE _nt_meta (key TEXT PRIMARY KEY NOT NULL, value);
             INSERT INTO _nt_meta VALUES ('room_id', 'old');
             INSERT INTO notes (id, title) VALUES (1, 'kept');",
        )
        .unwrap();
    for (method, target, body) in [
        ("GET", "/rooms/old/notes?consistency=strong", json!(null)),
        ("GET", "/rooms/old/notes/1?consistency=strong", json!(null)),
        ("PATCH", "/rooms/old/notes/1", json!({"pinned": true})),
        (
            "POST",
            "/rooms/old/notes",
            json!({"title": 2, "pinned": true}),
        ),
    ] {
        let resp = app.call(method, target, body);
        assert_eq!(resp.status, 503, "{method} {target}: {}", resp.json_body());
        assert_eq!(resp.json_body()["error"]["code"], "schema_mismatch");
    }
    let kept: String = db
        .connection()
        .query_row("SELECT title FROM notes WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "kept");
}

#[nanotype::table(name = "tasks")]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index)]
    pub status: String,
    pub title: String,
}

#[nanotype::table(name = "comments")]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index, references = "tasks.id", on_delete = "cascade")]
    pub task_id: i64,
    pub body: String,
}

nanotype::schema!(Plain = [Task, Comment]);

fn plain_app() -> TestApp<Plain, (), RoomTokens> {
    app()
}

#[test]
fn a_d1_without_its_migrations_is_one_documented_code_with_the_command_and_writes_wait() {
    let app = plain_app();
    // A fresh D1 that `wrangler d1 migrations apply` never ran on.
    app.replica()
        .execute_batch("DROP TABLE \"tasks\"; DROP TABLE \"_nt_rooms\";")
        .unwrap();
    let made = app.post("/rooms/r/tasks", json!({"status": "open", "title": "a"}));
    assert_eq!(made.status, 201, "{}", made.json_body());
    app.settle();
    let status = app.get("/rooms/r/_sync").json_body();
    let last = status["health"]["lastError"].as_str().unwrap_or_default();
    assert!(last.contains("wrangler d1 migrations apply"), "{status}");
    assert_eq!(
        status["health"]["outboxDepth"], 1,
        "the write waits in the room: {status}"
    );

    for target in ["/_rooms", "/_across/tasks"] {
        let resp = app.get(target);
        assert_eq!(resp.status, 503, "{target}: {}", resp.json_body());
        let error = &resp.json_body()["error"];
        assert_eq!(error["code"], "replica_not_migrated", "{target}: {error}");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("nanotype migrate-d1"));
    }
    // A room's read falls back to the room, saying why.
    let read = app.get("/rooms/r/tasks");
    assert_eq!(read.status, 200);
    assert_eq!(read.json_body()["rows"].as_array().unwrap().len(), 1);
    let why = read.header("x-nanotype-fallback").unwrap_or_default();
    assert!(why.contains("wrangler d1 migrations apply"), "{why}");

    // Once the migrations are applied, the write that waited lands.
    app.replica()
        .execute_batch(&format!(
            "{}\n{}",
            nanotype::schema::ddl::REPLICA_META,
            <Task as nanotype::Table>::REPLICA_DDL
        ))
        .unwrap();
    app.advance(60_000);
    app.settle();
    let n: i64 = app
        .replica()
        .connection()
        .query_row("SELECT COUNT(*) FROM tasks WHERE room_id = 'r'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(app.get("/_rooms").status, 200);
}

#[test]
fn a_filter_on_a_field_without_an_index_says_how_to_give_it_one_and_lists_the_filters() {
    let app = plain_app();
    for target in ["/rooms/r/tasks?title=a", "/_across/tasks?title=a"] {
        let resp = app.get(target);
        assert_eq!(resp.status, 400, "{target}");
        let message = resp.json_body()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        for part in [
            "`title`",
            "#[nanotype(index)]",
            "gen-migrations",
            "filter: status",
        ] {
            assert!(message.contains(part), "{target}: {part} not in {message}");
        }
    }
    let resp = app.get("/rooms/r/tasks?sort=title");
    assert_eq!(resp.status, 400);
    let message = resp.json_body()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    for part in [
        "unknown query parameter `sort`",
        "consistency, seq, after, limit",
        "status",
    ] {
        assert!(message.contains(part), "{part} not in {message}");
    }
}

#[test]
fn a_reference_to_a_missing_row_names_the_column_and_the_value() {
    let app = plain_app();
    let task = app.post("/rooms/r/tasks", json!({"status": "open", "title": "a"}));
    let id = task.json_body()["row"]["id"].as_i64().unwrap();
    let bad = app.post("/rooms/r/comments", json!({"task_id": 4242, "body": "x"}));
    assert_eq!(bad.status, 409, "{}", bad.json_body());
    let error = &bad.json_body()["error"];
    assert_eq!(error["code"], "constraint_violation");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("column `comments.task_id`: no row in `tasks` with `id` = 4242"),
        "{message}"
    );
    // A patch that points an existing comment at a missing task says the same.
    let ok = app.post("/rooms/r/comments", json!({"task_id": id, "body": "x"}));
    assert_eq!(ok.status, 201, "{}", ok.json_body());
    let cid = ok.json_body()["row"]["id"].as_i64().unwrap();
    let patched = app.call(
        "PATCH",
        &format!("/rooms/r/comments/{cid}"),
        json!({"task_id": 7}),
    );
    assert_eq!(patched.status, 409, "{}", patched.json_body());
    let message = patched.json_body()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("`comments.task_id`") && message.contains("= 7"),
        "{message}"
    );
}
