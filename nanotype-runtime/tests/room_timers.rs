//! App timers over the room's one alarm, natively with injected time: a custom route sets a
//! timer, the alarm runs it, what it writes is delivered by the same alarm's sync, and a timer
//! survives the engine (eviction).

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use nanotype::api::{self, route::route, ApiError, AppRequest, Reply, RoomCtx, RoomHooks};
use nanotype::native::ManualScheduler;
use nanotype::sync::Engine;
use nanotype::Primary;
use support::*;

nanotype::schema!(Items = [Item]);

const T0: i64 = 1_900_000_000_000;

#[derive(Default)]
struct Remind {
    fired: RefCell<Vec<(String, i64)>>,
}

impl RoomHooks for Remind {
    fn route<P: Primary>(
        &self,
        room: &RoomCtx<'_, P>,
        req: &AppRequest<'_>,
    ) -> Option<Result<Reply, ApiError>> {
        let [cmd, name] = req.path else { return None };
        Some(match cmd.as_str() {
            "remind" => room
                .set_timer(name, 1_000)
                .map(|()| Reply::json(202, serde_json::json!({ "timer": name }))),
            "forget" => room
                .cancel_timer(name)
                .map(|was| Reply::json(200, serde_json::json!({ "cancelled": was }))),
            _ => return None,
        })
    }

    fn timer<P: Primary>(&self, room: &RoomCtx<'_, P>, name: &str) {
        self.fired
            .borrow_mut()
            .push((name.to_owned(), room.now_ms()));
        let mut item = random_item(&mut Rng::new(1), room.room());
        item.note = Some(name.to_owned());
        Item::insert(room.db(), &item).expect("a timer writes");
    }
}

fn custom(e: &TestEngine<nanotype::native::NativeReplica>, hooks: &Remind, path: &str) -> Reply {
    let r = route::<Items>("POST", path).unwrap();
    api::room::serve(e, hooks, &r, &Default::default()).unwrap()
}

fn open(
    dir: &TempDir,
    sched: &Rc<ManualScheduler>,
    native: &nanotype::native::NativeReplica,
) -> TestEngine<nanotype::native::NativeReplica> {
    Engine::builder("t")
        .schema::<Items>()
        .replica(Some(native.clone()))
        .open(primary(&dir.path("t.db")), sched.clone())
        .unwrap()
}

#[test]
fn timers_share_the_alarm_and_what_they_write_is_delivered() {
    let dir = TempDir::new("timers");
    let sched = Rc::new(ManualScheduler::at(T0));
    let native = replica(&dir.path("replica.db"));
    let e = open(&dir, &sched, &native);
    pollster::block_on(e.sync()).unwrap();
    let hooks = Remind::default();

    assert_eq!(custom(&e, &hooks, "/rooms/t/remind/a").status, 202);
    sched.advance(200);
    custom(&e, &hooks, "/rooms/t/remind/b");
    custom(&e, &hooks, "/rooms/t/remind/c");
    assert_eq!(
        custom(&e, &hooks, "/rooms/t/forget/c").body["cancelled"],
        true
    );
    assert_eq!(
        sched.due_at(),
        Some(T0 + 1_000),
        "the alarm is set for the earliest timer"
    );

    // The alarm fires at T0 + 1000: only `a` is due; the alarm is re-armed for `b`.
    sched.set_now(T0 + 1_000);
    assert!(sched.fire_if_due());
    assert_eq!(api::room::run_timers(&e, &hooks).unwrap(), ["a"]);
    assert_eq!(sched.due_at(), Some(T0 + 1_200), "re-armed for `b`");
    // The same alarm's sync delivers what the timer wrote.
    pollster::block_on(e.sync()).unwrap();
    let notes = |r: &nanotype::native::NativeReplica| -> Vec<String> {
        replica_rows(r, Item::table_def(), "t")
            .into_iter()
            .filter_map(|row| match &row[5] {
                nanotype::Value::Text(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(notes(&native), ["a"]);

    // Evicted: a new engine over the same database still has `b`.
    drop(e);
    let e = open(&dir, &sched, &native);
    sched.set_now(T0 + 1_200);
    assert!(sched.fire_if_due());
    assert_eq!(api::room::run_timers(&e, &hooks).unwrap(), ["b"]);
    assert!(
        api::room::run_timers(&e, &hooks).unwrap().is_empty(),
        "a timer runs once"
    );
    pollster::block_on(e.sync()).unwrap();
    assert_eq!(notes(&native), ["a", "b"]);
    assert_eq!(
        hooks.fired.borrow().as_slice(),
        [("a".to_owned(), T0 + 1_000), ("b".to_owned(), T0 + 1_200)]
    );
    assert_converged(e.primary(), &native, "t");
}
