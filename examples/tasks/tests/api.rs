//! The tasks app's API run natively as a whole app: the runtime's gateway, its room hosts (the
//! same code as the Worker's and the Durable Object's), replication and the feed over the native
//! backend ([`TestApp`]), with the app's schema, hooks and policy.

use nanotype::api::{self, route::route, Access, Decision, Policy, RequestParts, RoomTokens};
use nanotype::host::HttpRequest;
use nanotype::native::TestApp;
use serde_json::{json, Value};
use tasks_example::schema::App;
use tasks_example::{TaskHooks, TOKENS};

type Tasks = TestApp<App, TaskHooks, RoomTokens>;

/// The app with a token for every room.
fn app() -> Tasks {
    TestApp::new(TOKENS)
        .unwrap()
        .var("API_TOKENS", "t-all=*,t-a=alpha-")
        .token("t-all")
}

/// What a successful request answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    seq: Option<i64>,
    replayed: bool,
    source: Option<String>,
}

/// What a refused request answered: its status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
struct Refusal {
    status: u16,
    code: String,
    message: String,
    allow: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

fn call(e: &Tasks, method: &str, path: &str, body: Value) -> Result<Answer, Refusal> {
    call_keyed(e, method, path, body, None)
}

fn call_with_key(
    e: &Tasks,
    method: &str,
    path: &str,
    body: Value,
    key: &str,
) -> Result<Answer, Refusal> {
    call_keyed(e, method, path, body, Some(key))
}

/// A request served as the Worker serves it: the policy, then D1 or the room.
fn call_keyed(
    e: &Tasks,
    method: &str,
    path: &str,
    body: Value,
    idempotency_key: Option<&str>,
) -> Result<Answer, Refusal> {
    let mut req = HttpRequest::new(method, path).with_header("authorization", "Bearer t-all");
    if !body.is_null() {
        req = req
            .with_header("content-type", "application/json")
            .with_body(body.to_string());
    }
    if let Some(key) = idempotency_key {
        req = req.with_header("idempotency-key", key);
    }
    answer(e.request(req))
}

fn answer(resp: nanotype::host::HttpResponse) -> Result<Answer, Refusal> {
    let body = resp.json_body();
    if resp.status >= 400 {
        return Err(Refusal {
            status: resp.status,
            code: body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            allow: resp.header("allow").map(str::to_owned),
        });
    }
    Ok(Answer {
        status: resp.status,
        seq: resp.header("x-nanotype-seq").and_then(|s| s.parse().ok()),
        replayed: resp.header("idempotent-replayed") == Some("true"),
        source: resp.header("x-nanotype-source").map(str::to_owned),
        body,
    })
}

/// The room's seq, from its status.
fn seq_of(e: &Tasks, room: &str) -> i64 {
    let status = e.get(&format!("/rooms/{room}/_sync"));
    if status.status == 404 {
        return 0; // never written
    }
    status.json_body()["health"]["currentSeq"]
        .as_i64()
        .unwrap_or_else(|| panic!("no seq in {}", status.json_body()))
}

#[test]
fn crud_on_both_tables_with_validation_and_the_custom_route() {
    let e = app();
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
    assert_eq!(
        task["created_at"],
        e.now_ms(),
        "the hook set the creation time"
    );
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
    assert_eq!((gone.status, gone.code.as_str()), (404, "not_found"));

    // Everything written went through the outbox and replicates: after the flush, D1 answers
    // what the room does.
    e.settle();
    let replica = call(&e, "GET", "/rooms/r1/tasks", Value::Null).unwrap();
    let strong = call(&e, "GET", "/rooms/r1/tasks?consistency=strong", Value::Null).unwrap();
    assert_eq!(replica.source.as_deref(), Some("replica"));
    assert_eq!(strong.source.as_deref(), Some("primary"));
    assert_eq!(replica.body["rows"], strong.body["rows"]);
    let status = e.get("/rooms/r1/_sync").json_body();
    assert_eq!(status["health"]["lag"], 0, "{status}");
}

#[test]
fn bad_writes_are_4xx_and_change_nothing() {
    let e = app();
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
            (err.status, err.code.as_str()),
            (*status, *code),
            "{method} {path} {body}: {err}"
        );
    }
    assert_eq!(seq_of(&e, "r2"), 0, "nothing was written");
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
        pollster::block_on(TOKENS.authorize(&with(None), &env, &access)),
        Decision::Unauthorized(_)
    ));
    assert!(matches!(
        pollster::block_on(TOKENS.authorize(&with(Some("nope")), &env, &access)),
        Decision::Unauthorized(_)
    ));
    assert_eq!(
        pollster::block_on(TOKENS.authorize(&with(Some("t-a")), &env, &access)),
        Decision::Allow
    );
    assert_eq!(
        pollster::block_on(TOKENS.authorize(&with(Some("t-all")), &env, &access)),
        Decision::Allow
    );
    let other = Access {
        room: "beta-1",
        ..access
    };
    assert!(matches!(
        pollster::block_on(TOKENS.authorize(&with(Some("t-a")), &env, &other)),
        Decision::Forbidden(_)
    ));
    assert_eq!(
        Decision::forbidden("x").into_result().unwrap_err().status,
        403
    );
}

