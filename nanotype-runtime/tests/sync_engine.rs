//! The sync engine's behaviour on the native backend: room isolation, write atomicity,
//! backfill that resumes, resync that repairs, read consistency and fallback, coalescing, health.
#![cfg(feature = "native")]

mod support;

use std::rc::Rc;

use nanotype::native::NativeReplica;
use nanotype::read::ReplicaReads;
use nanotype::sync::Source;
use nanotype::sync::SyncConfig;
use nanotype::{outbox, Consistency, Error, Page, Primary};
use support::*;

#[test]
fn replica_reads_never_return_another_rooms_rows() {
    let dir = TempDir::new("isolation");
    let native = replica(&dir.path("replica.db"));
    let rooms: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    let mut rng = Rng::new(7);
    let mut ids: Vec<Vec<i64>> = Vec::new();
    for room in &rooms {
        let (e, _) = engine(
            &dir.path(&format!("{room}.db")),
            native.clone(),
            room,
            SyncConfig::default(),
        );
        let mut mine = Vec::new();
        for _ in 0..150 {
            mine.push(
                Item::insert(e.primary(), &random_item(&mut rng, room))
                    .unwrap()
                    .id,
            );
        }
        block(e.sync()).unwrap();
        assert_converged(e.primary(), &native, room);
        ids.push(mine);
    }
    // Every room has rows with the same keys (each room's ids start at 1): a leak would show.
    let reads = ReplicaReads(native.clone());
    let mut checked = 0usize;
    for n in 0..10_000 {
        let i = rng.below(rooms.len() as u64) as usize;
        let room = &rooms[i];
        let rows: Vec<Item> = match n % 4 {
            0 => block(Item::room_list(
                &reads,
                room,
                &Page::first(1 + rng.below(40) as u32),
            ))
            .unwrap(),
            1 => {
                let after = rng.below(150) as i64;
                block(Item::room_list(
                    &reads,
                    room,
                    &Page::after(after, 25).desc(),
                ))
                .unwrap()
            }
            2 => {
                let kind = ["a", "b", "c"][rng.below(3) as usize];
                block(Item::room_find_by_kind(
                    &reads,
                    room,
                    kind,
                    &Page::first(30),
                ))
                .unwrap()
            }
            _ => {
                let id = ids[i][rng.below(ids[i].len() as u64) as usize];
                block(Item::room_get(&reads, room, id))
                    .unwrap()
                    .into_iter()
                    .collect()
            }
        };
        for row in &rows {
            assert_eq!(
                &row.room_tag, room,
                "a read of room {room} returned a row of room {}",
                row.room_tag
            );
        }
        checked += rows.len();
        if n % 1000 == 0 {
            assert_eq!(block(Item::room_count(&reads, room)).unwrap(), 150);
        }
    }
    assert!(checked > 50_000, "only {checked} rows checked");
    // A room id is data, bound as a parameter: hostile ids read nothing and break nothing.
    let hostile = "r0' OR '1'='1";
    assert!(block(Item::room_list(&reads, hostile, &Page::first(10)))
        .unwrap()
        .is_empty());
    assert!(matches!(
        block(Item::room_list(&reads, "", &Page::first(10))),
        Err(Error::InvalidRoom(_))
    ));
}

