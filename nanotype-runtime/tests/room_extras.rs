//! The opt-in extras plug into a room through its hooks: presence in a `MemoryStore` (memory
//! only, with a TTL) and debounced counters (a `Debouncer` written by an app timer over the
//! room's one alarm, then replicated like every write). A whole app on the native host, with
//! injected time.

mod support;

use std::rc::Rc;

use nanotype::actor::{Debouncer, MemoryStore};
use nanotype::api::{ApiError, AppRequest, Reply, RoomCtx, RoomHooks, RoomTokens, Router};
use nanotype::native::TestApp;
use serde_json::json;
use support::*;

nanotype::schema!(Extras = [Item, Tag]);

const COUNTER_MS: u64 = 1_000;

struct Hooks {
    presence: MemoryStore,
    counters: Debouncer<String, i64>,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            presence: MemoryStore::new(),
            counters: Debouncer::with_merge(COUNTER_MS, |sum, inc| *sum += inc),
        }
    }
}

impl RoomHooks for Hooks {
    fn routes(self: Rc<Self>) -> Router {
        let (here, seen, count) = (self.clone(), self.clone(), self);
        Router::new()
            .post("presence/:user", move |room: RoomCtx, req: AppRequest| {
                let hooks = here.clone();
                async move {
                    let user = req.param("user").unwrap_or_default().to_owned();
                    hooks
                        .presence
                        .set(&user, json!({ "here": true }), 500, room.now_ms())?;
                    Ok(Reply::json(200, json!({ "user": user })))
                }
            })
            .get("presence", move |room: RoomCtx, _req: AppRequest| {
                let hooks = seen.clone();
                async move {
                    let users: Vec<String> = hooks
                        .presence
                        .entries_with_prefix("", room.now_ms())
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect();
                    Ok(Reply::json(200, json!({ "users": users })))
                }
            })
            .post(
                "counters/:name/increment",
                move |room: RoomCtx, req: AppRequest| {
                    let hooks = count.clone();
                    async move {
                        let name = req.param("name").unwrap_or_default().to_owned();
                        hooks.counters.update(name.clone(), 1, room.now_ms());
                        room.set_timer("counters", COUNTER_MS)?;
                        Ok(Reply::json(
                            202,
                            json!({ "pending": hooks.counters.pending_value(&name) }),
                        ))
                    }
                },
            )
    }

    async fn timer(&self, room: RoomCtx, name: &str) -> Result<(), ApiError> {
        if name != "counters" {
            return Ok(());
        }
        let db = room.db();
        self.counters.flush(|name, inc| {
            let count = Tag::get(db, name)?.map_or(0, |t| t.count);
            let tag = Tag {
                name: name.clone(),
                room_tag: room.name().to_owned(),
                count: count + inc,
            };
            Tag::upsert(db, &tag).map(|_| ())
        });
        Ok(())
    }
}

#[test]
fn presence_and_debounced_counters_are_hooks_over_the_room() {
    let app = TestApp::<Extras, Hooks, _>::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .token("t");
    let call = |method: &str, path: &str| app.call(method, path, serde_json::Value::Null);

    call("POST", "/rooms/x/presence/ana");
    app.advance(300);
    call("POST", "/rooms/x/presence/bo");
    assert_eq!(
        call("GET", "/rooms/x/presence").json_body()["users"],
        json!(["ana", "bo"])
    );
    app.advance(300);
    assert_eq!(
        call("GET", "/rooms/x/presence").json_body()["users"],
        json!(["bo"]),
        "ana's TTL ran out"
    );

    for _ in 0..10 {
        assert_eq!(
            call("POST", "/rooms/x/counters/likes/increment").status,
            202
        );
    }
    let db = app.room_db("x").unwrap();
    assert!(
        Tag::get(&db, "likes").unwrap().is_none(),
        "nothing written yet"
    );
    let seq = |app: &TestApp<Extras, Hooks, _>| {
        app.get("/rooms/x/_sync").json_body()["health"]["currentSeq"].clone()
    };
    assert_eq!(seq(&app), 0);

    // The counter timer is due: the alarm runs it, then the same alarm's sync replicates it.
    app.advance(COUNTER_MS as i64);
    assert_eq!(Tag::get(&db, "likes").unwrap().unwrap().count, 10);
    assert_eq!(seq(&app), 1, "ten increments, one write");
    assert_converged(&db, &app.replica(), "x");
}