#[test]
fn retried_writes_with_an_idempotency_key_are_applied_once() {
    let e = app();
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
    let seq = seq_of(&e, "r3");
    let reused = call_with_key(
        &e,
        "POST",
        "/rooms/r3/tasks",
        json!({"title": "other"}),
        "k-1",
    )
    .unwrap_err();
    assert_eq!(
        (reused.status, reused.code.as_str()),
        (422, "idempotency_key_reused")
    );
    // A refused write is not remembered: the corrected request with the same key goes through.
    let bad =
        call_with_key(&e, "POST", "/rooms/r3/tasks", json!({"title": " "}), "k-4").unwrap_err();
    assert_eq!(bad.code, "rejected");
    assert_eq!(seq_of(&e, "r3"), seq, "nothing was written");
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
    let e = app();
    let post = |e: &Tasks| {
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
        assert_eq!(
            (err.status, err.code.as_str()),
            (400, "invalid_key"),
            "{beyond}"
        );
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
        // Methods a Worker cannot carry to a room are refused, not read as GET.
        ("QUERY", "/rooms/r/tasks", "GET, HEAD, POST"),
        ("PROPFIND", "/health", "GET, HEAD"),
        (
            "QUERY",
            "/rooms/r/stats",
            "GET, HEAD, POST, PUT, PATCH, DELETE",
        ),
    ] {
        let err = route::<App>(method, path).unwrap_err();
        assert_eq!(
            (err.status, err.allow),
            (405, Some(allow)),
            "{method} {path}"
        );
    }
    // The header reaches the client.
    let e = app();
    let err = call(&e, "DELETE", "/rooms/r/tasks", Value::Null).unwrap_err();
    assert_eq!(err.allow.as_deref(), Some("GET, HEAD, POST"));
    let send = |method: &str, path: &str, body: &[u8]| {
        answer(
            e.request(
                HttpRequest::new(method, path)
                    .with_header("authorization", "Bearer t-all")
                    .with_header("content-type", "application/json")
                    .with_body(body),
            ),
        )
    };
    let body = br#"{"title":"first","title":"second"}"#;
    for (method, path) in [("POST", "/rooms/dup/tasks"), ("PUT", "/rooms/dup/tasks/5")] {
        let err = send(method, path, body).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (400, "invalid_json"),
            "{method}"
        );
        assert!(
            err.message.contains("`title` is given twice"),
            "{}",
            err.message
        );
    }
    // Nested objects too; and nothing was written.
    let nested = br#"{"title":"t","tags":[{"a":1,"a":2}]}"#;
    let err = send("POST", "/rooms/dup/tasks", nested).unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (400, "invalid_json"));
    assert!(
        err.message.contains("`a` is given twice"),
        "{}",
        err.message
    );
    assert_eq!(seq_of(&e, "dup"), 0);
}

#[test]
fn the_policy_guards_every_route_of_the_app() {
    let e = app();
    let ask = |token: Option<&str>, path: &str| {
        let mut req = HttpRequest::new("GET", path);
        if let Some(t) = token {
            req = req.with_header("authorization", &format!("Bearer {t}"));
        }
        e.request(req).status
    };
    assert_eq!(ask(None, "/rooms/alpha-1/tasks"), 401);
    assert_eq!(ask(Some("nope"), "/rooms/alpha-1/tasks"), 401);
    assert_eq!(ask(Some("t-a"), "/rooms/beta-1/tasks"), 403);
    assert_eq!(
        ask(Some("t-a"), "/rooms/beta-1/stats"),
        403,
        "custom routes too"
    );
    assert_eq!(ask(Some("t-a"), "/rooms/alpha-1/tasks"), 200);
    assert_eq!(ask(None, "/health"), 200, "the health check needs no token");
}

