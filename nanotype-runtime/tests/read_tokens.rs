//! Read tokens and D1 sessions, as a whole app on the native backend: a client that sends back
//! the token of its last answer never reads an older state (not even a row it deleted), a read
//! replica behind the write is passed over for D1's primary and then for the room, and a token
//! from another shard does not pin a session.

mod support;

use nanotype::api::RoomTokens;
use nanotype::host::HttpRequest;
use nanotype::native::TestApp;
use serde_json::json;
use support::*;

nanotype::schema!(Items = [Item, Tag]);

type App = TestApp<Items, (), RoomTokens>;

fn app() -> App {
    TestApp::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .token("t")
}

fn item(room: &str, n: i64) -> serde_json::Value {
    json!({"room_tag": room, "kind": "k", "n": n, "score": 0.0, "note": null, "data": []})
}

/// `GET target` with `x-nanotype-token: token`.
fn get_with(app: &App, target: &str, token: &str) -> nanotype::host::HttpResponse {
    app.request(
        HttpRequest::new("GET", target)
            .with_header("authorization", "Bearer t")
            .with_header("x-nanotype-token", token),
    )
}

fn token_of(resp: &nanotype::host::HttpResponse) -> String {
    resp.header("x-nanotype-token")
        .unwrap_or_else(|| panic!("no token: {:?}", resp.headers))
        .to_owned()
}

#[test]
fn a_read_with_the_token_of_a_delete_never_sees_the_deleted_row() {
    let app = app();
    let made = app.post("/rooms/r/items", item("r", 1));
    assert_eq!(made.status, 201);
    let id = made.json_body()["row"]["id"].as_i64().unwrap();
    app.settle();
    let deleted = app.call("DELETE", &format!("/rooms/r/items/{id}"), json!(null));
    assert_eq!(deleted.status, 200, "{}", deleted.json_body());
    let token = token_of(&deleted);
    let seq: i64 = token.split(':').next().unwrap().parse().unwrap();
    assert_eq!(
        Some(seq.to_string().as_str()),
        deleted.header("x-nanotype-seq")
    );

    // Without the token, the replica (not flushed yet) still has the row: that is what the
    // token is for.
    let plain = app.get(&format!("/rooms/r/items/{id}"));
    assert_eq!(
        (plain.status, plain.header("x-nanotype-source")),
        (200, Some("replica"))
    );
    // With it, the room answers: the row is gone.
    let read = get_with(&app, &format!("/rooms/r/items/{id}"), &token);
    assert_eq!(read.status, 404, "{}", read.json_body());
    let message = read.json_body()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !message.contains("(replica)"),
        "the room answered: {message}"
    );

    // Flushed: the replica answers, and says what it saw.
    app.settle();
    let read = get_with(&app, "/rooms/r/items", &token);
    assert_eq!(read.header("x-nanotype-source"), Some("replica"));
    assert_eq!(read.json_body()["rows"], json!([]));
    let next = nanotype::api::ReadToken::parse(&token_of(&read)).unwrap();
    assert!(next.seq >= seq, "{next:?}");
    assert_eq!(next.shard, "DB");
    assert!(
        !next.bookmark.is_empty(),
        "the flush's session gave a bookmark"
    );
}

#[test]
fn a_lagging_read_replica_is_passed_over_for_the_primary_then_the_room() {
    let app = app();
    for n in 0..3 {
        assert_eq!(app.post("/rooms/r/items", item("r", n)).status, 201);
    }
    app.settle();
    app.lag_read_replicas(true).unwrap();
    let made = app.post("/rooms/r/items", item("r", 3));
    let token = token_of(&made);
    app.settle();

    // Plain replica reads take the read replica, behind as it is.
    let plain = app.get("/rooms/r/items");
    assert_eq!(plain.header("x-nanotype-source"), Some("replica"));
    assert_eq!(plain.json_body()["rows"].as_array().unwrap().len(), 3);
    // The write's token: the read replica lacks its seq, D1's primary has it.
    let read = get_with(&app, "/rooms/r/items", &token);
    assert_eq!(read.header("x-nanotype-source"), Some("replica-primary"));
    assert_eq!(read.json_body()["rows"].as_array().unwrap().len(), 4);
    // That answer's token carries the primary's bookmark: the next read with it starts on a
    // copy at least that new (here the primary again), never on the read replica behind it.
    let again = get_with(&app, "/rooms/r/items", &token_of(&read));
    assert_eq!(again.json_body()["rows"].as_array().unwrap().len(), 4);
    assert_ne!(again.header("x-nanotype-source"), Some("primary"));

    // A write not flushed yet: neither copy has it, the room answers.
    let unflushed = app.post("/rooms/r/items", item("r", 4));
    let read = get_with(&app, "/rooms/r/items", &token_of(&unflushed));
    assert_eq!(read.header("x-nanotype-source"), Some("primary"));
    assert_eq!(read.json_body()["rows"].as_array().unwrap().len(), 5);
    app.settle();

    // Caught up, the read replica serves tokens again.
    app.lag_read_replicas(true).unwrap();
    let read = get_with(&app, "/rooms/r/items", &token_of(&unflushed));
    assert_eq!(read.header("x-nanotype-source"), Some("replica"));
    assert_eq!(read.json_body()["rows"].as_array().unwrap().len(), 5);
}

#[test]
fn tokens_that_no_response_returned_are_refused() {
    let app = app();
    assert_eq!(app.post("/rooms/r/items", item("r", 1)).status, 201);
    for bad in ["x", "-3:DB:", "1:a b:"] {
        let resp = get_with(&app, "/rooms/r/items", bad);
        assert_eq!(resp.status, 400, "{bad}");
        assert_eq!(resp.json_body()["error"]["code"], "bad_request");
    }
    // A token of another shard only asks for its seq.
    app.settle();
    let resp = get_with(&app, "/rooms/r/items", "1:DB_9:ffffffff");
    assert_eq!(resp.header("x-nanotype-source"), Some("replica"));
}

#[test]
fn reads_that_name_no_consistency_go_to_the_room_when_the_app_says_so() {
    let app = app().var("NANOTYPE_ROOM_READS", "room");
    assert_eq!(app.post("/rooms/r/items", item("r", 1)).status, 201);
    app.settle();
    let default = app.get("/rooms/r/items");
    assert_eq!(default.header("x-nanotype-source"), Some("primary"));
    assert_eq!(
        default.header("x-nanotype-fallback"),
        None,
        "not a fallback: the route"
    );
    let asked = app.get("/rooms/r/items?consistency=replica");
    assert_eq!(asked.header("x-nanotype-source"), Some("replica"));
    assert_eq!(asked.json_body()["rows"].as_array().unwrap().len(), 1);
}
