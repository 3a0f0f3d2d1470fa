//! The opt-in extras plug into a room through its hooks: presence in a `MemoryStore` (memory
//! only, with a TTL) and debounced counters (a `Debouncer` written by an app timer over the
//! room's one alarm, then replicated like every write). Native, with injected time.

mod support;

use std::rc::Rc;

use nanotype::actor::{Debouncer, MemoryStore};
use nanotype::api::{self, route::route, ApiError, AppRequest, Reply, RoomCtx, RoomHooks};
use nanotype::native::ManualScheduler;
use nanotype::sync::Engine;
use nanotype::Primary;
use serde_json::json;
use support::*;

nanotype::schema!(Extras = [Item, Tag]);

const T0: i64 = 1_950_000_000_000;
const COUNTER_MS: u64 = 1_000;

struct Room {
    presence: MemoryStore,
    counters: Debouncer<String, i64>,
}

impl Default for Room {
    fn default() -> Room {
        Room {
            presence: MemoryStore::new(),
            counters: Debouncer::with_merge(COUNTER_MS, |sum, inc| *sum += inc),
        }
    }
}

impl RoomHooks for Room {
    fn route<P: Primary>(
        &self,
        room: &RoomCtx<'_, P>,
        req: &AppRequest<'_>,
    ) -> Option<Result<Reply, ApiError>> {
        let now = room.now_ms();
        let path: Vec<&str> = req.path.iter().map(String::as_str).collect();
        Some(match (req.method, path.as_slice()) {
            ("POST", ["presence", user]) => self
                .presence
                .set(user, json!({ "here": true }), 500, now)
                .map(|_| Reply::json(200, json!({ "user": user })))
                .map_err(ApiError::from),
            ("GET", ["presence"]) => {
                let users: Vec<String> = self
                    .presence
                    .entries_with_prefix("", now)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                Ok(Reply::json(200, json!({ "users": users })))
            }
            ("POST", ["counters", name, "increment"]) => {
                self.counters.update((*name).to_owned(), 1, now);
                room.set_timer("counters", COUNTER_MS).map(|()| {
                    Reply::json(
                        202,
                        json!({ "pending": self.counters.pending_value(&(*name).to_owned()) }),
                    )
                })
            }
            _ => return None,
        })
    }

    fn timer<P: Primary>(&self, room: &RoomCtx<'_, P>, name: &str) {
        if name != "counters" {
            return;
        }
        let db = room.db();
        self.counters.flush(|name, inc| {
            let count = Tag::get(db, name)?.map(|t| t.count).unwrap_or(0);
            let tag = Tag {
                name: name.clone(),
                room_tag: room.room().to_owned(),
                count: count + inc,
            };
            Tag::upsert(db, &tag).map(|_| ())
        });
    }
}

#[test]
fn presence_and_debounced_counters_are_hooks_over_the_room() {
    let dir = TempDir::new("extras");
    let native = replica(&dir.path("replica.db"));
    let sched = Rc::new(ManualScheduler::at(T0));
    let e = Engine::builder("x")
        .schema::<Extras>()
        .replica(Some(native.clone()))
        .open(primary(&dir.path("x.db")), sched.clone())
        .unwrap();
    pollster::block_on(e.sync()).unwrap();
    let hooks = Room::default();
    let call = |method: &str, path: &str| {
        let r = route::<Extras>(method, path).unwrap();
        api::room::serve(&e, &hooks, &r, &Default::default()).unwrap()
    };

    call("POST", "/rooms/x/presence/ana");
    sched.advance(300);
    call("POST", "/rooms/x/presence/bo");
    assert_eq!(
        call("GET", "/rooms/x/presence").body["users"],
        json!(["ana", "bo"])
    );
    sched.advance(300);
    assert_eq!(
        call("GET", "/rooms/x/presence").body["users"],
        json!(["bo"]),
        "ana's TTL ran out"
    );

    for _ in 0..10 {
        assert_eq!(
            call("POST", "/rooms/x/counters/likes/increment").status,
            202
        );
    }
    assert!(
        Tag::get(e.primary(), "likes").unwrap().is_none(),
        "nothing written yet"
    );
    assert_eq!(e.current_seq().unwrap(), 0);

    // The counter timer is due: the alarm runs it, then the same alarm's sync replicates it.
    sched.advance(COUNTER_MS as i64);
    assert!(sched.fire_if_due());
    assert_eq!(api::room::run_timers(&e, &hooks).unwrap(), ["counters"]);
    pollster::block_on(e.sync()).unwrap();
    assert_eq!(Tag::get(e.primary(), "likes").unwrap().unwrap().count, 10);
    assert_eq!(e.current_seq().unwrap(), 1, "ten increments, one write");
    assert_converged(e.primary(), &native, "x");
}