/// The room's whole life without workerd: a write, its flush, a replica read, the feed, a
/// restart of the room's object, a replica outage that the alarm's retries get through.
#[test]
fn a_room_lives_its_whole_life_natively() {
    let e = app();
    let made = call(&e, "POST", "/rooms/life/tasks", json!({"title": "a"})).unwrap();
    assert_eq!(made.seq, Some(1));

    // Before the flush runs, a replica read falls back to the room and says why.
    let before = e.get("/rooms/life/tasks");
    assert_eq!(before.header("x-nanotype-source"), Some("primary"));
    assert!(before.header("x-nanotype-fallback").is_some());
    e.settle();
    let after = call(&e, "GET", "/rooms/life/tasks", Value::Null).unwrap();
    assert_eq!(after.source.as_deref(), Some("replica"));
    assert_eq!(after.body["rows"][0]["title"], "a");
    // In D1, under the room's id.
    let in_d1 = e
        .replica()
        .query_sync(&nanotype::Statement::new(
            "SELECT title FROM tasks WHERE room_id = 'life'",
            vec![],
        ))
        .unwrap();
    assert_eq!(in_d1, vec![vec![nanotype::Value::Text("a".into())]]);

    // The feed: a subscriber from seq 0 gets the change, then each new one as it commits.
    let socket = e.subscribe("life", Some(0)).unwrap();
    let caught_up = socket.take();
    assert!(
        caught_up.iter().any(|m| m["seq"] == 1),
        "catch-up holds seq 1: {caught_up:?}"
    );
    call(
        &e,
        "PATCH",
        "/rooms/life/tasks/1",
        json!({"status": "done"}),
    )
    .unwrap();
    let live = socket.take();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        (live[0]["seq"].as_i64(), live[0]["row"]["done"].as_bool()),
        (Some(2), Some(true))
    );
    // An archive by raw SQL in a custom route reaches the feed too.
    let archived = call(&e, "POST", "/rooms/life/archive", Value::Null).unwrap();
    assert_eq!(archived.body["archived"], 1);
    assert_eq!(socket.take()[0]["row"]["status"], "archived");

    // The object evicted before its flush: the alarm the write armed delivers it.
    call(&e, "POST", "/rooms/life/tasks", json!({"title": "b"})).unwrap();
    e.restart("life");
    e.settle();
    assert!(e.alarm_at("life").is_some(), "the write armed the alarm");
    e.advance(60_000);
    let rows = call(&e, "GET", "/rooms/life/tasks", Value::Null).unwrap();
    assert_eq!(rows.source.as_deref(), Some("replica"));
    assert_eq!(rows.body["rows"].as_array().unwrap().len(), 2);

    // D1 down: writes still land, reads fall back to the room, nothing is lost; when D1 is back
    // the alarm's retry delivers every change, in order.
    e.set_replica_down(true);
    for title in ["c", "d", "e"] {
        call(&e, "POST", "/rooms/life/tasks", json!({ "title": title })).unwrap();
    }
    e.settle();
    let down = call(&e, "GET", "/rooms/life/tasks", Value::Null).unwrap();
    assert_eq!(down.source.as_deref(), Some("primary"));
    assert_eq!(down.body["rows"].as_array().unwrap().len(), 5);
    let health = e.get("/rooms/life/_sync").json_body()["health"].clone();
    assert!(health["lag"].as_i64().unwrap() > 0, "{health}");
    e.set_replica_down(false);
    e.advance(10 * 60_000);
    let back = call(&e, "GET", "/rooms/life/tasks", Value::Null).unwrap();
    assert_eq!(back.source.as_deref(), Some("replica"));
    let strong = call(
        &e,
        "GET",
        "/rooms/life/tasks?consistency=strong",
        Value::Null,
    )
    .unwrap();
    assert_eq!(back.body["rows"], strong.body["rows"]);
    assert_eq!(e.get("/rooms/life/_sync").json_body()["health"]["lag"], 0);
}

#[test]
fn a_room_never_written_stores_nothing_and_a_read_only_route_does_not_create_it() {
    let e = app();
    assert_eq!(
        call(&e, "GET", "/rooms/ghost/stats", Value::Null)
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        call(&e, "GET", "/rooms/ghost/tasks", Value::Null)
            .unwrap()
            .body["rows"],
        json!([])
    );
    assert_eq!(seq_of(&e, "ghost"), 0);
    // A declared writing route creates it.
    assert_eq!(
        call(&e, "POST", "/rooms/ghost/archive", Value::Null)
            .unwrap()
            .body["archived"],
        0
    );
    assert!(call(&e, "GET", "/rooms/ghost/stats", Value::Null).is_ok());
}

#[test]
fn an_idempotency_key_matches_the_request_not_its_spelling() {
    let e = app();
    let send = |body: &str| {
        answer(
            e.request(
                HttpRequest::new("POST", "/rooms/idem/tasks")
                    .with_header("authorization", "Bearer t-all")
                    .with_header("content-type", "application/json")
                    .with_header("idempotency-key", "k-1")
                    .with_body(body.to_owned()),
            ),
        )
    };
    let first = send(r#"{"title":"once","status":"open"}"#).unwrap();
    // The same fields in another order, with other spacing: the same request, replayed.
    let again = send(r#"{ "status" : "open",  "title" : "once" }"#).unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(again.body, first.body);
    // Another value under the same key is another request.
    let other = send(r#"{"title":"twice","status":"open"}"#).unwrap_err();
    assert_eq!(
        (other.status, other.code.as_str()),
        (422, "idempotency_key_reused")
    );
}
