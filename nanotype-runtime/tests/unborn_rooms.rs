//! Rooms exist only once written: asking a room that was never written anything (its status, a
//! listing, a row) is answered without storing anything in its database.

mod support;

use nanotype::api::room::{creates_room, unborn};
use nanotype::api::route::route;
use nanotype::api::{ApiError, AppRequest, Reply, RoomCtx, Router};
use nanotype::native::NativePrimary;
use nanotype::{Primary, Value};
use support::*;

nanotype::schema!(Items = [Item]);

/// An app that declares its custom routes: `GET stats` reads, `POST archive` writes.
fn declared() -> Router {
    async fn noop(_: RoomCtx, _: AppRequest) -> Result<Reply, ApiError> {
        Ok(Reply::json(200, serde_json::json!({})))
    }
    Router::new().get("stats", noop).post("archive", noop)
}

fn tables(db: &NativePrimary) -> Vec<Value> {
    db.query("SELECT name FROM sqlite_master", &[])
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn reads_of_a_room_never_written_store_nothing() {
    let db = NativePrimary::open_in_memory().unwrap();
    assert_eq!(nanotype::sync::stored_room(&db).unwrap(), None);

    let cases = [
        ("GET", "/rooms/fresh/items", 200),
        ("GET", "/rooms/fresh/items/7", 404),
        ("PATCH", "/rooms/fresh/items/7", 404),
        ("DELETE", "/rooms/fresh/items/7", 404),
        ("GET", "/rooms/fresh/_sync", 404),
        ("POST", "/rooms/fresh/_resync", 404),
        ("POST", "/rooms/fresh/_sql", 404),
        ("POST", "/rooms/fresh/_audit", 404),
    ];
    for (method, path, status) in cases {
        let r = route::<Items>(method, path).unwrap();
        assert!(
            !creates_room(&r, &Router::new()),
            "{method} {path} must not create its room"
        );
        let got = match unborn(&r, &[], None) {
            Ok(reply) => {
                assert_eq!(reply.body["rows"], serde_json::json!([]));
                reply.status
            }
            Err(e) => e.status,
        };
        assert_eq!(got, status, "{method} {path}");
    }
    // Bad parameters are still refused.
    let list = route::<Items>("GET", "/rooms/fresh/items").unwrap();
    assert_eq!(
        unborn(&list, &[("limit".into(), "0".into())], None)
            .unwrap_err()
            .status,
        400
    );
    assert!(
        tables(&db).is_empty(),
        "nothing was stored: {:?}",
        tables(&db)
    );

    for (method, path) in [
        ("POST", "/rooms/fresh/items"),
        ("PUT", "/rooms/fresh/items/7"),
    ] {
        assert!(
            creates_room(&route::<Items>(method, path).unwrap(), &Router::new()),
            "{method} {path}"
        );
    }
    // An app without routes has none: a POST to any other path is no route, and creates nothing.
    assert!(!creates_room(
        &route::<Items>("POST", "/rooms/fresh/anything/custom").unwrap(),
        &Router::new()
    ));
    // A custom route that only reads, and any path an app does not declare, create nothing:
    // answered 404 on a room never written.
    for (method, path, hooks_declare) in [
        ("GET", "/rooms/fresh/stats", false),
        ("GET", "/rooms/fresh/tsks", false),
        ("POST", "/rooms/fresh/typo", true),
        ("GET", "/rooms/fresh/stats", true),
    ] {
        let r = route::<Items>(method, path).unwrap();
        let creates = if hooks_declare {
            creates_room(&r, &declared())
        } else {
            creates_room(&r, &Router::new())
        };
        assert!(!creates, "{method} {path}");
        assert_eq!(
            unborn(&r, &[], None).unwrap_err().status,
            404,
            "{method} {path}"
        );
    }
    assert!(creates_room(
        &route::<Items>("POST", "/rooms/fresh/archive").unwrap(),
        &declared()
    ));

    // Once the engine opened the room, it is known.
    let dir = TempDir::new("unborn");
    let native = replica(&dir.path("replica.db"));
    let (e, _) = engine(
        &dir.path("born.db"),
        native,
        "born",
        nanotype::SyncConfig::default(),
    );
    assert_eq!(
        nanotype::sync::stored_room(e.primary()).unwrap().as_deref(),
        Some("born")
    );
}
