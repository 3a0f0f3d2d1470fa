//! What a new room's first sync costs in D1: one read of the room's state and one batch that
//! claims the room, copies it whole and sets its watermark (a small room goes whole; a larger
//! one is still copied in pages), and the rows arrive exactly as the room holds them.

mod support;

use std::cell::Cell;

use nanotype::native::NativeReplica;
use nanotype::sync::SyncConfig;
use nanotype::{Replica, Row, Statement};
use support::*;

/// Counts the calls a replica gets.
struct Counted(NativeReplica, Cell<u32>, Cell<u32>);

impl Replica for Counted {
    async fn query(&self, stmt: &Statement) -> nanotype::Result<Vec<Row>> {
        self.1.set(self.1.get() + 1);
        self.0.query(stmt).await
    }
    async fn batch(&self, stmts: &[Statement]) -> nanotype::Result<Vec<Vec<Row>>> {
        self.2.set(self.2.get() + 1);
        self.0.batch(stmts).await
    }
}

#[test]
fn a_new_room_reaches_d1_in_one_query_and_one_batch() {
    let dir = TempDir::new("first-sync");
    let native = replica(&dir.path("replica.db"));
    let counted = std::rc::Rc::new(Counted(native.clone(), Cell::new(0), Cell::new(0)));
    let (e, _) = engine(
        &dir.path("a.db"),
        counted.clone(),
        "a",
        SyncConfig::default(),
    );
    let mut rng = Rng::new(30);
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    block(e.sync()).unwrap();
    assert_eq!(
        (counted.1.get(), counted.2.get()),
        (1, 1),
        "(queries, batches)"
    );
    assert_converged(e.primary(), &native, "a");
    let h = e.health().unwrap();
    assert_eq!((h.lag, h.outbox_depth, h.resync_in_progress), (0, 0, false));
    // The next write is one flush batch, as for any room.
    Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    block(e.sync()).unwrap();
    assert_eq!(counted.2.get(), 2);
    assert_converged(e.primary(), &native, "a");
}

#[test]
fn a_room_larger_than_a_page_is_still_copied_in_pages() {
    let dir = TempDir::new("first-sync-paged");
    let native = replica(&dir.path("replica.db"));
    let counted = std::rc::Rc::new(Counted(native.clone(), Cell::new(0), Cell::new(0)));
    let config = SyncConfig {
        backfill_page: 10,
        ..SyncConfig::default()
    };
    let (e, _) = engine(&dir.path("a.db"), counted.clone(), "a", config);
    let mut rng = Rng::new(31);
    for _ in 0..35 {
        Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    }
    block(e.sync()).unwrap();
    // The claim, four pages of items, one of tags, the finish.
    assert_eq!(counted.2.get(), 7);
    assert_converged(e.primary(), &native, "a");
}

/// A clock and alarm that counts the engine's yields to the host.
struct Yields(nanotype::native::ManualScheduler, Cell<u32>);

impl nanotype::Clock for Yields {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}

impl nanotype::Alarm for Yields {
    fn schedule(&self, delay_ms: u64) {
        self.0.schedule(delay_ms);
    }
    fn yield_now(&self) -> nanotype::clock::Yield {
        self.1.set(self.1.get() + 1);
        Box::pin(std::future::ready(()))
    }
}

#[test]
fn a_paged_copy_and_an_audit_yield_to_the_host_between_pages() {
    let dir = TempDir::new("first-sync-yields");
    let native = replica(&dir.path("replica.db"));
    let sched = std::rc::Rc::new(Yields(
        nanotype::native::ManualScheduler::new(),
        Cell::new(0),
    ));
    let config = SyncConfig {
        backfill_page: 10,
        ..SyncConfig::default()
    };
    let e = nanotype::sync::Engine::builder("a")
        .tables(tables())
        .replica(Some(native.clone()))
        .config(config)
        .open(primary(&dir.path("a.db")), sched.clone())
        .unwrap();
    let mut rng = Rng::new(32);
    for _ in 0..35 {
        Item::insert(e.primary(), &random_item(&mut rng, "a")).unwrap();
    }
    block(e.sync()).unwrap();
    // Between the claim, the four pages of items, the page of tags and the finish.
    assert!(sched.1.get() >= 6, "{} yields", sched.1.get());
    let before = sched.1.get();
    e.request_audit();
    block(e.sync()).unwrap();
    assert!(
        sched.1.get() >= before + 5,
        "the audit's pages: {} yields",
        sched.1.get() - before
    );
    assert_converged(e.primary(), &native, "a");
}
