//! The outbox as a ring ([`nanotype::outbox`]): a change takes the oldest record the replica
//! has, so the outbox costs one row written per change and no delete; it never takes a record
//! the replica lacks (it grows instead, and shrinks back after the lag), a restarted room sends
//! nothing twice, and a room whose outbox predates the ring keeps its pending changes.
#![cfg(feature = "native")]

mod support;

use std::rc::Rc;

use nanotype::outbox;
use nanotype::sync::SyncConfig;
use support::*;

/// The outbox's records: how many, the oldest seq and the newest.
fn records<R: nanotype::Replica>(e: &TestEngine<R>) -> (i64, i64, i64) {
    let conn = e.primary().inner().connection();
    conn.query_row(
        "SELECT COUNT(*), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM _nt_outbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn calm(native: &nanotype::native::NativeReplica) -> Rc<FaultyReplica> {
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 5));
    faulty.calm();
    faulty
}

/// While the replica is away every change keeps its own record (none is taken unsent), seq
/// stays contiguous; once it is back, everything lands in order, and later changes take the
/// records it has instead of adding new ones.
#[test]
fn a_change_never_takes_a_record_the_replica_lacks() {
    let dir = TempDir::new("ring-lag");
    let native = replica(&dir.path("replica.db"));
    let faulty = calm(&native);
    let (e, sched) = engine(
        &dir.path("r.db"),
        faulty.clone(),
        "r",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(3);
    for _ in 0..10 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    }
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "r");
    let (before, _, seq0) = records(&e);

    *faulty.budget.borrow_mut() = Some(0);
    for i in 0..60 {
        let row = Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
        if i % 3 == 0 {
            Item::delete(e.primary(), row.id).unwrap();
        }
        let _ = block(e.sync());
    }
    let changes = 60 + 20;
    assert_eq!(outbox::depth(e.primary()).unwrap(), changes);
    let (n, min, max) = records(&e);
    assert_eq!(max, seq0 + changes, "seq is contiguous");
    assert!(
        n >= changes && max - min + 1 == n,
        "{n} records, {min}..{max}"
    );
    assert!(
        n <= before + changes,
        "{n} records for {before} + {changes}"
    );

    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert_eq!(outbox::depth(e.primary()).unwrap(), 0);
    assert_converged(e.primary(), &native, "r");
    let (grown, _, _) = records(&e);
    for _ in 0..200 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
        // The room stores the replica's progress at most every 10 s.
        sched.advance(10_000);
        block(e.sync()).unwrap();
    }
    let (after, _, max) = records(&e);
    assert_eq!(max, seq0 + changes + 200);
    assert!(
        after <= grown,
        "200 changes added records: {grown} -> {after}"
    );
    assert_converged(e.primary(), &native, "r");
}

/// A ring grown past [`outbox::KEEP`] during a long outage is given back once the replica has
/// it, keeping the newest record (seq never goes back).
#[test]
fn a_ring_grown_during_an_outage_shrinks_back() {
    let dir = TempDir::new("ring-shrink");
    let native = replica(&dir.path("replica.db"));
    let faulty = calm(&native);
    let (e, _) = engine(
        &dir.path("r.db"),
        faulty.clone(),
        "r",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(4);
    block(e.sync()).unwrap();
    *faulty.budget.borrow_mut() = Some(0);
    let n = outbox::KEEP + 300;
    for _ in 0..n {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    }
    assert_eq!(records(&e).0, n);
    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "r");
    let (left, _, max) = records(&e);
    assert_eq!(max, n, "the newest record stays");
    assert!(left <= outbox::KEEP, "{left} records kept");
    Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    assert_eq!(e.current_seq().unwrap(), n + 1);
}

/// A room opened again reads how far the replica has applied from its own database: it sends
/// none of the records it kept, and goes on from there.
#[test]
fn a_restarted_room_sends_nothing_twice() {
    let dir = TempDir::new("ring-restart");
    let native = replica(&dir.path("replica.db"));
    let faulty = calm(&native);
    let mut rng = Rng::new(5);
    {
        let (e, _) = engine(
            &dir.path("r.db"),
            faulty.clone(),
            "r",
            SyncConfig::default(),
        );
        for _ in 0..30 {
            Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
        }
        block(e.sync()).unwrap();
        assert!(records(&e).0 > 0, "records are kept for later changes");
    }
    let sent = faulty.stats.borrow().rows_upserted;
    let (e, _) = engine(
        &dir.path("r.db"),
        faulty.clone(),
        "r",
        SyncConfig::default(),
    );
    block(e.sync()).unwrap();
    assert_eq!(
        faulty.stats.borrow().rows_upserted,
        sent,
        "a kept record was sent again"
    );
    let row = Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    block(e.sync()).unwrap();
    assert_eq!(faulty.stats.borrow().rows_upserted, sent + 1);
    assert_eq!(e.current_seq().unwrap(), 31);
    assert!(Item::get(e.primary(), row.id).unwrap().is_some());
    assert_converged(e.primary(), &native, "r");
}

