//! Delivery without a further request, on the native backend with injected time: every
//! committed write arms the alarm before it returns; the alarm alone delivers it; failures back
//! off with jitter; a table outside the schema is refused, never skipped.

mod support;

use std::rc::Rc;

use nanotype::native::{ManualScheduler, NativeReplica};
use nanotype::sync::{Engine, SyncConfig};
use nanotype::{Error, Primary, Schema};
use support::*;

nanotype::schema!(ItemsOnly = [Item]);

const T0: i64 = 1_800_000_000_000;

fn engine_at(
    dir: &TempDir,
    replica: &NativeReplica,
    config: SyncConfig,
) -> (TestEngine<NativeReplica>, Rc<ManualScheduler>) {
    let sched = Rc::new(ManualScheduler::at(T0));
    let e = Engine::builder("d")
        .schema::<ItemsOnly>()
        .replica(Some(replica.clone()))
        .config(config)
        .open(primary(&dir.path("d.db")), sched.clone())
        .unwrap();
    (e, sched)
}

#[test]
fn a_write_arms_the_alarm_and_the_alarm_alone_delivers_it() {
    let dir = TempDir::new("delivery");
    let native = replica(&dir.path("replica.db"));
    let config = SyncConfig::default();
    let (e, sched) = engine_at(&dir, &native, config.clone());
    block(e.sync()).unwrap();
    assert_eq!(sched.due_at(), None, "nothing to deliver, no alarm");

    let mut rng = Rng::new(7);
    let first = Item::insert(e.primary(), &random_item(&mut rng, "d")).unwrap();
    assert_eq!(
        sched.due_at(),
        Some(T0 + config.delivery_delay_ms as i64),
        "the write armed the alarm before it returned"
    );
    assert!(e.primary().take_written());
    assert!(!e.primary().take_written(), "taken once");

    // A later write inside the window leaves the earlier alarm: it covers both.
    sched.advance(500);
    let second = Item::insert(e.primary(), &random_item(&mut rng, "d")).unwrap();
    assert_eq!(sched.due_at(), Some(T0 + config.delivery_delay_ms as i64));

    // No fast flush ran (as when the host is evicted right after answering). Before the alarm is
    // due nothing fires; when it is, the alarm's sync delivers both.
    assert!(!sched.fire_if_due());
    assert!(replica_rows(&native, Item::table_def(), "d").is_empty());
    sched.set_now(T0 + config.delivery_delay_ms as i64);
    assert!(sched.fire_if_due());
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "d");
    assert_eq!(replica_rows(&native, Item::table_def(), "d").len(), 2);
    assert_eq!(
        sched.due_at(),
        None,
        "a successful sync asks for no further alarm"
    );
    let h = e.health().unwrap();
    assert_eq!((h.lag, h.outbox_depth), (0, 0));
    assert!(first.id < second.id);
}

#[test]
fn the_alarm_survives_the_engine_and_a_new_one_delivers_what_the_old_one_left() {
    let dir = TempDir::new("evicted");
    let native = replica(&dir.path("replica.db"));
    let (e, _) = engine_at(&dir, &native, SyncConfig::default());
    block(e.sync()).unwrap();
    Item::insert(e.primary(), &random_item(&mut Rng::new(3), "d")).unwrap();
    // Evicted before any flush: the engine (its memory) is gone, the database stays.
    drop(e);
    let (e, _) = engine_at(&dir, &native, SyncConfig::default());
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "d");
}

#[test]
fn failures_back_off_with_jitter_within_the_configured_fraction() {
    let dir = TempDir::new("jitter");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 9));
    faulty.calm();
    let config = SyncConfig {
        backoff_base_ms: 1_000,
        backoff_cap_ms: 1_000,
        backoff_jitter: 0.5,
        ..SyncConfig::default()
    };
    let sched = Rc::new(ManualScheduler::at(T0));
    let e = Engine::builder("j")
        .schema::<ItemsOnly>()
        .replica(Some(faulty.clone()))
        .config(config)
        .open(primary(&dir.path("j.db")), sched.clone())
        .unwrap();
    block(e.sync()).unwrap();
    *faulty.budget.borrow_mut() = Some(0);
    Item::insert(e.primary(), &random_item(&mut Rng::new(5), "j")).unwrap();
    sched.take();
    let mut delays = Vec::new();
    for _ in 0..40 {
        assert!(block(e.sync()).is_err());
        delays.push(sched.take().expect("a retry after every failure"));
    }
    assert!(
        delays.iter().all(|d| (500..=1_000).contains(d)),
        "{delays:?}"
    );
    let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
    assert!(distinct.len() > 10, "the retries are spread: {delays:?}");
    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "j");
}

#[test]
fn a_table_outside_the_schema_is_refused_and_its_queued_changes_are_never_skipped() {
    #[nanotype::table(name = "stray")]
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Stray {
        #[nanotype(primary_key)]
        id: i64,
        note: String,
    }

    let dir = TempDir::new("unregistered");
    let native = replica(&dir.path("replica.db"));
    native.execute_batch(Stray::REPLICA_DDL).unwrap();
    let (e, _) = engine_at(&dir, &native, SyncConfig::default());
    e.primary().execute_batch(Stray::PRIMARY_DDL).unwrap();
    block(e.sync()).unwrap();

    let stray = Stray {
        id: 0,
        note: "x".into(),
    };
    match Stray::insert(e.primary(), &stray) {
        Err(Error::UnregisteredTable { table }) => assert_eq!(table, "stray"),
        other => panic!("expected UnregisteredTable, got {other:?}"),
    }
    assert!(Stray::list(e.primary(), &nanotype::Page::first(10))
        .unwrap()
        .is_empty());

    // A change recorded around the engine (an older build that listed the table): the flush
    // stops on it with the same error and keeps it, instead of trimming it unsent.
    Stray::insert(e.primary().inner(), &stray).unwrap();
    Item::insert(e.primary(), &random_item(&mut Rng::new(1), "d")).unwrap();
    let err = block(e.sync()).unwrap_err();
    assert!(matches!(err, Error::UnregisteredTable { .. }), "{err}");
    let h = e.health().unwrap();
    assert_eq!(h.outbox_depth, 2, "nothing was dropped");
    assert!(h.last_error.unwrap().contains("nanotype::schema!"));
}

