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
