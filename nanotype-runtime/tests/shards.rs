//! The replica over several D1 shards, as a whole app on the native backend: each room
//! replicates to its home shard only, reads of a room go to its shard, a room keeps the shard it
//! recorded when the list of shards changes, and a shard that is down takes only its own rooms'
//! replica reads to their rooms while the other shards serve.

mod support;

use nanotype::api::RoomTokens;
use nanotype::native::TestApp;
use nanotype::Shards;
use serde_json::json;
use support::*;

nanotype::schema!(Items = [Item, Tag]);

const SHARDS: &str = "DB,DB_1,DB_2";

fn app() -> TestApp<Items, (), RoomTokens> {
    TestApp::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .var("NANOTYPE_D1_SHARDS", SHARDS)
        .token("t")
}

fn write(app: &TestApp<Items, (), RoomTokens>, room: &str, n: i64) {
    let resp = app.post(
        &format!("/rooms/{room}/items"),
        json!({"room_tag": room, "kind": "k", "n": n, "score": 0.5, "note": null, "data": []}),
    );
    assert_eq!(resp.status, 201, "{}", resp.json_body());
}

fn count(replica: &nanotype::native::NativeReplica, room: &str) -> i64 {
    replica
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE room_id = ?1",
            [room],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn each_room_replicates_to_its_home_shard_only() {
    let app = app();
    let shards = Shards::new(SHARDS.split(','));
    let rooms: Vec<String> = (0..60).map(|i| format!("room-{i}")).collect();
    for (i, room) in rooms.iter().enumerate() {
        for n in 0..3 {
            write(&app, room, (i * 10 + n) as i64);
        }
    }
    app.settle();
    let mut per_shard = [0usize; 3];
    for room in &rooms {
        let home = shards.home(room);
        per_shard[shards.names().iter().position(|n| n == home).unwrap()] += 1;
        for name in shards.names() {
            let replica = app.shard(name).unwrap();
            if name == home {
                assert_converged(&app.room_db(room).unwrap(), &replica, room);
            } else {
                assert_eq!(count(&replica, room), 0, "{room} has rows on {name}");
            }
        }
        let read = app.get(&format!("/rooms/{room}/items"));
        assert_eq!(read.header("x-nanotype-source"), Some("replica"), "{room}");
        assert_eq!(read.header("x-nanotype-shard"), Some(home), "{room}");
        assert_eq!(read.json_body()["rows"].as_array().unwrap().len(), 3);
        let status = app.get(&format!("/rooms/{room}/_sync"));
        assert_eq!(status.json_body()["shard"], home);
    }
    assert!(per_shard.iter().all(|&n| n > 5), "{per_shard:?}");
    // `/_rooms` lists every room once, over every shard, in order.
    let listed = app.get("/_rooms?limit=1000").json_body();
    let names: Vec<&str> = listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = rooms.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
}

#[test]
fn a_room_keeps_its_shard_when_shards_are_added() {
    let app = TestApp::<Items, (), RoomTokens>::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .token("t");
    // Written with one shard (the default, `DB`).
    let room = (0..100)
        .map(|i| format!("r{i}"))
        .find(|r| Shards::new(SHARDS.split(',')).home(r) != "DB")
        .unwrap();
    write(&app, &room, 1);
    app.settle();
    let mut app = app.var("NANOTYPE_D1_SHARDS", SHARDS);
    app.restart(&room);
    write(&app, &room, 2);
    app.settle();
    assert_eq!(count(&app.shard("DB").unwrap(), &room), 2);
    let home = Shards::new(SHARDS.split(',')).home(&room).to_owned();
    assert_eq!(count(&app.shard(&home).unwrap(), &room), 0);
    app.cold_gateway();
    // A cold gateway looks on the home shard, which has not seen the room: the room answers
    // and names its shard, and the next read goes there.
    let first = app.get(&format!("/rooms/{room}/items"));
    assert_eq!(first.header("x-nanotype-source"), Some("primary"));
    assert_eq!(first.header("x-nanotype-shard"), Some("DB"));
    let second = app.get(&format!("/rooms/{room}/items"));
    assert_eq!(second.header("x-nanotype-source"), Some("replica"));
    assert_eq!(second.header("x-nanotype-shard"), Some("DB"));
    assert_eq!(second.json_body()["rows"].as_array().unwrap().len(), 2);
}

#[test]
fn a_shard_down_sends_only_its_rooms_to_their_rooms() {
    let app = app();
    let shards = Shards::new(SHARDS.split(','));
    let rooms: Vec<String> = (0..12).map(|i| format!("room-{i}")).collect();
    for room in &rooms {
        write(&app, room, 1);
    }
    app.settle();
    app.set_shard_down("DB_1", true).unwrap();
    for room in &rooms {
        write(&app, room, 2);
    }
    app.settle();
    for room in &rooms {
        let read = app.get(&format!("/rooms/{room}/items"));
        assert_eq!(read.status, 200, "{}", read.json_body());
        // Nothing is lost either way: both rows, from wherever.
        assert_eq!(read.json_body()["rows"].as_array().unwrap().len(), 2);
        let on_down = shards.home(room) == "DB_1";
        let source = read.header("x-nanotype-source");
        assert_eq!(
            source,
            Some(if on_down { "primary" } else { "replica" }),
            "{room}"
        );
    }
    // Back up: the queued changes land and the down shard's rooms are served from it again.
    app.set_shard_down("DB_1", false).unwrap();
    app.advance(120_000);
    for room in rooms.iter().filter(|r| shards.home(r) == "DB_1") {
        assert_converged(
            &app.room_db(room).unwrap(),
            &app.shard("DB_1").unwrap(),
            room,
        );
        let read = app.get(&format!("/rooms/{room}/items"));
        assert_eq!(read.header("x-nanotype-source"), Some("replica"), "{room}");
    }
}

/// Every page of `/_across/items` (with `query`, and `limit` rows a page), followed to its end.
fn across_all(app: &TestApp<Items, (), RoomTokens>, query: &str, limit: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1_000 {
        let mut target = format!("/_across/items?limit={limit}{query}");
        if let Some(a) = &after {
            target.push_str(&format!("&after={}", percent(a)));
        }
        let page = app.get(&target);
        assert_eq!(page.status, 200, "{target}: {}", page.json_body());
        let body = page.json_body();
        let rows = body["rows"].as_array().unwrap();
        assert!(rows.len() <= limit as usize);
        for r in rows {
            assert_eq!(r["row"]["room_tag"], r["room"], "a row of another room");
            out.push((
                r["room"].as_str().unwrap().to_owned(),
                r["row"]["id"].as_i64().unwrap(),
            ));
        }
        match body["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return out,
        }
    }
    panic!("more than 1000 pages");
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the rooms' own databases hold (strong reads), in `(room, key)` order.
fn strong_union(
    app: &TestApp<Items, (), RoomTokens>,
    rooms: &[String],
    kind: Option<&str>,
) -> Vec<(String, i64)> {
    let mut sorted: Vec<&String> = rooms.iter().collect();
    sorted.sort();
    let mut out = Vec::new();
    for room in sorted {
        let body = app
            .get(&format!("/rooms/{room}/items?consistency=strong&limit=100"))
            .json_body();
        for row in body["rows"].as_array().unwrap() {
            if kind.is_none_or(|k| row["kind"] == k) {
                out.push((room.clone(), row["id"].as_i64().unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_query_across_rooms_is_the_union_of_their_rows_over_every_shard() {
    let app = app().var("TOKENS", "t=*,ta=a-").token("t");
    let rooms: Vec<String> = (0..30)
        .map(|i| format!("{}-{i}", if i % 3 == 0 { "b" } else { "a" }))
        .collect();
    for (i, room) in rooms.iter().enumerate() {
        for n in 0..=(i % 4) {
            let kind = if n % 2 == 0 { "x" } else { "y" };
            let resp = app.post(
                &format!("/rooms/{room}/items"),
                json!({"room_tag": room, "kind": kind, "n": n, "score": 0.0, "note": null, "data": []}),
            );
            assert_eq!(resp.status, 201);
        }
    }
    app.settle();
    let all = strong_union(&app, &rooms, None);
    let all_x = strong_union(&app, &rooms, Some("x"));
    assert!(all.len() > 60);
    for limit in [1, 7, 1000] {
        assert_eq!(across_all(&app, "", limit), all, "limit {limit}");
    }
    assert_eq!(across_all(&app, "&kind=x", 5), all_x);

    // A token limited to a prefix reads only its rooms, over every shard.
    let app = app.token("ta");
    let a_rooms: Vec<String> = rooms
        .iter()
        .filter(|r| r.starts_with("a-"))
        .cloned()
        .collect();
    assert_eq!(across_all(&app, "", 4), strong_union(&app, &a_rooms, None));
    let app = app.token("nope");
    assert_eq!(app.get("/_across/items").status, 401);

    // Typed, from Rust: the same rows.
    let shards: Vec<_> = ["DB", "DB_1", "DB_2"]
        .map(|s| app.shard(s).unwrap())
        .to_vec();
    let mut typed = Vec::new();
    let mut q = nanotype::Across::all().filter("kind", "x").limit(3);
    for _ in 0..100 {
        let page = block(Item::find_across(&shards, &q)).unwrap();
        typed.extend(page.rows.iter().map(|(room, item)| (room.clone(), item.id)));
        match page.next {
            Some((room, key)) => q = q.after(&room, key),
            None => break,
        }
    }
    assert_eq!(typed, all_x);

    // Bad requests say what is allowed.
    let app = app.token("t");
    let bad = app.get("/_across/items?note=x");
    assert_eq!(bad.status, 400);
    assert!(bad.json_body()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kind"));
    assert_eq!(app.get("/_across/nothing").status, 404);
    assert_eq!(app.get("/_across/items?after=7").status, 400);
    assert_eq!(app.call("POST", "/_across/items", json!({})).status, 405);
}

/// A policy that decides room by room, and so cannot bound a query across rooms.
struct EachRoom;

impl nanotype::api::Policy for EachRoom {
    async fn authorize(
        &self,
        _req: &nanotype::api::RequestParts,
        _env: &dyn nanotype::api::Vars,
        _access: &nanotype::api::Access<'_>,
    ) -> nanotype::api::Decision {
        nanotype::api::Decision::Allow
    }
}

#[test]
fn a_policy_that_decides_room_by_room_serves_no_query_across_rooms() {
    let app = TestApp::<Items, (), _>::new(EachRoom).unwrap();
    let resp = app.get("/_across/items");
    assert_eq!(resp.status, 403, "{}", resp.json_body());
    assert_eq!(resp.json_body()["error"]["code"], "forbidden");
}

/// The room's rows as a read through the gateway sees them (with `token`), and the new token.
fn read_rows(
    app: &TestApp<Items, (), RoomTokens>,
    room: &str,
    token: Option<&str>,
) -> (Vec<i64>, String) {
    let mut req =
        nanotype::host::HttpRequest::new("GET", &format!("/rooms/{room}/items?limit=500"))
            .with_header("authorization", "Bearer t");
    if let Some(t) = token {
        req = req.with_header("x-nanotype-token", t);
    }
    let resp = app.request(req);
    assert_eq!(resp.status, 200, "{}", resp.json_body());
    let ids = resp.json_body()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["room_tag"], room, "a row of another room");
            r["id"].as_i64().unwrap()
        })
        .collect();
    (
        ids,
        resp.header("x-nanotype-token")
            .unwrap_or_default()
            .to_owned(),
    )
}

fn room_row(replica: &nanotype::native::NativeReplica, room: &str) -> Option<i64> {
    replica
        .connection()
        .query_row(
            "SELECT watermark FROM _nt_rooms WHERE room_id = ?1",
            [room],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn a_room_moves_between_shards_under_writes_without_a_read_going_short() {
    let mut app = app();
    let shards = Shards::new(SHARDS.split(','));
    let room = "mover";
    let from = shards.home(room).to_owned();
    let to = shards.names().iter().find(|n| **n != from).unwrap().clone();
    for n in 0..20 {
        write(&app, room, n);
    }
    app.settle();
    assert_converged(
        &app.room_db(room).unwrap(),
        &app.shard(&from).unwrap(),
        room,
    );

    let moved = app.post(&format!("/rooms/{room}/_move"), json!({ "to": to }));
    assert_eq!(moved.status, 202, "{}", moved.json_body());
    assert_eq!(moved.header("x-nanotype-shard"), Some(to.as_str()));
    let status = app.get(&format!("/rooms/{room}/_sync")).json_body();
    assert_eq!(status["move"]["from"], from.as_str());
    assert_eq!(status["move"]["phase"], "copying");
    assert_eq!(
        app.post(&format!("/rooms/{room}/_move"), json!({ "to": from }))
            .status,
        409
    );

    // Writes go on while the copy is under way; every read has every row it has shown.
    let mut token: Option<String> = None;
    let mut shown = 0;
    for n in 20..30 {
        write(&app, room, n);
        let (ids, t) = read_rows(&app, room, token.as_deref());
        assert!(ids.len() >= shown, "{} rows after {shown}", ids.len());
        shown = ids.len();
        token = Some(t);
        // A gateway that never learned of the move reads the old shard: a whole earlier state.
        let (old, _) = read_rows(&app, room, None);
        assert!(old.len() >= 20, "the old copy is whole: {}", old.len());
        if n == 25 {
            app.settle();
        }
    }
    app.settle();
    let (ids, _) = read_rows(&app, room, token.as_deref());
    assert_eq!(ids.len(), 30);

    // Moved: the new shard has the room, the old one only its tombstone.
    assert_converged(&app.room_db(room).unwrap(), &app.shard(&to).unwrap(), room);
    assert_eq!(count(&app.shard(&from).unwrap(), room), 0);
    assert_eq!(room_row(&app.shard(&from).unwrap(), room), Some(-3));
    let status = app.get(&format!("/rooms/{room}/_sync")).json_body();
    assert_eq!(
        (status["shard"].as_str(), &status["move"]),
        (Some(to.as_str()), &json!(null))
    );
    // A gateway that still thinks it is on the old shard is sent to the room, and learns.
    app.cold_gateway();
    if from == shards.home(room) {
        let first = app.get(&format!("/rooms/{room}/items"));
        assert_eq!(first.header("x-nanotype-source"), Some("primary"));
        assert!(first
            .header("x-nanotype-fallback")
            .unwrap()
            .contains("moved"));
    }
    let next = app.get(&format!("/rooms/{room}/items?limit=500"));
    assert_eq!(next.header("x-nanotype-source"), Some("replica"));
    assert_eq!(next.header("x-nanotype-shard"), Some(to.as_str()));
    assert_eq!(next.json_body()["rows"].as_array().unwrap().len(), 30);
    // Listed once, across rooms and among the rooms.
    let rooms = app.get("/_rooms").json_body();
    assert_eq!(
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["room"] == room)
            .count(),
        1
    );
    assert_eq!(across_all(&app, "", 7).len(), 30);

    // And back again: the old shard's tombstone gives way to the room.
    assert_eq!(
        app.post(&format!("/rooms/{room}/_move"), json!({ "to": from }))
            .status,
        202
    );
    app.settle();
    assert_converged(
        &app.room_db(room).unwrap(),
        &app.shard(&from).unwrap(),
        room,
    );
    assert_eq!(count(&app.shard(&to).unwrap(), room), 0);
    assert_eq!(across_all(&app, "", 1000).len(), 30);
    // Bad moves say why.
    assert_eq!(
        app.post(&format!("/rooms/{room}/_move"), json!({ "to": "DB_9" }))
            .status,
        400
    );
    assert_eq!(
        app.post(&format!("/rooms/{room}/_move"), json!({})).status,
        400
    );
    assert_eq!(
        app.post("/rooms/never-written/_move", json!({ "to": to }))
            .status,
        404
    );
}

#[test]
fn a_move_interrupted_by_a_restart_resumes_and_ends() {
    let app = app();
    let shards = Shards::new(SHARDS.split(','));
    let room = "crashy";
    let from = shards.home(room).to_owned();
    let to = shards.names().iter().find(|n| **n != from).unwrap().clone();
    for n in 0..12 {
        write(&app, room, n);
    }
    app.settle();
    // The new shard down: the copy cannot start; the room restarts before it could.
    app.set_shard_down(&to, true).unwrap();
    assert_eq!(
        app.post(&format!("/rooms/{room}/_move"), json!({ "to": to }))
            .status,
        202
    );
    write(&app, room, 12);
    app.settle();
    app.restart(room);
    assert_eq!(
        app.get(&format!("/rooms/{room}/_sync")).json_body()["move"]["phase"],
        "copying"
    );
    // Reads meanwhile: every row, from wherever.
    assert!(read_rows(&app, room, None).0.len() >= 12);
    app.set_shard_down(&to, false).unwrap();
    app.advance(120_000);
    assert_converged(&app.room_db(room).unwrap(), &app.shard(&to).unwrap(), room);
    assert_eq!(count(&app.shard(&from).unwrap(), room), 0);
    assert_eq!(
        app.get(&format!("/rooms/{room}/_sync")).json_body()["move"],
        json!(null)
    );
}
