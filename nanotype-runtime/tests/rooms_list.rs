//! `GET /_rooms` complete and paged: with 1,379 rooms (1,372 `a-*`, 7 `b-*`) the `b-` token sees
//! its 7 in one page that reads only them, the all-rooms token pages through every room with a
//! cursor, and a policy that decides room by room is never truncated without a `next`.

mod support;

use nanotype::api::rooms::{list, RoomScope, RoomsPage};
use nanotype::api::{Access, Decision, Policy, RequestParts, RoomTokens, Vars};
use nanotype::native::NativeReplica;
use support::block;

fn replica_with_rooms() -> NativeReplica {
    let r = NativeReplica::open_in_memory().unwrap();
    r.execute_batch(nanotype::schema::ddl::REPLICA_META)
        .unwrap();
    let names = (0..1_372)
        .map(|i| format!("a-{i:05}"))
        .chain((0..7).map(|i| format!("b-{i}")));
    let mut n = 0;
    for name in names {
        r.connection()
            .execute(
                "INSERT INTO _nt_rooms (room_id, watermark, read_seq, primary_id) VALUES (?1, 1, 1, 'p')",
                [name],
            )
            .unwrap();
        n += 1;
    }
    assert_eq!(n, 1_379);
    r
}

fn bearer(token: &str) -> RequestParts {
    RequestParts {
        method: "GET".into(),
        path: "/_rooms".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
    }
}

fn env() -> impl Vars {
    |name: &str| (name == "API_TOKENS").then(|| "tb=b-,tall=*".to_owned())
}

fn names(page: &RoomsPage) -> Vec<String> {
    page.rooms
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_owned())
        .collect()
}

/// Pages through every room the caller may see, following `next`.
fn all<P: Policy>(
    r: &NativeReplica,
    policy: &P,
    req: &RequestParts,
    limit: usize,
) -> (Vec<String>, usize) {
    let (mut out, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = block(list(
            std::slice::from_ref(r),
            policy,
            req,
            &env(),
            after.as_deref(),
            limit,
        ))
        .unwrap();
        pages += 1;
        out.extend(names(&page));
        match page.next {
            Some(next) => after = Some(next),
            None => return (out, pages),
        }
        assert!(pages < 100, "bounded");
    }
}

#[test]
fn a_prefix_token_sees_its_rooms_whatever_else_the_replica_holds() {
    let r = replica_with_rooms();
    let tokens = RoomTokens::from_var("API_TOKENS");
    let page = block(list(
        std::slice::from_ref(&r),
        &tokens,
        &bearer("tb"),
        &env(),
        None,
        100,
    ))
    .unwrap();
    assert_eq!(
        names(&page),
        (0..7).map(|i| format!("b-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(page.next, None);
    // Every room for the all-rooms token, in pages of 500 with a cursor, none twice.
    let (rooms, pages) = all(&r, &tokens, &bearer("tall"), 500);
    assert_eq!((rooms.len(), pages), (1_379, 3));
    let mut sorted = rooms.clone();
    sorted.dedup();
    assert_eq!(sorted, rooms);
    // An unknown token is a 401.
    let err = block(list(
        std::slice::from_ref(&r),
        &tokens,
        &bearer("nope"),
        &env(),
        None,
        100,
    ))
    .unwrap_err();
    assert_eq!(err.status, 401);
}

/// Decides room by room: only `b-` rooms, like the token, but unknown to the listing.
struct OnlyB;

impl Policy for OnlyB {
    async fn authorize(
        &self,
        _req: &RequestParts,
        _env: &dyn Vars,
        access: &Access<'_>,
    ) -> Decision {
        if access.room.starts_with("b-") {
            Decision::Allow
        } else {
            Decision::forbidden("not yours")
        }
    }
}

#[test]
fn a_policy_that_decides_room_by_room_pages_with_a_cursor_and_misses_none() {
    let r = replica_with_rooms();
    assert_eq!(
        pollster::block_on(OnlyB.visible_rooms(&bearer("x"), &env())),
        RoomScope::EachRoom
    );
    // A page scans a bounded number of rooms: the first pages may hold none of the caller's,
    // and say where to go on.
    let first = block(list(
        std::slice::from_ref(&r),
        &OnlyB,
        &bearer("x"),
        &env(),
        None,
        100,
    ))
    .unwrap();
    assert!(first.rooms.is_empty() && first.next.is_some(), "{first:?}");
    let (rooms, _) = all(&r, &OnlyB, &bearer("x"), 100);
    assert_eq!(rooms, (0..7).map(|i| format!("b-{i}")).collect::<Vec<_>>());
}
