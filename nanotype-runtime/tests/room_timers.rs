//! App timers over the room's one alarm, as a whole app on the native host with injected time:
//! a custom route sets a timer, the alarm runs it, what it writes is delivered by the same
//! alarm's sync, and a timer survives the room's object (eviction).

mod support;

use std::cell::RefCell;

use nanotype::api::{ApiError, AppRequest, Reply, RoomCtx, RoomHooks, RoomTokens, Router};
use nanotype::native::TestApp;
use serde_json::json;
use support::*;

nanotype::schema!(Items = [Item, Tag]);

#[derive(Default)]
struct Remind {
    fired: RefCell<Vec<(String, i64)>>,
}

async fn remind(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    let name = req.param("name").unwrap_or_default().to_owned();
    room.set_timer(&name, 1_000)?;
    Ok(Reply::json(202, json!({ "timer": name })))
}

async fn forget(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    let was = room.cancel_timer(req.param("name").unwrap_or_default())?;
    Ok(Reply::json(200, json!({ "cancelled": was })))
}

impl RoomHooks for Remind {
    fn routes(self: std::rc::Rc<Self>) -> Router {
        Router::new()
            .post("remind/:name", remind)
            .post("forget/:name", forget)
    }

    async fn timer(&self, room: RoomCtx, name: &str) -> Result<(), ApiError> {
        self.fired
            .borrow_mut()
            .push((name.to_owned(), room.now_ms()));
        let mut item = random_item(&mut Rng::new(1), room.name());
        item.note = Some(name.to_owned());
        Item::insert(room.db(), &item)?;
        Ok(())
    }
}

fn app() -> TestApp<Items, Remind, RoomTokens> {
    TestApp::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .token("t")
}

#[test]
fn timers_share_the_alarm_and_what_they_write_is_delivered() {
    let app = app();
    let t0 = app.now_ms();
    let post = |path: &str| app.post(path, serde_json::Value::Null);

    assert_eq!(post("/rooms/t/remind/a").status, 202);
    app.settle();
    app.advance(200);
    post("/rooms/t/remind/b");
    post("/rooms/t/remind/c");
    assert_eq!(post("/rooms/t/forget/c").json_body()["cancelled"], true);
    app.settle();
    assert_eq!(
        app.alarm_at("t"),
        Some(t0 + 1_000),
        "the alarm is set for the earliest timer"
    );

    // The alarm fires at t0 + 1000: only `a` is due; the alarm is set again for `b`, and the
    // same alarm's sync delivers what the timer wrote.
    app.advance(800);
    assert_eq!(app.alarm_at("t"), Some(t0 + 1_200), "re-armed for `b`");
    let notes = || -> Vec<String> {
        replica_rows(&app.replica(), Item::table_def(), "t")
            .into_iter()
            .filter_map(|row| match &row[5] {
                nanotype::Value::Text(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(notes(), ["a"]);
    assert_eq!(
        app.hooks("t").fired.borrow().as_slice(),
        [("a".to_owned(), t0 + 1_000)]
    );

    // Evicted: a new object of the room still has `b`, and runs it once.
    app.restart("t");
    app.advance(200);
    app.advance(10_000);
    assert_eq!(notes(), ["a", "b"]);
    assert_eq!(
        app.hooks("t").fired.borrow().as_slice(),
        [("b".to_owned(), t0 + 1_200)],
        "the new object ran `b` once"
    );
    assert_converged(&app.room_db("t").unwrap(), &app.replica(), "t");
}

#[test]
fn a_failing_timer_is_logged_and_the_room_goes_on() {
    #[derive(Default)]
    struct Failing;
    impl RoomHooks for Failing {
        fn routes(self: std::rc::Rc<Self>) -> Router {
            Router::new().post("remind/:name", remind)
        }
        async fn timer(&self, _room: RoomCtx, name: &str) -> Result<(), ApiError> {
            Err(ApiError::rejected(format!("{name} always fails")))
        }
    }
    let app = TestApp::<Items, Failing, _>::new(RoomTokens::from_var("TOKENS"))
        .unwrap()
        .var("TOKENS", "t=*")
        .token("t");
    app.post("/rooms/f/remind/x", serde_json::Value::Null);
    app.advance(1_000);
    assert!(
        app.logs().iter().any(|l| l.contains("timer `x` failed")),
        "{:?}",
        app.logs()
    );
    assert_eq!(app.get("/rooms/f/_sync").status, 200);
}
