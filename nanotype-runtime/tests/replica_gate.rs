//! No half-rebuilt reads: the gate the Worker applies to every replica read (the room's state,
//! read in the same D1 transaction as the rows) refuses a room whose resync is part-way, so the
//! read falls back to the room's primary instead of returning part of the room.

mod support;

use std::rc::Rc;

use nanotype::api::params::replica_gate;
use nanotype::sync::{replica_room_state, SyncConfig};
use nanotype::{Primary, Statement};
use support::*;

fn gate(native: &nanotype::native::NativeReplica, need: i64) -> Result<(), String> {
    let state = block(replica_room_state(native, "g")).unwrap();
    replica_gate("g", state.as_ref(), need)
}

fn replica_count(native: &nanotype::native::NativeReplica) -> usize {
    replica_rows(native, Item::table_def(), "g").len()
}

#[test]
fn a_room_being_rebuilt_is_never_served_from_the_replica() {
    let dir = TempDir::new("gate");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 4));
    faulty.calm();
    let config = SyncConfig {
        backfill_page: 100,
        ..SyncConfig::default()
    };
    let (e, _) = engine(&dir.path("g.db"), faulty.clone(), "g", config);
    assert!(gate(&native, 0).unwrap_err().contains("not seen"));
    let mut rng = Rng::new(11);
    e.primary()
        .transaction(|| {
            for _ in 0..1_000 {
                Item::insert(e.primary(), &random_item(&mut rng, "g"))?;
            }
            Ok(())
        })
        .unwrap();
    block(e.sync()).unwrap();
    let seq = e.current_seq().unwrap();
    assert_eq!(gate(&native, seq), Ok(()));
    assert!(gate(&native, seq + 1).unwrap_err().contains("watermark"));
    assert_eq!(replica_count(&native), 1_000);

    // The replica loses the room; a resync is requested and gets part-way before D1 fails.
    native
        .batch_sync(&[
            Statement::new("DELETE FROM \"items\" WHERE \"room_id\" = 'g'", vec![]),
            Statement::new("DELETE FROM \"_nt_rooms\" WHERE \"room_id\" = 'g'", vec![]),
        ])
        .unwrap();
    assert!(gate(&native, 0).unwrap_err().contains("not seen"));
    e.request_resync().unwrap();
    *faulty.budget.borrow_mut() = Some(4); // the claim and three pages
    assert!(block(e.sync()).is_err());
    let copied = replica_count(&native);
    assert!(
        copied > 0 && copied < 1_000,
        "part of the room is in the replica: {copied}"
    );
    assert!(
        gate(&native, 0).unwrap_err().contains("being rebuilt"),
        "a part-way resync is never served"
    );

    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert_eq!(gate(&native, e.current_seq().unwrap()), Ok(()));
    assert_eq!(replica_count(&native), 1_000);
    assert_converged(e.primary(), &native, "g");
}
