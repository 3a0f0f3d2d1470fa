//! The read-only SQL route tells the truth and has a budget: what is not one pure query is a 4xx
//! before it runs (never rolled back and reported as success), no statement changes the
//! connection for later requests, and unbounded or over-budget plans are refused before they
//! run: the 10M and 30M recursive CTEs, a cross join of two large tables.

mod support;

use nanotype::api::{self, route::route, ApiError, Reply, RoomHooks};
use nanotype::native::{ManualScheduler, NativeReplica};
use nanotype::sync::Engine;
use nanotype::{Primary, Value};
use support::*;

nanotype::schema!(Items = [Item]);

#[derive(Default)]
struct Analytics;
impl RoomHooks for Analytics {
    fn read_only_sql(&self) -> bool {
        true
    }
}

struct Tight;
impl Default for Tight {
    fn default() -> Tight {
        Tight
    }
}
impl RoomHooks for Tight {
    fn read_only_sql(&self) -> bool {
        true
    }
    fn read_only_sql_budget(&self) -> u64 {
        1_000
    }
}

fn sql<H: RoomHooks>(
    e: &TestEngine<NativeReplica>,
    hooks: &H,
    text: &str,
) -> Result<Reply, ApiError> {
    let r = route::<Items>("POST", "/rooms/s/_sql").unwrap();
    let body = serde_json::json!({ "sql": text }).to_string();
    api::room::serve(
        e,
        hooks,
        &r,
        &api::RoomRequest {
            body: body.as_bytes(),
            ..Default::default()
        },
    )
}

#[test]
fn only_one_bounded_query_runs() {
    let dir = TempDir::new("sql");
    let e = Engine::builder("s")
        .schema::<Items>()
        .replica(None::<NativeReplica>)
        .open(
            primary(&dir.path("s.db")),
            std::rc::Rc::new(ManualScheduler::new()),
        )
        .unwrap();
    let mut rng = Rng::new(5);
    e.primary()
        .transaction(|| {
            for i in 0..2_000 {
                let mut item = random_item(&mut rng, "s");
                if i < 6 {
                    // Rows of a megabyte, for the result's byte cap below.
                    item.note = Some("x".repeat(1_000_000));
                }
                Item::insert(e.primary(), &item)?;
            }
            Ok(())
        })
        .unwrap();
    let count = || match &e
        .primary()
        .query("SELECT COUNT(*) FROM items", &[])
        .unwrap()[0][0]
    {
        Value::Integer(n) => *n,
        other => panic!("{other:?}"),
    };

    let ok = sql(&e, &Analytics, "SELECT COUNT(*) AS n FROM items").unwrap();
    assert_eq!(ok.body["rows"][0][0], 2_000);
    assert!(sql(
        &e,
        &Analytics,
        "SELECT kind, COUNT(*) FROM items WHERE id > 0 GROUP BY kind ORDER BY 2 DESC"
    )
    .is_ok());
    assert!(sql(
        &e,
        &Analytics,
        "WITH x AS (SELECT id FROM items WHERE id < 10) SELECT COUNT(*) FROM x"
    )
    .is_ok());

    let refused = |text: &str, needle: &str| {
        let err = sql(&e, &Analytics, text).unwrap_err();
        assert_eq!((err.status, err.code), (400, "rejected"), "{text}: {err}");
        assert!(err.message.contains(needle), "{text}: {}", err.message);
    };
    // Not a pure read: refused before it runs, and nothing changed.
    refused("DROP TABLE items", "refused before it runs");
    refused("DELETE FROM items; SELECT 1", "exactly one statement");
    refused(
        "WITH x AS (SELECT 1) DELETE FROM items",
        "refused before it runs",
    );
    refused(
        "PRAGMA reverse_unordered_selects = 1",
        "refused before it runs",
    );
    assert_eq!(count(), 2_000);
    let pragma = e
        .primary()
        .query("PRAGMA reverse_unordered_selects", &[])
        .unwrap();
    assert_eq!(
        pragma,
        vec![vec![Value::Integer(0)]],
        "the connection is as it was"
    );
    // Unbounded or over budget: refused before it runs.
    refused(
        "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 10000000) SELECT COUNT(*) FROM n",
        "recursive",
    );
    refused(
        "WITH n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 30000000) SELECT COUNT(*) FROM n",
        "recursive",
    );
    refused(
        "SELECT COUNT(*) FROM items a, items b",
        "would scan about 4002000 rows",
    );
    // The shapes that walked around the first guard: each refused before it runs.
    let values = |n: usize| {
        let rows: Vec<String> = (0..n).map(|i| format!("({i})")).collect();
        format!("(VALUES {})", rows.join(","))
    };
    let doubling = "WITH a(x) AS (VALUES (1), (2)), b AS (SELECT 1 FROM a, a AS a2), \
        c AS (SELECT 1 FROM b, b AS b2), d AS (SELECT 1 FROM c, c AS c2), \
        e AS (SELECT 1 FROM d, d AS d2), f AS (SELECT 1 FROM e, e AS e2) SELECT COUNT(*) FROM f";
    for (text, needle) in [
        (
            "SELECT COUNT(*) FROM items a, items b, items c WHERE a.id > 0 AND b.id > 0 AND c.id > 0"
                .to_owned(),
            "would scan about",
        ),
        (doubling.to_owned(), "would scan about"),
        (
            format!("SELECT COUNT(*) FROM {} AS x, {} AS y", values(2_000), values(2_000)),
            "would scan about",
        ),
        (
            "SELECT COUNT(*) FROM json_each('[1,2,3]') a, json_each('[1,2,3]') b".to_owned(),
            "table-valued",
        ),
        (
            "SELECT value FROM json_each('[1,2,3]')".to_owned(),
            "table-valued",
        ),
        (
            "SELECT id FROM items ORDER BY (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL \
             SELECT n + 1 FROM r WHERE n < 1000000) SELECT COUNT(*) FROM r)"
                .to_owned(),
            "recursive",
        ),
        (
            "SELECT (SELECT COUNT(*) FROM (WITH r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r \
             WHERE n < 1000000) SELECT n FROM r))"
                .to_owned(),
            "recursive",
        ),
    ] {
        refused(&text, needle);
    }
    // Functions that make values far larger than their inputs: refused before they run.
    for text in [
        "SELECT COUNT(*) FROM items WHERE length(printf('%.*c', 100000, 'x')) > 0",
        "SELECT length(zeroblob(1000000000))",
        "SELECT hex(hex(hex(hex(randomblob(1000000)))))",
        "SELECT group_concat(a.note) FROM items a, items b WHERE a.id < 3",
    ] {
        refused(text, "is refused before it runs");
    }
    // Rows of a megabyte each (of the room's own data): the answer stops at the byte cap.
    let big = serde_json::json!({
        "sql": "SELECT note FROM items ORDER BY id",
        "maxRows": 1000
    })
    .to_string();
    let r = route::<Items>("POST", "/rooms/s/_sql").unwrap();
    let req = api::RoomRequest {
        body: big.as_bytes(),
        ..Default::default()
    };
    let out = api::room::serve(&e, &Analytics, &r, &req).unwrap();
    let rows = out.body["rows"].as_array().unwrap().len();
    assert!(
        (1..=4).contains(&rows) && out.body["truncated"] == true,
        "{rows} rows of 1 MB under a {} byte cap",
        nanotype::actor::analytics::MAX_RESULT_BYTES
    );
    let tight = sql(&e, &Tight, "SELECT COUNT(*) FROM items").unwrap_err();
    assert!(
        tight.message.contains("budget is 1000"),
        "{}",
        tight.message
    );
    assert!(
        sql(&e, &Tight, "SELECT kind FROM items WHERE id = 7").is_ok(),
        "an index probe fits any budget"
    );
    // Off unless the app turns it on.
    assert_eq!(sql(&e, &(), "SELECT 1").unwrap_err().status, 404);
    // The caller's own mistakes are the caller's.
    assert_eq!(sql(&e, &Analytics, "SELEC 1").unwrap_err().code, "rejected");
    assert_eq!(
        sql(&e, &Analytics, "SELECT nope FROM items")
            .unwrap_err()
            .code,
        "sql_error"
    );
}