#[test]
fn a_failure_between_row_write_and_outbox_append_leaves_neither() {
    let dir = TempDir::new("atomic");
    let native = replica(&dir.path("replica.db"));
    let (e, _) = engine(
        &dir.path("a.db"),
        native.clone(),
        "a",
        SyncConfig::default(),
    );
    let db = e.primary();
    let kept = Item::insert(db, &random_item(&mut Rng::new(1), "a")).unwrap();
    // Make SQLite itself fail the outbox append, after the row statement ran.
    db.execute_batch(
        "CREATE TRIGGER fail_append BEFORE INSERT ON _nt_outbox BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    )
    .unwrap();
    let before = items_of(db);
    let depth = outbox::depth(db).unwrap();
    let err = Item::insert(db, &random_item(&mut Rng::new(2), "a")).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    let mut changed = kept.clone();
    changed.kind = "changed".into();
    assert!(Item::update(db, &changed).is_err());
    assert!(Item::delete(db, kept.id).is_err());
    assert_eq!(
        items_of(db),
        before,
        "a row changed without its outbox record"
    );
    assert_eq!(outbox::depth(db).unwrap(), depth);
    // And the other way round: a row statement that fails appends nothing.
    db.execute_batch("DROP TRIGGER fail_append").unwrap();
    let mut bad = random_item(&mut Rng::new(3), "a");
    bad.score = f64::NAN;
    assert!(matches!(Item::insert(db, &bad), Err(Error::NaN { .. })));
    assert_eq!(outbox::depth(db).unwrap(), depth);
    block(e.sync()).unwrap();
    assert_converged(db, &native, "a");
}

#[test]
fn interrupted_backfill_resumes_and_converges_under_live_writes() {
    let dir = TempDir::new("backfill");
    let native = replica(&dir.path("replica.db"));
    let path = dir.path("big.db");
    let config = SyncConfig {
        backfill_page: 100,
        ..SyncConfig::default()
    };
    // A room that grew while no replica existed: its outbox holds 3,000 changes; the rows must
    // come over by backfill.
    {
        let db = primary(&path);
        outbox::install(&db).unwrap();
        let mut rng = Rng::new(11);
        for _ in 0..3000 {
            Item::insert(&db, &random_item(&mut rng, "big")).unwrap();
        }
    }
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 5));
    faulty.calm();
    let (e, _) = engine(&path, faulty.clone(), "big", config.clone());
    // The replica goes away after a dozen batches: the backfill stops half-way.
    *faulty.budget.borrow_mut() = Some(12);
    assert!(block(e.sync()).is_err());
    let sent_before = faulty.stats.borrow().rows_upserted;
    assert!(sent_before > 0 && sent_before < 3000, "{sent_before}");
    drop(e); // and the host dies
             // Live writes arrive while it is down and while the backfill continues.
    let db = primary(&path);
    let mut rng = Rng::new(12);
    for _ in 0..200 {
        Item::insert(&db, &random_item(&mut rng, "big")).unwrap();
    }
    drop(db);
    let (e, _) = engine(&path, faulty.clone(), "big", config);
    for _ in 0..20 {
        *faulty.budget.borrow_mut() = Some(2);
        let _ = block(e.sync());
        let items = items_of(e.primary());
        let mut victim = items[rng.below(items.len() as u64) as usize].clone();
        victim.kind = "edited".into();
        Item::update(e.primary(), &victim).unwrap();
        let gone = items[rng.below(items.len() as u64) as usize].id;
        Item::delete(e.primary(), gone).unwrap();
        Item::insert(e.primary(), &random_item(&mut rng, "big")).unwrap();
    }
    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "big");
    let total = faulty.stats.borrow().rows_upserted;
    // Resumed, not restarted: far fewer than two full copies went over the wire.
    println!("backfill: {sent_before} rows before the outage, {total} in all for 3,000 + 240 rows");
    assert!(total < 4500, "{total} rows sent");
    assert!(!e.resync_in_progress().unwrap());
    assert_eq!(e.health().unwrap().lag, 0);
}