/// An outbox written before the ring (sent records deleted but the newest, kept with an empty
/// `tbl`; no applied mark) is read as such: its unsent changes are delivered, the marker is not.
#[test]
fn an_outbox_from_before_the_ring_keeps_its_unsent_changes() {
    let dir = TempDir::new("ring-upgrade");
    let native = replica(&dir.path("replica.db"));
    let faulty = calm(&native);
    let mut rng = Rng::new(6);
    {
        let (e, _) = engine(
            &dir.path("r.db"),
            faulty.clone(),
            "r",
            SyncConfig::default(),
        );
        for _ in 0..5 {
            Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
        }
        block(e.sync()).unwrap();
        // The old layout: sent records gone but the newest, marked sent; no applied mark.
        let conn = e.primary().inner().connection();
        conn.execute_batch(
            "DELETE FROM _nt_outbox WHERE seq < (SELECT MAX(seq) FROM _nt_outbox);
             UPDATE _nt_outbox SET tbl = '';
             UPDATE _nt_meta SET value = json_remove(value, '$.outbox_applied') WHERE key = 'health';",
        )
        .unwrap();
        // Two changes the old runtime recorded and did not send.
        for _ in 0..2 {
            conn.execute(
                "INSERT INTO items (room_tag, kind, n, score, note, data) VALUES ('r', 'a', 1, 1.0, NULL, x'')",
                [],
            )
            .unwrap();
        }
    }
    let sent = faulty.stats.borrow().rows_upserted;
    let (e, _) = engine(
        &dir.path("r.db"),
        faulty.clone(),
        "r",
        SyncConfig::default(),
    );
    assert_eq!(outbox::applied(e.primary()).unwrap(), 5);
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "r");
    assert_eq!(faulty.stats.borrow().rows_upserted, sent + 2);
}

/// The health row (the applied mark and the counters) of syncs that worked is stored at most
/// every 10 s, not per sync: until then later changes keep their own records (the ring grows,
/// one row written per change either way); once it is stored they take the records the replica
/// has. Reading the health stores what is pending, so counters someone saw never go back. (A
/// restart before the mark is stored sends nothing twice: `a_restarted_room_sends_nothing_twice`
/// restarts such a room.)
#[test]
fn syncs_that_worked_store_the_health_row_at_most_every_ten_seconds() {
    let dir = TempDir::new("ring-health");
    let native = replica(&dir.path("replica.db"));
    let (e, sched) = engine(
        &dir.path("r.db"),
        native.clone(),
        "r",
        SyncConfig::default(),
    );
    let stored = |e: &TestEngine<nanotype::native::NativeReplica>| -> (i64, i64) {
        e.primary()
            .inner()
            .connection()
            .query_row(
                "SELECT COALESCE(json_extract(value, '$.total_syncs'), 0), \
                 json_extract(value, '$.outbox_applied') FROM _nt_meta WHERE key = 'health'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let mut rng = Rng::new(11);
    let before = stored(&e);
    for _ in 0..5 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
        sched.advance(1_000);
        block(e.sync()).unwrap();
    }
    assert_converged(e.primary(), &native, "r");
    assert_eq!(stored(&e), before, "five syncs within 10 s stored nothing");
    assert_eq!(records(&e).0, 5, "so each change kept its own record");
    assert_eq!(
        outbox::depth(e.primary()).unwrap(),
        0,
        "all of them applied"
    );

    sched.advance(10_000);
    Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    block(e.sync()).unwrap();
    assert_eq!(stored(&e), (6, 6), "10 s later: the counters and the mark");
    for _ in 0..5 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    }
    assert_eq!(
        records(&e).0,
        6,
        "later changes take the records the replica has"
    );

    sched.advance(1_000);
    block(e.sync()).unwrap();
    assert_eq!(stored(&e), (6, 6));
    let health = e.health().unwrap();
    assert_eq!(health.total_syncs, 7);
    assert_eq!(stored(&e), (7, 11), "reading the health stored it");
}