#[test]
fn a_room_whose_keys_are_negative_is_sized_by_its_rowid_span() {
    let dir = TempDir::new("sql-negative");
    let e = Engine::builder("s")
        .schema::<Items>()
        .replica(None::<NativeReplica>)
        .open(
            primary(&dir.path("s.db")),
            std::rc::Rc::new(ManualScheduler::new()),
        )
        .unwrap();
    let mut rng = Rng::new(6);
    e.primary()
        .transaction(|| {
            for id in 1..=400 {
                let mut item = random_item(&mut rng, "s");
                item.id = -id;
                Item::upsert(e.primary(), &item)?;
            }
            Ok(())
        })
        .unwrap();
    // 400 rows, three ways: 6.4e7 rows, over the budget however the keys run.
    let err = sql(
        &e,
        &Analytics,
        "SELECT COUNT(*) FROM items a, items b, items c",
    )
    .unwrap_err();
    assert!(err.message.contains("would scan about"), "{}", err.message);
    assert!(sql(&e, &Analytics, "SELECT COUNT(*) FROM items a, items b").is_ok());
}

#[test]
fn a_table_without_a_rowid_is_sized_by_its_count() {
    let dir = TempDir::new("sql-without-rowid");
    let e = Engine::builder("s")
        .schema::<Items>()
        .replica(None::<NativeReplica>)
        .open(
            primary(&dir.path("s.db")),
            std::rc::Rc::new(ManualScheduler::new()),
        )
        .unwrap();
    e.primary()
        .execute_batch(
            "CREATE TABLE pairs (a INTEGER, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID; \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) \
             INSERT INTO pairs SELECT i, i FROM n;",
        )
        .unwrap();
    assert!(sql(&e, &Analytics, "SELECT COUNT(*) FROM pairs").is_ok());
    let err = sql(&e, &Analytics, "SELECT COUNT(*) FROM pairs x, pairs y").unwrap_err();
    assert!(err.message.contains("would scan about"), "{}", err.message);
}
