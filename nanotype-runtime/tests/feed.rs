//! The change feed's log on the native backend: every committed write gives one message in seq
//! order, a rolled-back one none; a client resumes from any seq the log keeps, exactly once and
//! in order, and is told to reset when its seq is older; the log is trimmed by count.

mod support;

use std::rc::Rc;

use nanotype::feed::{self, ClientMessage, ClientState, FeedConfig, Message};
use nanotype::native::{ManualScheduler, NativeReplica};
use nanotype::sync::Engine;
use nanotype::{outbox, Error, Primary};
use serde_json::Value as Json;
use support::*;

nanotype::schema!(Items = [Item]);

fn open(dir: &TempDir, config: Option<FeedConfig>) -> TestEngine<NativeReplica> {
    Engine::builder("f")
        .schema::<Items>()
        .feed(config)
        .open(
            primary(&dir.path("f.db")),
            Rc::new(ManualScheduler::at(1_900_000_000_000)),
        )
        .unwrap()
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Change { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

#[test]
fn each_committed_write_is_one_message_in_seq_order_with_its_row() {
    let dir = TempDir::new("feed-order");
    let e = open(&dir, Some(FeedConfig::default()));
    let mut rng = Rng::new(3);
    let a = Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    let mut b = Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    b.note = Some("changed".into());
    Item::update(e.primary(), &b).unwrap();
    Item::delete(e.primary(), a.id).unwrap();
    // Writes rolled back with the transaction around them send nothing.
    let undone = e.primary().transaction(|| {
        Item::insert(e.primary(), &random_item(&mut rng, "f"))?;
        Err::<(), _>(Error::Rejected("changed my mind".into()))
    });
    assert!(undone.is_err());

    let sent = e.primary().take_feed();
    assert_eq!(
        sent.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(e.primary().take_feed().is_empty(), "taken once");
    let msgs: Vec<Json> = sent
        .iter()
        .map(|(_, t)| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(msgs[0]["op"], "upsert");
    assert_eq!(msgs[0]["table"], "items");
    assert_eq!(msgs[0]["key"], a.id);
    assert_eq!(msgs[0]["row"]["kind"], a.kind.as_str());
    assert_eq!(msgs[2]["row"]["note"], "changed");
    assert_eq!(msgs[3]["op"], "delete");
    assert!(msgs[3].get("row").is_none());
    assert_eq!(outbox::current_seq(e.primary()).unwrap(), 4);
}

#[test]
fn a_client_resumes_from_any_kept_seq_once_and_in_order_or_is_told_to_reset() {
    let dir = TempDir::new("feed-resume");
    let e = open(&dir, Some(FeedConfig::default()));
    let mut rng = Rng::new(4);
    for _ in 0..20 {
        Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    }
    let db = e.primary();
    let live = db.take_feed();
    for since in [0, 1, 7, 19, 20] {
        let m = feed::catch_up(db, Some(since), 20).unwrap();
        assert_eq!(seqs(&m), ((since + 1)..=20).collect::<Vec<_>>());
        assert_eq!(m.last(), Some(&Message::Live { seq: 20 }));
        // A row unchanged since is sent as it was sent live.
        if since == 7 {
            let Message::Change { text, .. } = &m[0] else {
                panic!()
            };
            assert_eq!(serde_json::from_str::<Json>(text).unwrap()["seq"], 8);
            assert_eq!(text, &live[7].1);
        }
    }
    for since in [None, Some(21)] {
        let m = feed::catch_up(db, since, 20).unwrap();
        assert!(
            matches!(m.as_slice(), [Message::Reset { seq: 20, .. }]),
            "{m:?}"
        );
    }
    // Trimmed below 11: a client at 9 missed 10, which is gone; one at 10 misses nothing.
    db.execute("DELETE FROM _nt_outbox WHERE seq <= 10", &[])
        .unwrap();
    assert!(matches!(
        feed::catch_up(db, Some(9), 20).unwrap().as_slice(),
        [Message::Reset { .. }]
    ));
    assert_eq!(
        seqs(&feed::catch_up(db, Some(10), 20).unwrap()),
        (11..=20).collect::<Vec<_>>()
    );
}

/// The room's records: how many, and the oldest seq.
fn ring(e: &TestEngine<NativeReplica>) -> (i64, i64) {
    let rows = e
        .primary()
        .query("SELECT COUNT(*), MIN(seq) FROM _nt_outbox", &[])
        .unwrap();
    match rows[0].as_slice() {
        [nanotype::Value::Integer(n), nanotype::Value::Integer(min)] => (*n, *min),
        other => panic!("{other:?}"),
    }
}

fn open_replicated(
    dir: &TempDir,
    native: &NativeReplica,
    config: Option<FeedConfig>,
) -> TestEngine<NativeReplica> {
    Engine::builder("f")
        .schema::<Items>()
        .feed(config)
        .replica(Some(native.clone()))
        .open(
            primary(&dir.path("f.db")),
            Rc::new(ManualScheduler::at(1_900_000_000_000)),
        )
        .unwrap()
}

/// A sync 10 s after the last one: the room stores the replica's progress (its health row) at
/// most that often, and the capture triggers read it from there.
fn sync_later(e: &TestEngine<NativeReplica>) {
    e.scheduler().advance(10_000);
    block(e.sync()).unwrap();
}

/// The log is the outbox: once D1 has the changes, the feed keeps `retain_changes` of them
/// (one record per change, overwritten in place by later changes), a client that far behind
/// resumes and one further behind resets, and a new instance of the room resumes clients.
#[test]
fn the_log_keeps_its_count_and_survives_the_engine() {
    let dir = TempDir::new("feed-trim");
    let config = FeedConfig {
        retain_changes: 100,
        ..FeedConfig::default()
    };
    let native = replica(&dir.path("replica.db"));
    let e = open_replicated(&dir, &native, Some(config.clone()));
    let mut rng = Rng::new(5);
    for i in 0..600 {
        Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
        if i % 10 == 9 {
            sync_later(&e);
        }
        if i == 49 {
            assert_eq!(ring(&e), (50, 1), "below its retention the log only grows");
        }
    }
    assert_converged(e.primary(), &native, "f");
    assert_eq!(
        ring(&e),
        (100, 501),
        "the last 100 changes, one record each"
    );
    let db = e.primary();
    assert_eq!(
        seqs(&feed::catch_up(db, Some(500), 600).unwrap()),
        (501..=600).collect::<Vec<_>>()
    );
    assert!(matches!(
        feed::catch_up(db, Some(499), 600).unwrap().as_slice(),
        [Message::Reset { .. }]
    ));
    drop(e);
    let e = open_replicated(&dir, &native, Some(config));
    assert_eq!(
        seqs(&feed::catch_up(e.primary(), Some(550), 600).unwrap()),
        (551..=600).collect::<Vec<_>>(),
        "the log is in the room's SQLite: a new instance resumes clients"
    );
}

/// A record older than `retain_ms` is taken by the next change even while the log holds fewer
/// than `retain_changes`: a quiet room does not keep thousands of old records.
#[test]
fn the_log_lets_old_changes_go() {
    let dir = TempDir::new("feed-age");
    let e = open_replicated(
        &dir,
        &replica(&dir.path("replica.db")),
        Some(FeedConfig::default()),
    );
    let mut rng = Rng::new(9);
    for _ in 0..20 {
        Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    }
    sync_later(&e);
    Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    assert_eq!(ring(&e), (21, 1), "young records are kept");
    sync_later(&e);
    // The two oldest are now older than a day.
    e.primary()
        .execute(
            "UPDATE _nt_outbox SET at = at - 2 * 86400000 WHERE seq <= 2",
            &[],
        )
        .unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    assert_eq!(
        ring(&e),
        (22, 3),
        "two old records taken, then the log grows again"
    );
    assert!(matches!(
        feed::catch_up(e.primary(), Some(1), 24).unwrap().as_slice(),
        [Message::Reset { .. }]
    ));
    assert_eq!(
        seqs(&feed::catch_up(e.primary(), Some(2), 24).unwrap()).len(),
        22
    );
}

#[test]
fn a_room_without_a_feed_keeps_no_log() {
    let dir = TempDir::new("feed-off");
    let e = open_replicated(&dir, &replica(&dir.path("replica.db")), None);
    let mut rng = Rng::new(6);
    for _ in 0..30 {
        Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
        sync_later(&e);
    }
    assert!(e.primary().take_feed().is_empty());
    // Each change took the record D1 had: one record, the newest.
    assert_eq!(ring(&e), (1, 30));
    assert!(matches!(
        feed::catch_up(e.primary(), Some(29), 30)
            .unwrap()
            .as_slice(),
        [Message::Reset { .. }]
    ));
    // The feed needs the schema to turn rows into JSON.
    let err = Engine::builder("g")
        .tables(tables())
        .feed(Some(FeedConfig::default()))
        .open(primary(&dir.path("g.db")), Rc::new(ManualScheduler::at(0)))
        .map(|_: TestEngine<NativeReplica>| ())
        .unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err}");
}

#[test]
fn client_messages_and_the_unacknowledged_window() {
    let config = FeedConfig {
        max_unacked: 10,
        max_message_bytes: 64,
        ..FeedConfig::default()
    };
    assert_eq!(
        feed::parse_client(r#"{"type":"ack","seq":5}"#, &config),
        Ok(ClientMessage::Ack(5))
    );
    assert_eq!(
        feed::parse_client(r#"{"type":"ping"}"#, &config),
        Ok(ClientMessage::Ping)
    );
    assert!(feed::parse_client(r#"{"type":"ack"}"#, &config).is_err());
    assert!(feed::parse_client("nope", &config).is_err());
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100));
    assert!(feed::parse_client(&big, &config)
        .unwrap_err()
        .contains("over the limit"));
    let c = ClientState { acked: 100 };
    assert!(!c.behind(110, &config));
    assert!(c.behind(111, &config));
    // A row too big for one message is sent without it, for the client to read.
    let text = feed::change_text(1, "t", 1.into(), Some("x".repeat(100).into()), 64);
    let v: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rowOmitted"], true);
    assert!(v["row"].is_null());
}

#[test]
fn the_feed_the_room_list_and_the_static_files_have_routes() {
    use nanotype::api::route::route;
    use nanotype::api::{Operation, Route};
    let feed = route::<Items>("GET", "/rooms/r1/_feed").unwrap();
    assert_eq!(feed, Route::Feed { room: "r1".into() });
    assert_eq!(feed.operation(), Operation::Feed);
    assert_eq!(feed.room(), Some("r1"));
    assert_eq!(
        route::<Items>("POST", "/rooms/r1/_feed")
            .unwrap_err()
            .status,
        405
    );
    assert_eq!(route::<Items>("GET", "/_rooms").unwrap(), Route::Rooms);
    let Route::Asset(client) = route::<Items>("GET", "/_nanotype/client.js").unwrap() else {
        panic!("client.js is an asset")
    };
    assert!(client.body.contains("export function subscribe"));
    assert!(route::<Items>("GET", "/_nanotype/dashboard").is_ok());
    assert_eq!(
        route::<Items>("GET", "/_nanotype/secrets")
            .unwrap_err()
            .status,
        404
    );
}

#[test]
fn changes_made_with_raw_sql_join_the_feed_once_with_their_rows() {
    let dir = TempDir::new("feed-raw");
    let e = open(&dir, Some(FeedConfig::default()));
    let mut rng = Rng::new(8);
    let a = Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    let b = Item::insert(e.primary(), &random_item(&mut rng, "f")).unwrap();
    assert_eq!(e.primary().take_feed().len(), 2);
    // Raw SQL, as a custom route runs it, then a generated write in the same request.
    e.primary()
        .execute("UPDATE items SET note = 'raw'", &[])
        .unwrap();
    Item::delete(e.primary(), a.id).unwrap();
    e.primary().feed_captured().unwrap();
    let sent = e.primary().take_feed();
    assert_eq!(
        sent.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [3, 4, 5],
        "the two raw updates, then the delete: in seq order, once"
    );
    let raw: Json = serde_json::from_str(&sent[1].1).unwrap();
    assert_eq!(raw["key"], b.id);
    assert_eq!(raw["row"]["note"], "raw");
    // Row `a` was deleted after its raw update: its message says so (its state now).
    let gone: Json = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(gone["op"], "delete");
    // Nothing new: nothing sent, and a resuming client gets the same messages from the log.
    e.primary().feed_captured().unwrap();
    assert!(e.primary().take_feed().is_empty());
    assert_eq!(
        seqs(&feed::catch_up(e.primary(), Some(2), 5).unwrap()),
        [3, 4, 5]
    );
}
