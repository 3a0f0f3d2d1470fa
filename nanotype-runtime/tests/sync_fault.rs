//! Randomized fault injection (seeded, reproducible): 8 rooms, thousands of random writes, a
//! replica that fails about a third of its batches (before applying, and after applying but
//! before acknowledging), delivers old batches again, and primaries restarted between a batch's
//! apply and the outbox trim. After recovery every room's replica equals its primary, and the
//! primary equals an independent in-memory record of every acknowledged write: nothing lost.
#![cfg(feature = "native")]

mod support;

use std::collections::BTreeMap;
use std::rc::Rc;

use nanotype::outbox;
use nanotype::sync::SyncConfig;
use support::*;

const ROOMS: usize = 8;
const WRITES: usize = 12_000;

#[test]
fn fault_injection_converges_with_no_lost_write() {
    let seed = std::env::var("NANOTYPE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261124u64);
    let dir = TempDir::new("fault");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), seed ^ 0xFA17));
    let config = SyncConfig {
        max_changes_per_batch: 64,
        backfill_page: 50,
        ..SyncConfig::default()
    };
    let rooms: Vec<String> = (0..ROOMS).map(|i| format!("room-{i}")).collect();
    let mut engines: Vec<_> = rooms
        .iter()
        .map(|r| {
            engine(
                &dir.path(&format!("{r}.db")),
                faulty.clone(),
                r,
                config.clone(),
            )
            .0
        })
        .collect();
    // The independent record: per room, key → expected row (acknowledged writes only).
    let mut expected: Vec<BTreeMap<i64, Item>> = vec![BTreeMap::new(); ROOMS];
    let mut tags: Vec<BTreeMap<String, i64>> = vec![BTreeMap::new(); ROOMS];
    let mut rng = Rng::new(seed);
    let mut last_seq = [0i64; ROOMS];
    // No primary is restored here, so no room may need a new primary identity to converge.
    let primary_id = |e: &support::TestEngine<Rc<FaultyReplica>>| -> String {
        e.primary()
            .inner()
            .connection()
            .query_row(
                "SELECT value FROM _nt_meta WHERE key = 'primary_id'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let ids: Vec<String> = engines.iter().map(&primary_id).collect();
    let (mut restarts, mut resyncs, mut flush_errors, mut ops) = (0u64, 0u64, 0u64, [0u64; 4]);

    for _ in 0..WRITES {
        let i = rng.below(ROOMS as u64) as usize;
        let room = &rooms[i];
        let db = engines[i].primary();
        match rng.below(10) {
            0..=3 => {
                let row = Item::insert(db, &random_item(&mut rng, room)).unwrap();
                expected[i].insert(row.id, row);
                ops[0] += 1;
            }
            4..=5 if !expected[i].is_empty() => {
                let k = *expected[i]
                    .keys()
                    .nth(rng.below(expected[i].len() as u64) as usize)
                    .unwrap();
                let mut row = random_item(&mut rng, room);
                row.id = k;
                let row = Item::update(db, &row).unwrap();
                expected[i].insert(k, row);
                ops[1] += 1;
            }
            6 if !expected[i].is_empty() => {
                let k = *expected[i]
                    .keys()
                    .nth(rng.below(expected[i].len() as u64) as usize)
                    .unwrap();
                assert!(Item::delete(db, k).unwrap());
                expected[i].remove(&k);
                ops[2] += 1;
            }
            _ => {
                let name = format!("tag-{}", rng.below(40));
                let count = rng.below(1000) as i64;
                Tag::upsert(
                    db,
                    &Tag {
                        name: name.clone(),
                        room_tag: room.clone(),
                        count,
                    },
                )
                .unwrap();
                tags[i].insert(name, count);
                ops[3] += 1;
            }
        }
        // Every write takes a seq above every earlier one of its room, restarts and resyncs
        // included.
        let seq = engines[i].current_seq().unwrap();
        assert!(
            seq > last_seq[i],
            "room {room}: seq went from {} to {seq}",
            last_seq[i]
        );
        last_seq[i] = seq;
        // Sync now and then: the fast flush after a write, or the alarm the write armed (the
        // same call; the alarm is taken as fired).
        if rng.chance(0.15) {
            let e = &engines[i];
            e.scheduler().take();
            let res = block(e.sync());
            if res.is_err() {
                flush_errors += 1;
            }
        }
        if rng.chance(0.002) {
            engines[i].request_resync().unwrap();
            resyncs += 1;
        }
        // A crash right after a batch applied, or a random restart: all in-memory state goes.
        let crashed = std::mem::take(&mut *faulty.crashed.borrow_mut());
        if crashed || rng.chance(0.003) {
            let j = if crashed {
                i
            } else {
                rng.below(ROOMS as u64) as usize
            };
            let path = dir.path(&format!("{}.db", rooms[j]));
            engines[j] = {
                drop(std::mem::replace(
                    &mut engines[j],
                    engine(
                        &dir.path("scratch.db"),
                        faulty.clone(),
                        "scratch",
                        config.clone(),
                    )
                    .0,
                ));
                engine(&path, faulty.clone(), &rooms[j], config.clone()).0
            };
            restarts += 1;
        }
    }

    // Recovery: the replica behaves again; every room's pending work drains.
    faulty.calm();
    for e in &engines {
        for _ in 0..1000 {
            block(e.sync()).unwrap();
            if outbox::depth(e.primary()).unwrap() == 0 && !e.resync_in_progress().unwrap() {
                break;
            }
        }
    }

    let mut lost = 0usize;
    for (i, e) in engines.iter().enumerate() {
        let db = e.primary();
        let in_primary: BTreeMap<i64, Item> = items_of(db).into_iter().map(|r| (r.id, r)).collect();
        lost += expected[i]
            .iter()
            .filter(|(k, v)| in_primary.get(k) != Some(v))
            .count();
        assert_eq!(
            in_primary, expected[i],
            "room {}: the primary lost or altered an acknowledged write",
            rooms[i]
        );
        let t: BTreeMap<String, i64> = support::primary_rows(db, Tag::table_def())
            .into_iter()
            .map(|r| {
                let t = <Tag as nanotype::Table>::from_row(r).unwrap();
                (t.name, t.count)
            })
            .collect();
        assert_eq!(t, tags[i]);
        assert_converged(db, &native, &rooms[i]);
        assert_eq!(
            primary_id(e),
            ids[i],
            "room {} took a new primary identity",
            rooms[i]
        );
        let h = e.health().unwrap();
        assert_eq!(h.outbox_depth, 0);
        assert_eq!(h.lag, 0, "{h:?}");
        assert!(!h.resync_in_progress);
    }
    // Nothing of the scratch room, or any room not written, leaked into the replica.
    let stray: i64 = native
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE room_id NOT LIKE 'room-%' OR room_id <> room_tag",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stray, 0);

    let st = faulty.stats.borrow().clone();
    let failed = st.failed_before_apply + st.failed_after_apply + st.crash_points;
    println!(
        "fault injection (seed {seed}): {} writes ({} inserts, {} updates, {} deletes, {} tag upserts) over {ROOMS} rooms; \
         {} batches, {} failed ({:.1}%: {} before apply, {} after apply, {} crash points), {} late redeliveries, \
         {} failed reads, {restarts} primary restarts, {resyncs} forced resyncs, {flush_errors} flush errors seen; \
         max {} params/statement, max {} statements/batch; lost writes = {lost}",
        ops.iter().sum::<u64>(), ops[0], ops[1], ops[2], ops[3],
        st.batches, failed, 100.0 * failed as f64 / st.batches as f64,
        st.failed_before_apply, st.failed_after_apply, st.crash_points, st.redelivered, st.failed_reads,
        st.max_params_seen, st.max_statements_seen,
    );
    assert!(ops.iter().sum::<u64>() >= 10_000);
    assert!(
        failed as f64 >= 0.3 * st.batches as f64 * 0.9,
        "too few injected failures: {failed} of {}",
        st.batches
    );
    assert!(st.redelivered > 0 && restarts > 0 && st.failed_after_apply > 0);
    assert_eq!(lost, 0);
}
