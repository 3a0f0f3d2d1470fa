//! The tasks app's API run natively: the runtime's room code (the same as the Durable Object's)
//! over the native backend, with the app's schema, hooks and policy.

use nanotype::api::{self, route::route, Access, ApiError, Decision, Policy, Reply, RequestParts};
use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
use nanotype::sync::Engine;
use nanotype::Schema;
use serde_json::{json, Value};
use tasks_example::schema::App;
use tasks_example::{TaskHooks, TOKENS};

type TestEngine = Engine<NativePrimary, NativeReplica, ManualScheduler>;

fn room(name: &str) -> TestEngine {
    let db = NativePrimary::open_in_memory().unwrap();
    nanotype::migrate::apply(&db, App::MIGRATIONS).unwrap();
    let replica = NativeReplica::open_in_memory().unwrap();
    replica
        .execute_batch(nanotype::schema::ddl::REPLICA_META)
        .unwrap();
    for t in App::TABLES {
        replica
            .execute_batch(&nanotype::schema::ddl::replica_ddl(t.def))
            .unwrap();
    }
    Engine::builder(name)
        .schema::<App>()
        .replica(Some(replica))
        .open(db, ManualScheduler::at(1_000))
        .unwrap()
}

fn call(e: &TestEngine, method: &str, path: &str, body: Value) -> Result<Reply, ApiError> {
    call_keyed(e, method, path, body, None)
}

fn call_with_key(
    e: &TestEngine,
    method: &str,
    path: &str,
    body: Value,
    key: &str,
) -> Result<Reply, ApiError> {
    call_keyed(e, method, path, body, Some(key))
}

/// A request served by the room, as the Durable Object serves it.
fn call_keyed(
    e: &TestEngine,
    method: &str,
    path: &str,
    body: Value,
    idempotency_key: Option<&str>,
) -> Result<Reply, ApiError> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let r = route::<App>(method, path)?;
    let q = api::params::query_pairs(query)?;
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let req = api::RoomRequest {
        query: &q,
        body: &body,
        idempotency_key,
        ..Default::default()
    };
    api::room::serve(e, &TaskHooks, &r, &req)
}

#[test]
fn crud_on_both_tables_with_validation_and_the_custom_route() {
    let e = room("r1");
    let created = call(&e, "POST", "/rooms/r1/tasks", json!({"title": "ship"})).unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(created.seq, Some(1));
    let task = &created.body["row"];
    assert_eq!(
        (
            task["id"].as_i64(),
            task["status"].as_str(),
            task["done"].as_bool()
        ),
        (Some(1), Some("open"), Some(false))
    );
    assert_eq!(task["created_at"], 1_000, "the hook set the creation time");
    assert_eq!(task["tags"], json!([]));

    let patched = call(&e, "PATCH", "/rooms/r1/tasks/1", json!({"status": "done"})).unwrap();
    assert_eq!(patched.body["row"]["done"], true);
    assert_eq!(
        patched.body["row"]["title"], "ship",
        "untouched fields stay"
    );
    let put = call(
        &e,
        "PUT",
        "/rooms/r1/tasks/7",
        json!({"title": "seven", "tags": ["a"]}),
    )
    .unwrap();
    assert_eq!(put.body["row"]["id"], 7);
    let c = call(
        &e,
        "POST",
        "/rooms/r1/comments",
        json!({"task_id": 7, "body": "hi"}),
    )
    .unwrap();
    assert_eq!(c.body["row"]["task_id"], 7);

    let open = call(
        &e,
        "GET",
        "/rooms/r1/tasks?status=open&consistency=strong",
        Value::Null,
    )
    .unwrap();
    assert_eq!(open.body["rows"].as_array().unwrap().len(), 1);
    let by_task = call(&e, "GET", "/rooms/r1/comments?task_id=7", Value::Null).unwrap();
    assert_eq!(by_task.body["rows"][0]["body"], "hi");

    let stats = call(&e, "GET", "/rooms/r1/stats", Value::Null).unwrap();
    assert_eq!(stats.body["tasks"], json!({"done": 1, "open": 1}));

    let deleted = call(&e, "DELETE", "/rooms/r1/tasks/1", Value::Null).unwrap();
    assert_eq!(
        (deleted.body["deleted"].as_i64(), deleted.seq),
        (Some(1), Some(5))
    );
    let gone = call(&e, "DELETE", "/rooms/r1/tasks/1", Value::Null).unwrap_err();
    assert_eq!((gone.status, gone.code), (404, "not_found"));

    // Everything written went through the outbox and replicates.
    pollster::block_on(e.sync()).unwrap();
    assert_eq!(e.health().unwrap().lag, 0);
}

