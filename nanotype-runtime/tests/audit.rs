//! Anti-entropy: with rows deleted, altered and invented in the replica by hand, an audit that
//! nobody asked for (the room's alarm) finds exactly those rows, repairs only them, and leaves
//! other rooms alone; an audit that finds nothing writes nothing.

mod support;

use std::rc::Rc;

use nanotype::api::room::{arm_audit, take_due_timers, AUDIT_TIMER};
use nanotype::native::ManualScheduler;
use nanotype::sync::{Engine, SyncConfig};
use nanotype::Statement;
use support::*;

nanotype::schema!(Both = [Item, Tag]);

const T0: i64 = 2_000_000_000_000;
const EVERY: u64 = 60_000;

#[test]
fn the_alarm_audits_the_replica_and_repairs_only_what_differs() {
    let dir = TempDir::new("audit");
    let native = replica(&dir.path("replica.db"));
    let counted = Rc::new(FaultyReplica::new(native.clone(), 1));
    counted.calm();
    let sched = Rc::new(ManualScheduler::at(T0));
    let config = SyncConfig {
        audit_interval_ms: Some(EVERY),
        ..SyncConfig::default()
    };
    let e = Engine::builder("a")
        .schema::<Both>()
        .replica(Some(counted.clone()))
        .config(config.clone())
        .open(primary(&dir.path("a.db")), sched.clone())
        .unwrap();
    let (other, _) = engine(&dir.path("b.db"), native.clone(), "b", config);
    let mut rng = Rng::new(12);
    let mut fill = |db: &dyn Fn(&Item) -> nanotype::Result<Item>, room: &str| {
        for _ in 0..1_200 {
            db(&random_item(&mut rng, room)).unwrap();
        }
    };
    fill(&|i| Item::insert(e.primary(), i), "a");
    fill(&|i| Item::insert(other.primary(), i), "b");
    block(e.sync()).unwrap();
    block(other.sync()).unwrap();
    arm_audit(&e).unwrap();

    // By hand, in the replica: one row deleted, one altered, one invented, in each room.
    for room in ["a", "b"] {
        native
            .batch_sync(&[
                Statement::new(format!("DELETE FROM items WHERE room_id = '{room}' AND id = 7"), vec![]),
                Statement::new(format!("UPDATE items SET note = 'tampered' WHERE room_id = '{room}' AND id = 900"), vec![]),
                Statement::new(
                    format!("INSERT INTO items SELECT room_id, 5000, room_tag, kind, n, score, note, data FROM items WHERE room_id = '{room}' AND id = 1"),
                    vec![],
                ),
            ])
            .unwrap();
    }

    // Nobody asks: the room's alarm reaches the audit timer, and the alarm's sync runs it.
    sched.set_now(T0 + EVERY as i64);
    assert!(sched.fire_if_due());
    assert_eq!(take_due_timers(&e).unwrap(), [AUDIT_TIMER]);
    block(e.sync()).unwrap();
    let report = e.health().unwrap().last_audit.expect("an audit ran");
    assert_eq!((report.divergent, report.repaired), (3, 3));
    assert_eq!(report.rows_compared, 1_200);
    // Every row once per side (the replica had one fewer and one more).
    assert_eq!(report.rows_read, 2 * 1_200);
    assert_converged(e.primary(), &native, "a");
    assert!(
        replica_rows(&native, Item::table_def(), "b")
            .iter()
            .any(|r| r[0] == nanotype::Value::Integer(5000)),
        "another room's replica rows are left alone"
    );
    assert_eq!(
        sched.due_at(),
        Some(T0 + 2 * EVERY as i64),
        "the next audit is set"
    );

    // Nothing differs: the next audit writes nothing at all.
    let batches = counted.stats.borrow().batches;
    e.request_audit();
    block(e.sync()).unwrap();
    let again = e.last_audit().unwrap();
    assert_eq!((again.divergent, again.repaired), (0, 0));
    assert_eq!(
        counted.stats.borrow().batches,
        batches,
        "a clean audit sends no batch"
    );
}