#[test]
fn force_resync_repairs_a_tampered_replica_and_leaves_other_rooms_alone() {
    let dir = TempDir::new("resync");
    let native = replica(&dir.path("replica.db"));
    let (a, _) = engine(
        &dir.path("a.db"),
        native.clone(),
        "a",
        SyncConfig::default(),
    );
    let (b, _) = engine(
        &dir.path("b.db"),
        native.clone(),
        "b",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(3);
    for _ in 0..300 {
        Item::insert(a.primary(), &random_item(&mut rng, "a")).unwrap();
        Item::insert(b.primary(), &random_item(&mut rng, "b")).unwrap();
    }
    Tag::upsert(
        a.primary(),
        &Tag {
            name: "t".into(),
            room_tag: "a".into(),
            count: 1,
        },
    )
    .unwrap();
    block(a.sync()).unwrap();
    block(b.sync()).unwrap();
    let b_before = replica_rows(&native, Item::table_def(), "b");
    // Tamper with room a's replica rows: change, delete, and add rows the primary never had.
    native
        .connection()
        .execute_batch(
            "UPDATE items SET kind = 'tampered', n = -1 WHERE room_id = 'a' AND id % 7 = 0;
             DELETE FROM items WHERE room_id = 'a' AND id % 11 = 0;
             INSERT INTO items (room_id, id, room_tag, kind, n, score, note, data) VALUES ('a', 100000, 'a', 'x', 0, 0, NULL, x'');
             DELETE FROM tags WHERE room_id = 'a';
             INSERT INTO tags (room_id, name, room_tag, count) VALUES ('a', 'ghost', 'a', 9);",
        )
        .unwrap();
    block(a.resync()).unwrap();
    assert_converged(a.primary(), &native, "a");
    assert_eq!(replica_rows(&native, Item::table_def(), "b"), b_before);
    // The room's record itself deleted by hand: the next flush notices and resyncs.
    native
        .connection()
        .execute_batch(
            "DELETE FROM _nt_rooms WHERE room_id = 'a'; DELETE FROM items WHERE room_id = 'a';",
        )
        .unwrap();
    Item::insert(a.primary(), &random_item(&mut rng, "a")).unwrap();
    block(a.sync()).unwrap();
    assert_converged(a.primary(), &native, "a");
}

#[test]
fn a_restored_primary_takes_the_room_back() {
    let dir = TempDir::new("restore");
    let native = replica(&dir.path("replica.db"));
    let path = dir.path("r.db");
    let (e, _) = engine(&path, native.clone(), "r", SyncConfig::default());
    let mut rng = Rng::new(4);
    for _ in 0..50 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    }
    block(e.sync()).unwrap();
    drop(e);
    std::fs::copy(&path, dir.path("backup.db")).unwrap();
    let _ = std::fs::copy(path.with_extension("db-wal"), dir.path("backup.db-wal"));
    let (e, _) = engine(&path, native.clone(), "r", SyncConfig::default());
    for _ in 0..50 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    }
    block(e.sync()).unwrap();
    drop(e);
    // Point-in-time restore: the primary goes back to the backup; the replica is ahead of it.
    let (e, _) = engine(
        &dir.path("backup.db"),
        native.clone(),
        "r",
        SyncConfig::default(),
    );
    assert_eq!(items_of(e.primary()).len(), 50);
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "r");
}