#[test]
fn bad_writes_are_4xx_and_change_nothing() {
    let e = room("r2");
    let cases: &[(&str, &str, Value, u16, &str)] = &[
        ("POST", "/rooms/r2/tasks", json!({}), 400, "invalid_body"),
        (
            "POST",
            "/rooms/r2/tasks",
            json!({"title": "  "}),
            400,
            "rejected",
        ),
        (
            "POST",
            "/rooms/r2/tasks",
            json!({"title": 5}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/rooms/r2/tasks",
            json!({"title": "a", "x": 1}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/rooms/r2/tasks",
            json!({"title": "a", "id": 3}),
            400,
            "invalid_body",
        ),
        ("POST", "/rooms/r2/tasks", json!([1]), 400, "invalid_body"),
        (
            "POST",
            "/rooms/r2/tasks",
            json!({"title": "a", "tags": "x"}),
            400,
            "invalid_body",
        ),
        (
            "PATCH",
            "/rooms/r2/tasks/9",
            json!({"title": "b"}),
            404,
            "not_found",
        ),
        (
            "PUT",
            "/rooms/r2/tasks/9",
            json!({"title": "b", "id": 8}),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/rooms/r2/comments",
            json!({"task_id": 1, "body": ""}),
            400,
            "rejected",
        ),
        (
            "GET",
            "/rooms/r2/tasks?title=x",
            Value::Null,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/rooms/r2/tasks?limit=0",
            Value::Null,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/rooms/r2/tasks/abc",
            Value::Null,
            400,
            "invalid_key",
        ),
        ("GET", "/rooms/r2/nope", Value::Null, 404, "not_found"),
        ("GET", "/rooms/r2/_nope", Value::Null, 404, "not_found"),
        (
            "POST",
            "/rooms/r2/_sql",
            json!({"sql": "DELETE FROM tasks"}),
            400,
            "rejected",
        ),
        (
            "PUT",
            "/rooms/r2/tasks",
            json!({}),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/rooms/bad.name/tasks",
            Value::Null,
            400,
            "invalid_name",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let err = call(&e, method, path, body.clone()).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (*status, *code),
            "{method} {path} {body}: {err}"
        );
    }
    assert_eq!(e.current_seq().unwrap(), 0, "nothing was written");
}

#[test]
fn tokens_are_limited_to_their_rooms() {
    let env = |name: &str| (name == "API_TOKENS").then(|| "t-all=*,t-a=alpha-".to_owned());
    let access = Access {
        room: "alpha-1",
        table: Some("tasks"),
        operation: api::Operation::Read,
    };
    let with = |token: Option<&str>| RequestParts {
        headers: token
            .map(|t| vec![("authorization".into(), format!("Bearer {t}"))])
            .unwrap_or_default(),
        ..RequestParts::default()
    };
    assert!(matches!(
        TOKENS.authorize(&with(None), &env, &access),
        Decision::Unauthorized(_)
    ));
    assert!(matches!(
        TOKENS.authorize(&with(Some("nope")), &env, &access),
        Decision::Unauthorized(_)
    ));
    assert_eq!(
        TOKENS.authorize(&with(Some("t-a")), &env, &access),
        Decision::Allow
    );
    assert_eq!(
        TOKENS.authorize(&with(Some("t-all")), &env, &access),
        Decision::Allow
    );
    let other = Access {
        room: "beta-1",
        ..access
    };
    assert!(matches!(
        TOKENS.authorize(&with(Some("t-a")), &env, &other),
        Decision::Forbidden(_)
    ));
    assert_eq!(
        Decision::forbidden("x").into_result().unwrap_err().status,
        403
    );
}

#[test]
fn retried_writes_with_an_idempotency_key_are_applied_once() {
    let e = room("r3");
    let first = call_with_key(
        &e,
        "POST",
        "/rooms/r3/tasks",
        json!({"title": "once"}),
        "k-1",
    )
    .unwrap();
    let again = call_with_key(
        &e,
        "POST",
        "/rooms/r3/tasks",
        json!({"title": "once"}),
        "k-1",
    )
    .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(
        (again.status, &again.body, again.seq),
        (first.status, &first.body, first.seq)
    );
    let all = call(&e, "GET", "/rooms/r3/tasks?consistency=strong", Value::Null).unwrap();
    assert_eq!(
        all.body["rows"].as_array().unwrap().len(),
        1,
        "one row, not two"
    );

    // A retried PATCH does not undo a later change.
    call_with_key(
        &e,
        "PATCH",
        "/rooms/r3/tasks/1",
        json!({"status": "doing"}),
        "k-2",
    )
    .unwrap();
    call(&e, "PATCH", "/rooms/r3/tasks/1", json!({"status": "done"})).unwrap();
    let retry = call_with_key(
        &e,
        "PATCH",
        "/rooms/r3/tasks/1",
        json!({"status": "doing"}),
        "k-2",
    )
    .unwrap();
    assert_eq!(
        (retry.replayed, retry.body["row"]["status"].as_str()),
        (true, Some("doing"))
    );
    let now = call(
        &e,
        "GET",
        "/rooms/r3/tasks/1?consistency=strong",
        Value::Null,
    )
    .unwrap();
    assert_eq!(now.body["row"]["status"], "done");

    // A retried DELETE answers what the first did, not 404.
    let del = call_with_key(&e, "DELETE", "/rooms/r3/tasks/1", Value::Null, "k-3").unwrap();
    let del2 = call_with_key(&e, "DELETE", "/rooms/r3/tasks/1", Value::Null, "k-3").unwrap();
    assert_eq!(
        (del2.status, &del2.body, del2.replayed),
        (del.status, &del.body, true)
    );

    // The same key for another request is refused, and writes nothing.
    let seq = e.current_seq().unwrap();
    let reused = call_with_key(
        &e,
        "POST",
        "/rooms/r3/tasks",
        json!({"title": "other"}),
        "k-1",
    )
    .unwrap_err();
    assert_eq!(
        (reused.status, reused.code),
        (422, "idempotency_key_reused")
    );
    // A refused write is not remembered: the corrected request with the same key goes through.
    let bad =
        call_with_key(&e, "POST", "/rooms/r3/tasks", json!({"title": " "}), "k-4").unwrap_err();
    assert_eq!(bad.code, "rejected");
    assert_eq!(e.current_seq().unwrap(), seq, "nothing was written");
    assert_eq!(
        call_with_key(
            &e,
            "POST",
            "/rooms/r3/tasks",
            json!({"title": "fixed"}),
            "k-4"
        )
        .unwrap()
        .status,
        201
    );
    let bad_key =
        call_with_key(&e, "POST", "/rooms/r3/tasks", json!({"title": "x"}), "").unwrap_err();
    assert_eq!(bad_key.status, 400);
}

#[test]
fn the_key_space_stays_exact_and_a_room_can_always_create_rows() {
    let e = room("keys");
    let post = |e: &TestEngine| {
        call(e, "POST", "/rooms/keys/tasks", json!({"title": "t"}))
            .map(|r| r.body["row"]["id"].as_i64().unwrap())
    };
    assert_eq!(post(&e).unwrap(), 1);
    assert_eq!(post(&e).unwrap(), 2);
    // The largest key JavaScript keeps exactly may be chosen.
    let end = 9_007_199_254_740_991_i64;
    let put = call(
        &e,
        "PUT",
        &format!("/rooms/keys/tasks/{end}"),
        json!({"title": "end"}),
    );
    assert_eq!(put.unwrap().status, 200);
    // Past it: a 400 that says why, for a valid i64 too, and for a number no i64 holds.
    for beyond in [
        "9007199254740992",
        "9007199254740993",
        "-9007199254740992",
        "99999999999999999999",
    ] {
        let err = call(
            &e,
            "PUT",
            &format!("/rooms/keys/tasks/{beyond}"),
            json!({"title": "x"}),
        )
        .unwrap_err();
        assert_eq!((err.status, err.code), (400, "invalid_key"), "{beyond}");
        assert!(err.message.contains("2^53"), "{}", err.message);
    }
    // Nothing is left above the end: the room still creates rows, below it, and never a 500.
    assert_eq!(post(&e).unwrap(), 3);
    // The end deleted (it stays the mark): still creating.
    let del = call(
        &e,
        "DELETE",
        &format!("/rooms/keys/tasks/{end}"),
        Value::Null,
    )
    .unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(post(&e).unwrap(), 4);
    // Every key is exact: each row reads back as the integer it was given.
    let rows = call(
        &e,
        "GET",
        "/rooms/keys/tasks?consistency=strong",
        Value::Null,
    )
    .unwrap();
    let ids: Vec<i64> = rows.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
}

#[test]
fn a_405_says_which_methods_the_route_takes_and_a_key_given_twice_is_refused() {
    for (method, path, allow) in [
        ("DELETE", "/rooms/r/tasks", "GET, HEAD, POST"),
        ("POST", "/rooms/r/tasks/1", "GET, HEAD, PUT, PATCH, DELETE"),
        ("GET", "/rooms/r/_resync", "POST"),
        ("POST", "/rooms/r/_sync", "GET"),
        ("PUT", "/health", "GET, HEAD"),
        ("DELETE", "/_rooms", "GET"),
    ] {
        let err = route::<App>(method, path).unwrap_err();
        assert_eq!(
            (err.status, err.allow),
            (405, Some(allow)),
            "{method} {path}"
        );
    }
    let e = room("dup");
    let body = br#"{"title":"first","title":"second"}"#;
    for (method, path) in [("POST", "/rooms/dup/tasks"), ("PUT", "/rooms/dup/tasks/5")] {
        let r = route::<App>(method, path).unwrap();
        let req = api::RoomRequest {
            body,
            ..Default::default()
        };
        let err = api::room::serve(&e, &TaskHooks, &r, &req).unwrap_err();
        assert_eq!((err.status, err.code), (400, "invalid_json"), "{method}");
        assert!(
            err.message.contains("`title` is given twice"),
            "{}",
            err.message
        );
    }
    // Nested objects too; and nothing was written.
    let nested = br#"{"title":"t","tags":[{"a":1,"a":2}]}"#;
    let r = route::<App>("POST", "/rooms/dup/tasks").unwrap();
    let req = api::RoomRequest {
        body: nested,
        ..Default::default()
    };
    let err = api::room::serve(&e, &TaskHooks, &r, &req).unwrap_err();
    assert_eq!((err.status, err.code), (400, "invalid_json"));
    assert!(
        err.message.contains("`a` is given twice"),
        "{}",
        err.message
    );
    assert_eq!(e.current_seq().unwrap(), 0);
}