#[test]
fn divergence_that_cannot_be_repaired_now_resyncs_the_room() {
    let dir = TempDir::new("audit-resync");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 2));
    faulty.calm();
    let sched = Rc::new(ManualScheduler::at(T0));
    let e = Engine::builder("r")
        .schema::<Both>()
        .replica(Some(faulty.clone()))
        .open(primary(&dir.path("r.db")), sched)
        .unwrap();
    let mut rng = Rng::new(2);
    for _ in 0..20 {
        Item::insert(e.primary(), &random_item(&mut rng, "r")).unwrap();
    }
    block(e.sync()).unwrap();
    native
        .batch_sync(&[Statement::new(
            "DELETE FROM items WHERE room_id = 'r' AND id = 3",
            vec![],
        )])
        .unwrap();
    // The replica answers reads but refuses every batch for now.
    *faulty.budget.borrow_mut() = Some(0);
    e.request_audit();
    assert!(block(e.sync()).is_err());
    let h = e.health().unwrap();
    let audit = h.last_audit.unwrap();
    assert_eq!((audit.divergent, audit.repaired), (1, 0));
    assert!(h.resync_in_progress, "known divergent: the room is rebuilt");
    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert!(!e.health().unwrap().resync_in_progress);
    assert_converged(e.primary(), &native, "r");
}

#[test]
fn the_audit_period_follows_the_rooms_size_and_a_shorter_one_reaches_a_room_at_its_next_open() {
    let dir = TempDir::new("audit-period");
    let native = replica(&dir.path("replica.db"));
    let sched = Rc::new(ManualScheduler::at(T0));
    let hours = SyncConfig {
        audit_interval_ms: Some(6 * 3_600_000),
        ..SyncConfig::default()
    };
    let open = |config: &SyncConfig| {
        Engine::builder("p")
            .schema::<Both>()
            .replica(Some(native.clone()))
            .config(config.clone())
            .open(primary(&dir.path("p.db")), sched.clone())
            .unwrap()
    };
    let e = open(&hours);
    let mut rng = Rng::new(21);
    for _ in 0..1_200 {
        Item::insert(e.primary(), &random_item(&mut rng, "p")).unwrap();
    }
    block(e.sync()).unwrap();
    arm_audit(&e).unwrap();
    assert_eq!(
        nanotype::timers::due(e.primary(), AUDIT_TIMER).unwrap(),
        Some(T0 + 6 * 3_600_000)
    );
    drop(e);

    // The next deploy's default (5 min) reaches the room when it opens again.
    let config = SyncConfig::default();
    let e = open(&config);
    arm_audit(&e).unwrap();
    let due = nanotype::timers::due(e.primary(), AUDIT_TIMER)
        .unwrap()
        .unwrap();
    assert_eq!(due, T0 + 5 * 60_000);

    // It audits 1,200 rows: at 120 ms a row that is 144 s, so the 5 min floor holds...
    sched.set_now(due);
    assert_eq!(take_due_timers(&e).unwrap(), [AUDIT_TIMER]);
    block(e.sync()).unwrap();
    assert_eq!(e.last_audit().unwrap().rows_compared, 1_200);
    let next = nanotype::timers::due(e.primary(), AUDIT_TIMER)
        .unwrap()
        .unwrap();
    assert_eq!(next, due + 5 * 60_000, "the floor, for a room this size");
    sched.set_now(next);
    take_due_timers(&e).unwrap();
    block(e.sync()).unwrap();
    // ... and a room of 10,000 rows 20 minutes: the period grows with what an audit reads.
    for _ in 0..8_800 {
        Item::insert(e.primary(), &random_item(&mut rng, "p")).unwrap();
    }
    block(e.sync()).unwrap();
    let at = next + 1;
    sched.set_now(at);
    nanotype::timers::cancel(e.primary(), AUDIT_TIMER).unwrap();
    e.request_audit();
    block(e.sync()).unwrap();
    assert_eq!(e.last_audit().unwrap().rows_compared, 10_000);
    arm_audit(&e).unwrap();
    assert_eq!(
        nanotype::timers::due(e.primary(), AUDIT_TIMER).unwrap(),
        Some(at + 20 * 60_000)
    );
    // Audits turned off: the timer goes.
    drop(e);
    let off = SyncConfig {
        audit_interval_ms: None,
        ..SyncConfig::default()
    };
    let e = open(&off);
    arm_audit(&e).unwrap();
    assert_eq!(
        nanotype::timers::due(e.primary(), AUDIT_TIMER).unwrap(),
        None
    );
}