#[test]
fn consistency_modes_and_fallback() {
    let dir = TempDir::new("reads");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 9));
    faulty.calm();
    let (e, _) = engine(
        &dir.path("c.db"),
        faulty.clone(),
        "c",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(8);
    let first = Item::insert(e.primary(), &random_item(&mut rng, "c")).unwrap();
    block(e.sync()).unwrap();
    let seq_flushed = e.current_seq().unwrap();
    // A write not yet flushed.
    let second = Item::insert(e.primary(), &random_item(&mut rng, "c")).unwrap();
    let seq = e.current_seq().unwrap();
    assert!(seq > seq_flushed);
    block(async {
        let strong = e.reads(Consistency::Strong);
        assert_eq!(Item::room_count(&strong, "c").await.unwrap(), 2);
        assert_eq!(strong.last_source(), Some(Source::Primary));

        let replica = e.reads(Consistency::Replica);
        assert_eq!(
            Item::room_count(&replica, "c").await.unwrap(),
            1,
            "the replica lags: it has not seen the second write"
        );
        assert_eq!(replica.last_source(), Some(Source::Replica));

        let ryw = e.reads(Consistency::ReadYourWrites(seq));
        assert!(Item::room_get(&ryw, "c", second.id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            ryw.last_source(),
            Some(Source::Primary),
            "the replica has not reached the caller's seq"
        );
        let ryw_old = e.reads(Consistency::ReadYourWrites(seq_flushed));
        assert!(Item::room_get(&ryw_old, "c", first.id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(ryw_old.last_source(), Some(Source::Replica));

        e.sync().await.unwrap();
        let ryw = e.reads(Consistency::ReadYourWrites(seq));
        assert_eq!(Item::room_count(&ryw, "c").await.unwrap(), 2);
        assert_eq!(ryw.last_source(), Some(Source::Replica));

        // The replica fails some reads: those fall back to the primary and still answer.
        *faulty.enabled.borrow_mut() = true;
        let replica = e.reads(Consistency::Replica);
        let mut fell_back = 0;
        for _ in 0..50 {
            assert_eq!(Item::room_count(&replica, "c").await.unwrap(), 2);
            if replica.last_source() == Some(Source::Primary) {
                fell_back += 1;
            }
        }
        assert!(fell_back > 0, "no read fell back");
        // Reads of another room are refused, not answered from this room's primary.
        assert!(matches!(
            Item::room_count(&replica, "other").await,
            Err(Error::WrongRoom { .. })
        ));
    });
}

#[test]
fn reads_fall_back_when_there_is_no_replica_and_writes_queue() {
    let dir = TempDir::new("noreplica");
    let sched = Rc::new(nanotype::native::ManualScheduler::new());
    let e = nanotype::sync::Engine::builder("n")
        .tables(tables())
        .replica(None::<NativeReplica>)
        .open(primary(&dir.path("n.db")), sched.clone())
        .unwrap();
    Item::insert(e.primary(), &random_item(&mut Rng::new(1), "n")).unwrap();
    assert!(matches!(block(e.sync()), Err(Error::Replica(_))));
    assert!(sched.take().is_some(), "a retry was scheduled");
    let h = e.health().unwrap();
    assert!(!h.is_healthy && !h.replica_available);
    assert_eq!((h.outbox_depth, h.lag, h.sync_errors), (1, 1, 1));
    let r = e.reads(Consistency::Replica);
    assert_eq!(block(Item::room_count(&r, "n")).unwrap(), 1);
    assert_eq!(r.last_source(), Some(Source::Primary));
}

#[test]
fn failures_back_off_keep_the_change_and_a_retry_converges() {
    let dir = TempDir::new("retry");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 2));
    faulty.calm();
    let config = SyncConfig {
        backoff_base_ms: 100,
        backoff_cap_ms: 1000,
        backoff_jitter: 0.0,
        ..SyncConfig::default()
    };
    let (e, sched) = engine(&dir.path("x.db"), faulty.clone(), "x", config);
    block(e.sync()).unwrap();
    // The replica is down: every batch fails.
    *faulty.budget.borrow_mut() = Some(0);
    let item = Item::insert(e.primary(), &random_item(&mut Rng::new(5), "x")).unwrap();
    let mut delays = Vec::new();
    for _ in 0..8 {
        assert!(matches!(block(e.sync()), Err(Error::Replica(_))));
        delays.push(
            sched
                .take()
                .expect("a retry is scheduled after every failure"),
        );
        let h = e.health().unwrap();
        assert!(!h.is_healthy);
        assert_eq!(h.outbox_depth, 1, "the change stays queued");
    }
    assert_eq!(
        delays,
        vec![100, 200, 400, 800, 1000, 1000, 1000, 1000],
        "exponential backoff, capped"
    );
    let h = e.health().unwrap();
    assert_eq!((h.sync_errors, h.lag), (8, 1));
    assert!(h.last_error.as_deref().unwrap_or("").contains("outage"));
    // Back: the retry (the alarm) delivers it.
    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "x");
    assert!(Item::get(e.primary(), item.id).unwrap().is_some());
    let h = e.health().unwrap();
    assert!(h.is_healthy, "{h:?}");
    assert_eq!((h.consecutive_failures, h.lag, h.outbox_depth), (0, 0, 0));
    assert!(h.error_rate > 0.0 && h.error_rate < 1.0);
}