#[test]
fn the_schema_lists_its_tables_and_refuses_an_engine_without_tables() {
    assert_eq!(ItemsOnly::TABLES.len(), 1);
    assert_eq!(
        ItemsOnly::table("items").map(nanotype::TableEntry::name),
        Some("items")
    );
    assert!(ItemsOnly::table("nope").is_none());
    assert_eq!(ItemsOnly::fingerprint().len(), 16);
    let dir = TempDir::new("notables");
    let e = Engine::builder("n")
        .replica(None::<NativeReplica>)
        .open(primary(&dir.path("n.db")), ManualScheduler::new());
    assert!(matches!(e, Err(Error::Rejected(_))));
    let twice = Engine::builder("n")
        .tables(vec![Item::table_def(), Item::table_def()])
        .replica(None::<NativeReplica>)
        .open(primary(&dir.path("n.db")), ManualScheduler::new());
    assert!(matches!(twice, Err(Error::Rejected(m)) if m.contains("twice")));
}

#[test]
fn a_sync_dropped_half_way_releases_its_flight() {
    let dir = TempDir::new("dropped");
    let native = replica(&dir.path("replica.db"));
    let slow = Rc::new(Pausable {
        inner: native.clone(),
        paused: std::cell::Cell::new(false),
    });
    let (e, _) = {
        let sched = Rc::new(ManualScheduler::at(T0));
        let e = Engine::builder("d")
            .schema::<ItemsOnly>()
            .replica(Some(slow.clone()))
            .open(primary(&dir.path("d.db")), sched.clone())
            .unwrap();
        (e, sched)
    };
    block(e.sync()).unwrap();
    Item::insert(e.primary(), &random_item(&mut Rng::new(2), "d")).unwrap();
    // Poll the sync once and drop it while it waits on the replica (the host's request ended).
    {
        slow.pause();
        let mut fut = std::pin::pin!(e.sync());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    slow.resume();
    // Not stuck "in flight": the next sync runs and delivers.
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "d");
}

use std::future::Future;

/// A replica whose calls wait (never resolve) while paused: a D1 call still in flight.
struct Pausable {
    inner: NativeReplica,
    paused: std::cell::Cell<bool>,
}

impl Pausable {
    fn pause(&self) {
        self.paused.set(true);
    }
    fn resume(&self) {
        self.paused.set(false);
    }
    async fn gate(&self) {
        std::future::poll_fn(|_| {
            if self.paused.get() {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
    }
}

impl nanotype::Replica for Pausable {
    async fn query(&self, stmt: &nanotype::Statement) -> nanotype::Result<Vec<nanotype::Row>> {
        self.gate().await;
        self.inner.query_sync(stmt)
    }
    async fn batch(
        &self,
        stmts: &[nanotype::Statement],
    ) -> nanotype::Result<Vec<Vec<nanotype::Row>>> {
        self.gate().await;
        self.inner.batch_sync(stmts)
    }
}

#[test]
fn health_counters_survive_the_engine_and_only_grow() {
    let dir = TempDir::new("health");
    let native = replica(&dir.path("replica.db"));
    let faulty = Rc::new(FaultyReplica::new(native.clone(), 5));
    faulty.calm();
    let open = || {
        Engine::builder("h")
            .schema::<ItemsOnly>()
            .replica(Some(faulty.clone()))
            .open(primary(&dir.path("h.db")), ManualScheduler::at(T0))
            .unwrap()
    };
    let e = open();
    let mut rng = Rng::new(8);
    block(e.sync()).unwrap();
    for _ in 0..3 {
        Item::insert(e.primary(), &random_item(&mut rng, "h")).unwrap();
        block(e.sync()).unwrap();
    }
    *faulty.budget.borrow_mut() = Some(0);
    Item::insert(e.primary(), &random_item(&mut rng, "h")).unwrap();
    assert!(block(e.sync()).is_err());
    assert!(block(e.sync()).is_err());
    let before = e.health().unwrap();
    assert_eq!((before.sync_errors, before.consecutive_failures), (2, 2));
    assert!(
        before.total_syncs >= 4 && before.rows_sent >= 3,
        "{before:?}"
    );

    // Evicted: a new instance reads the counters back.
    drop(e);
    let e = open();
    let after = e.health().unwrap();
    assert_eq!(
        (
            after.total_syncs,
            after.sync_errors,
            after.rows_sent,
            after.consecutive_failures
        ),
        (
            before.total_syncs,
            before.sync_errors,
            before.rows_sent,
            before.consecutive_failures
        )
    );
    assert_eq!(after.last_error, before.last_error);
    assert_eq!(after.last_sync_time, before.last_sync_time);

    *faulty.budget.borrow_mut() = None;
    block(e.sync()).unwrap();
    let healed = e.health().unwrap();
    assert!(healed.total_syncs > after.total_syncs);
    assert_eq!((healed.sync_errors, healed.consecutive_failures), (2, 0));
    drop(e);
    assert_eq!(
        open().health().unwrap().consecutive_failures,
        0,
        "the recovery is stored too"
    );
}
