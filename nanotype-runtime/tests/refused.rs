//! Poison changes parked in plain sight: a change the replica refuses for good (its column is
//! not migrated yet) blocks only its room, says so in the room's health with the reason and the
//! oldest seq waiting, sends the room's replica reads to the primary, and drains with nothing
//! lost once the cause is fixed.

mod support;

use nanotype::api::params::replica_gate;
use nanotype::native::NativeReplica;
use nanotype::sync::{replica_room_state, SyncConfig};
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
    let h = e.health().unwrap();
    let blocked = h.blocked.expect("the room says it is blocked");
    assert!(
        blocked.reason.contains("no column named count"),
        "{}",
        blocked.reason
    );
    assert_eq!(blocked.seq, seq_before + 1, "the oldest change waiting");
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