#[test]
fn several_writes_to_a_row_between_flushes_send_it_once() {
    let dir = TempDir::new("coalesce");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 1));
    faulty.calm();
    let (e, _) = engine(
        &dir.path("k.db"),
        faulty.clone(),
        "k",
        SyncConfig::default(),
    );
    block(e.sync()).unwrap();
    let mut row = Item::insert(e.primary(), &random_item(&mut Rng::new(1), "k")).unwrap();
    for n in 0..100 {
        row.n = n;
        Item::update(e.primary(), &row).unwrap();
    }
    assert_eq!(outbox::depth(e.primary()).unwrap(), 101);
    let before = faulty.stats.borrow().rows_upserted;
    block(e.sync()).unwrap();
    assert_eq!(faulty.stats.borrow().rows_upserted - before, 1);
    assert_eq!(outbox::depth(e.primary()).unwrap(), 0);
    assert_converged(e.primary(), &native, "k");
    let seq = e.current_seq().unwrap();
    assert_eq!(
        block(nanotype::sync::replica_watermark(&native, "k")).unwrap(),
        seq
    );
    // A primary refuses to serve another room.
    drop(e);
    let other = nanotype::sync::Engine::builder("not-k")
        .tables(tables())
        .replica(Some(native.clone()))
        .open(
            primary(&dir.path("k.db")),
            nanotype::native::ManualScheduler::new(),
        );
    assert!(matches!(other, Err(Error::WrongRoom { .. })));
    assert_eq!(
        nanotype::sync::stored_room(&primary(&dir.path("k.db")))
            .unwrap()
            .as_deref(),
        Some("k")
    );
}

#[test]
fn seq_never_goes_back_when_the_outbox_drains_or_the_host_restarts() {
    let dir = TempDir::new("seq");
    let native = replica(&dir.path("replica.db"));
    let path = dir.path("s.db");
    let mut rng = Rng::new(21);
    let mut last = 0;
    for round in 0..4 {
        let (e, sched) = engine(&path, native.clone(), "s", SyncConfig::default());
        block(e.sync()).unwrap();
        for _ in 0..5 {
            let row = Item::insert(e.primary(), &random_item(&mut rng, "s")).unwrap();
            Item::delete(e.primary(), row.id).unwrap();
            let seq = e.current_seq().unwrap();
            assert!(seq > last, "round {round}: seq went from {last} to {seq}");
            last = seq;
            // The room stores the replica's progress at most every 10 s.
            sched.advance(10_000);
            block(e.sync()).unwrap();
            // A resync with changes pending (its end trims what its pages covered).
            Item::insert(e.primary(), &random_item(&mut rng, "s")).unwrap();
            assert_eq!(e.current_seq().unwrap(), last + 1);
            last += 1;
            block(e.resync()).unwrap();
            assert_eq!(e.current_seq().unwrap(), last, "the resync moved seq");
            assert_eq!(outbox::depth(e.primary()).unwrap(), 0);
            // The outbox does not grow: each change took a record the replica had (the ring
            // holds the three changes of this round at most, not every change so far).
            let rows: i64 = e
                .primary()
                .inner()
                .connection()
                .query_row("SELECT COUNT(*) FROM _nt_outbox", [], |r| r.get(0))
                .unwrap();
            assert!(rows <= 3, "round {round}: {rows} outbox records");
        }
        assert_eq!(
            block(nanotype::sync::replica_watermark(&native, "s")).unwrap(),
            last
        );
        assert_converged(e.primary(), &native, "s");
    }
}
