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
            for _ in 0..2_000 {
                Item::insert(e.primary(), &random_item(&mut rng, "s"))?;
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
    assert!(sql(&e, &Analytics, "SELECT value FROM json_each('[1,2,3]')").is_ok());
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
        "would scan about 4000000 rows",
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
