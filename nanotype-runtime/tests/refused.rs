//! Poison changes parked in plain sight: a change the replica refuses for good (its column is
//! not migrated yet) blocks only its room, says so in the room's health with the reason and the
//! oldest seq waiting, sends the room's replica reads to the primary, and drains with nothing
//! lost once the cause is fixed.

mod support;

use nanotype::api::params::replica_gate;
use nanotype::native::NativeReplica;
use nanotype::sync::{replica_room_state, SyncConfig};
use nanotype::{Replica, Row, Statement};
use support::*;

#[test]
fn a_refused_change_blocks_its_room_visibly_until_the_migration_lands() {
    let dir = TempDir::new("refused");
    // A replica whose `tags` lacks the `count` column (that D1 migration is not applied yet).
    let native = NativeReplica::open(dir.path("replica.db")).unwrap();
    native.execute_batch(nanotype::meta::REPLICA_DDL).unwrap();
    native.execute_batch(Item::REPLICA_DDL).unwrap();
    native
        .execute_batch(
            "CREATE TABLE \"tags\" (\"room_id\" TEXT NOT NULL, \"name\" TEXT NOT NULL, \
             \"room_tag\" TEXT NOT NULL, PRIMARY KEY (\"room_id\", \"name\"))",
        )
        .unwrap();
    let (e, sched) = engine(
        &dir.path("a.db"),
        native.clone(),
        "a",
        SyncConfig::default(),
    );
    let (other, _) = engine(
        &dir.path("b.db"),
        native.clone(),
        "b",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(9);
    block(e.sync()).unwrap();
    block(other.sync()).unwrap();

    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    block(e.sync()).unwrap();
    let seq_before = e.current_seq().unwrap();
    let tag = Tag {
        name: "t".into(),
        room_tag: "a".into(),
        count: 1,
    };
    Tag::insert(e.primary(), &tag).unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    assert!(block(e.sync()).is_err());
    assert_eq!(
        e.health().unwrap().blocked,
        None,
        "one refusal is retried before the room is parked"
    );
    assert!(block(e.sync()).is_err());
    let h = e.health().unwrap();
    let blocked = h.blocked.expect("the room says it is blocked");
    assert!(
        blocked.reason.contains("no column named count"),
        "{}",
        blocked.reason
    );
    assert_eq!(blocked.seq, seq_before + 1, "the oldest change waiting");
    assert_eq!(blocked.code.as_deref(), Some("SQLITE_ERROR"));
    assert!(!h.is_healthy);
    assert_eq!(h.outbox_depth, 2, "nothing dropped, nothing reordered");
    assert!(sched.take().is_some(), "retried with backoff");
    // Replica reads of the room go to its primary meanwhile.
    let state = block(replica_room_state(&native, "a")).unwrap();
    assert!(replica_gate("a", state.as_ref(), 0)
        .unwrap_err()
        .contains("refused"));

    // Other rooms go on.
    Item::insert(other.primary(), &random_item(&mut rng, "b")).unwrap();
    block(other.sync()).unwrap();
    assert_converged(other.primary(), &native, "b");

    // The migration lands: the next retry drains the room.
    native
        .execute_batch("ALTER TABLE \"tags\" ADD COLUMN \"count\" INTEGER NOT NULL DEFAULT 0")
        .unwrap();
    block(e.sync()).unwrap();
    let h = e.health().unwrap();
    assert_eq!((h.blocked, h.outbox_depth, h.lag), (None, 0, 0));
    assert_converged(e.primary(), &native, "a");
    let state = block(replica_room_state(&native, "a")).unwrap();
    assert_eq!(
        replica_gate("a", state.as_ref(), e.current_seq().unwrap()),
        Ok(())
    );
}

/// A replica that refuses one room's changes in the given way, set up by `tamper` on a fresh
/// replica: the room is parked as blocked after two refusals with the same code, whatever the
/// message says, its replica reads fall back, and it drains once `fix` runs.
fn parks(name: &str, tamper: &str, fix: &str, code: &str, item: impl Fn(&mut Item)) {
    let dir = TempDir::new(name);
    let native = replica(&dir.path("replica.db"));
    let (e, _) = engine(
        &dir.path("a.db"),
        native.clone(),
        "a",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(11);
    let mut first = random_item(&mut rng, "a");
    first.note = Some("kept".into()); // the rebuilds below keep it as it is
    Item::insert(e.primary(), &first).unwrap();
    block(e.sync()).unwrap();
    native.connection().execute_batch(tamper).unwrap();
    let mut poison = random_item(&mut rng, "a");
    item(&mut poison);
    Item::insert(e.primary(), &poison).unwrap();
    for _ in 0..2 {
        assert!(block(e.sync()).is_err(), "{name}: refused");
    }
    let h = e.health().unwrap();
    let blocked = h
        .blocked
        .unwrap_or_else(|| panic!("{name}: parked as blocked"));
    assert_eq!(
        blocked.code.as_deref(),
        Some(code),
        "{name}: {}",
        blocked.reason
    );
    let state = block(replica_room_state(&native, "a")).unwrap();
    assert!(
        replica_gate("a", state.as_ref(), 0).is_err(),
        "{name}: reads fall back"
    );
    native.connection().execute_batch(fix).unwrap();
    block(e.sync()).unwrap();
    let h = e.health().unwrap();
    assert_eq!((h.blocked, h.outbox_depth, h.lag), (None, 0, 0), "{name}");
    assert!(
        !h.failing && h.last_error.is_some() && h.last_error_at.is_some(),
        "{name}: the error is past"
    );
    assert_converged(e.primary(), &native, "a");
}

/// The replica's `items` rebuilt with these `kind` and `note` columns, keeping its rows.
fn rebuild(kind: &str, note: &str) -> String {
    format!(
        "CREATE TABLE t2 AS SELECT * FROM items; DROP TABLE items; \
         CREATE TABLE items (room_id TEXT NOT NULL, id INTEGER NOT NULL, room_tag TEXT NOT NULL, \
         {kind}, n INTEGER NOT NULL, score REAL NOT NULL, {note}, data BLOB NOT NULL, \
         PRIMARY KEY (room_id, id)); \
         INSERT INTO items SELECT room_id, id, room_tag, kind, n, score, COALESCE(note, ''), data \
         FROM t2; DROP TABLE t2;"
    )
}

#[test]
fn refusals_are_judged_by_their_code_not_their_message() {
    // A trigger whose message names nothing the runtime could recognise.
    parks(
        "refused-trigger",
        "CREATE TRIGGER poison BEFORE INSERT ON items WHEN NEW.kind = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'poison: this row may not pass'); END",
        "DROP TRIGGER poison",
        "SQLITE_CONSTRAINT_TRIGGER",
        |i| i.kind = "poison".into(),
    );
    // A trigger whose message looks like a missing column is judged by its code all the same.
    parks(
        "refused-trigger-text",
        "CREATE TRIGGER poison BEFORE INSERT ON items WHEN NEW.kind = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'no such column: nothing'); END",
        "DROP TRIGGER poison",
        "SQLITE_CONSTRAINT_TRIGGER",
        |i| i.kind = "poison".into(),
    );
    parks(
        "refused-check",
        &rebuild("kind TEXT NOT NULL CHECK (kind <> 'poison')", "note TEXT"),
        &rebuild("kind TEXT NOT NULL", "note TEXT"),
        "SQLITE_CONSTRAINT_CHECK",
        |i| i.kind = "poison".into(),
    );
    parks(
        "refused-not-null",
        &rebuild("kind TEXT NOT NULL", "note TEXT NOT NULL"),
        &rebuild("kind TEXT NOT NULL", "note TEXT"),
        "SQLITE_CONSTRAINT_NOTNULL",
        |i| i.note = None,
    );
    parks(
        "refused-column",
        "ALTER TABLE items RENAME COLUMN note TO later",
        "ALTER TABLE items RENAME COLUMN later TO note",
        "SQLITE_ERROR",
        |_| {},
    );
}

#[test]
fn a_value_over_the_replicas_size_limit_parks_the_room() {
    let dir = TempDir::new("refused-too-big");
    let native = replica(&dir.path("replica.db"));
    // The replica keeps less than the room (as D1's row limit is below a Durable Object's).
    native
        .connection()
        .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 10_000)
        .unwrap();
    let (e, _) = engine(
        &dir.path("a.db"),
        native.clone(),
        "a",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(12);
    let mut big = random_item(&mut rng, "a");
    big.note = Some("x".repeat(20_000));
    Item::insert(e.primary(), &big).unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    for _ in 0..2 {
        assert!(block(e.sync()).is_err());
    }
    let blocked = e.health().unwrap().blocked.expect("parked");
    assert_eq!(
        blocked.code.as_deref(),
        Some("SQLITE_TOOBIG"),
        "{}",
        blocked.reason
    );
    assert_eq!(e.health().unwrap().outbox_depth, 2, "nothing dropped");
}

/// Once `losing` is set, fails every batch of more than one statement with an error that carries
/// no SQLite code (a lost connection): a change batch fails, the one-statement mark gets through.
struct Flaky(NativeReplica, std::cell::Cell<bool>);

impl Replica for Flaky {
    async fn query(&self, stmt: &Statement) -> nanotype::Result<Vec<Row>> {
        self.0.query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> nanotype::Result<Vec<Vec<Row>>> {
        if self.1.get() && stmts.len() > 1 {
            return Err(nanotype::Error::Replica(
                "D1_ERROR: Network connection lost.".into(),
            ));
        }
        self.0.batch(stmts).await
    }
}

#[test]
fn a_room_failing_longer_than_its_staleness_bound_reads_from_its_primary() {
    let dir = TempDir::new("refused-stale");
    let native = replica(&dir.path("replica.db"));
    let flaky = std::rc::Rc::new(Flaky(native.clone(), std::cell::Cell::new(false)));
    let (e, sched) = engine(&dir.path("a.db"), flaky.clone(), "a", SyncConfig::default());
    let mut rng = Rng::new(13);
    // The room's first copy lands; then D1 starts losing change batches.
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    block(e.sync()).unwrap();
    flaky.1.set(true);
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    assert!(block(e.sync()).is_err());
    let state = block(replica_room_state(&native, "a")).unwrap().unwrap();
    assert!(
        state.watermark >= 0,
        "failing, but not for long yet: {state:?}"
    );
    assert!(!e.health().unwrap().stale);
    sched.advance(31_000);
    assert!(block(e.sync()).is_err());
    let h = e.health().unwrap();
    assert!(h.stale && h.failing && h.blocked.is_none(), "{h:?}");
    let state = block(replica_room_state(&native, "a")).unwrap();
    assert!(replica_gate("a", state.as_ref(), 0)
        .unwrap_err()
        .contains("staleness"));
}
