//! The actor extras against real SQLite: the memory store's TTLs and caps, the debouncer writing
//! through generated functions to a NativePrimary, and read-only SQL enforced by SQLite.
#![cfg(feature = "native")]

use std::cell::Cell;

use nanotype::actor::{Debouncer, MemoryLimits, MemoryStore, ReadOnlySql};
use nanotype::native::NativePrimary;
use nanotype::{outbox, Error, Primary, Value};
use serde_json::json;

#[nanotype::table(name = "counters")]
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    #[nanotype(primary_key)]
    pub id: i64,
    pub count: i64,
}

#[nanotype::table(name = "cursors")]
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    #[nanotype(primary_key)]
    pub user: String,
    pub x: i64,
    pub y: i64,
}

fn primary() -> NativePrimary {
    let db = NativePrimary::open_in_memory().unwrap();
    outbox::install(&db).unwrap();
    db.execute_batch(Counter::PRIMARY_DDL).unwrap();
    db.execute_batch(Cursor::PRIMARY_DDL).unwrap();
    db
}

// ---------------------------------------------------------------------------------------------
// MemoryStore

#[test]
fn presence_expires_and_is_listed_per_room() {
    let store = MemoryStore::new();
    let t0 = 1_700_000_000_000;
    for (room, user, ttl) in [
        ("r1", "ana", 30_000),
        ("r1", "bo", 10_000),
        ("r2", "cy", 30_000),
        ("r10", "di", 30_000),
    ] {
        store
            .set(
                &format!("presence:{room}:{user}"),
                json!({"user": user, "cursor": [0, 0]}),
                ttl,
                t0,
            )
            .unwrap();
    }
    let users = |room: &str, now| -> Vec<String> {
        store
            .entries_with_prefix(&format!("presence:{room}:"), now)
            .into_iter()
            .map(|(_, v)| v["user"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(users("r1", t0), ["ana", "bo"]);
    assert_eq!(users("r1", t0 + 9_999), ["ana", "bo"]);
    assert_eq!(users("r1", t0 + 10_000), ["ana"]);
    // A heartbeat keeps ana; without one she is gone at 30 s.
    assert!(store.touch("presence:r1:ana", 30_000, t0 + 20_000));
    assert_eq!(users("r1", t0 + 45_000), ["ana"]);
    assert_eq!(users("r1", t0 + 50_000), Vec::<String>::new());
    assert_eq!(
        store.get("presence:r2:cy", t0 + 29_999).unwrap()["user"],
        "cy"
    );
    assert_eq!(store.get("presence:r2:cy", t0 + 30_000), None);
    assert!(store.is_empty(t0 + 50_000));
}

#[test]
fn purge_removes_exactly_the_expired() {
    let store = MemoryStore::new();
    for i in 0..1_000u64 {
        store
            .set(&format!("cursor:{i:04}"), json!(i), 1 + i, 0)
            .unwrap();
    }
    // Entry i lives while now < 1 + i.
    assert_eq!(store.purge(500), 500);
    assert_eq!(store.len(500), 500);
    assert_eq!(store.next_expiry_ms(), Some(501));
    assert_eq!(store.get("cursor:0499", 500), None);
    assert_eq!(store.get("cursor:0500", 500), Some(json!(500)));
    assert_eq!(store.purge(10_000), 500);
    assert_eq!(store.next_expiry_ms(), None);
}

#[test]
fn entry_cap_evicts_the_soonest_to_expire() {
    let store = MemoryStore::with_limits(MemoryLimits {
        max_entries: 100,
        ..MemoryLimits::default()
    });
    for i in 0..100u64 {
        // Entry i expires at 1_000 + i: entry 0 is the soonest.
        assert_eq!(
            store.set(&format!("k{i}"), json!(i), 1_000 + i, 0).unwrap(),
            None
        );
    }
    let evicted: Vec<String> = (100..110u64)
        .map(|i| {
            store
                .set(&format!("k{i}"), json!(i), 5_000, 0)
                .unwrap()
                .unwrap()
        })
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    assert_eq!(evicted, expected);
    assert_eq!(store.len(0), 100);
    assert_eq!(store.get("k10", 0), Some(json!(10)));
    assert_eq!(store.get("k109", 0), Some(json!(109)));
}

#[test]
fn value_cap_is_a_clear_error() {
    let store = MemoryStore::with_limits(MemoryLimits {
        max_value_bytes: 1_024,
        ..MemoryLimits::default()
    });
    store.set("ok", json!("x".repeat(1_000)), 1_000, 0).unwrap();
    let err = store
        .set("big", json!("x".repeat(2_000)), 1_000, 0)
        .unwrap_err();
    let Error::Rejected(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("`big`"), "{msg}");
    assert!(msg.contains("2002 bytes"), "{msg}");
    assert!(msg.contains("limit of 1024 bytes"), "{msg}");
    assert_eq!(store.get("big", 0), None);
    assert_eq!(store.len(0), 1);
}

// ---------------------------------------------------------------------------------------------
// Debouncer writing through generated functions to a real primary

/// Adds `inc` to counter `id` through the generated typed functions, atomically.
fn add(db: &NativePrimary, id: i64, inc: i64) -> nanotype::Result<()> {
    db.transaction(|| {
        let count = Counter::get(db, id)?.map_or(0, |c| c.count) + inc;
        Counter::upsert(db, &Counter { id, count }).map(drop)
    })
}

#[test]
fn thousands_of_increments_become_one_write_per_key() {
    let db = primary();
    let likes: Debouncer<i64, i64> = Debouncer::with_merge(1_000, |sum, inc| *sum += inc);
    let mut now = 0;
    for i in 0..10_000i64 {
        now = i / 10; // ten updates per ms, all within one interval
        likes.update(i % 10, 1 + i % 3, now);
    }
    assert_eq!(likes.pending(), 10);
    assert!(!likes.due(now));
    let writes = Cell::new(0);
    let report = likes.flush(|id, inc| {
        writes.set(writes.get() + 1);
        add(&db, *id, *inc)
    });
    assert!(report.is_complete());
    assert_eq!(report.written, (0..10).collect::<Vec<_>>());
    assert_eq!(writes.get(), 10);
    // One outbox record per key, not per update.
    assert_eq!(outbox::depth(&db).unwrap(), 10);
    for id in 0..10 {
        let expected: i64 = (0..10_000i64)
            .filter(|i| i % 10 == id)
            .map(|i| 1 + i % 3)
            .sum();
        assert_eq!(Counter::get(&db, id).unwrap().unwrap().count, expected);
    }
    assert_eq!(likes.pending(), 0);
    assert_eq!(likes.next_due_ms(), None);
}

#[test]
fn last_cursor_position_wins() {
    let db = primary();
    let cursors: Debouncer<String, (i64, i64)> = Debouncer::new(50);
    for step in 0..2_000i64 {
        for user in ["ana", "bo"] {
            cursors.update(user.to_owned(), (step, -step), step / 100);
        }
    }
    let report = cursors.flush(|user, &(x, y)| {
        Cursor::upsert(
            &db,
            &Cursor {
                user: user.clone(),
                x,
                y,
            },
        )
        .map(drop)
    });
    assert_eq!(report.written, ["ana", "bo"]);
    let ana = Cursor::get(&db, "ana").unwrap().unwrap();
    assert_eq!((ana.x, ana.y), (1_999, -1_999));
    assert_eq!(outbox::depth(&db).unwrap(), 2);
}

#[test]
fn due_once_per_interval_under_a_steady_stream() {
    let db = primary();
    let d: Debouncer<i64, i64> = Debouncer::with_merge(100, |a, b| *a += b);
    let mut flushes = Vec::new();
    let mut first_pending: Option<i64> = None;
    // An update every ms for 1 s, checked after each: due exactly one interval after the first
    // update that is not yet written, however many updates follow it.
    for now in 0..1_000i64 {
        d.update(now % 3, 1, now);
        let first = *first_pending.get_or_insert(now);
        assert_eq!(d.next_due_ms(), Some(first + 100));
        assert_eq!(d.due(now), now >= first + 100);
        if let Some(report) = d.flush_if_due(now, |id, inc| add(&db, *id, *inc)) {
            assert!(report.is_complete());
            assert_eq!(report.written.len(), 3);
            flushes.push(now);
            first_pending = None;
            assert_eq!(d.next_due_ms(), None);
        }
    }
    assert_eq!(flushes, [100, 201, 302, 403, 504, 605, 706, 807, 908]);
    assert_eq!(d.next_due_ms(), Some(1_009));
    assert!(!d.due(1_008));
    assert!(d.flush(|id, inc| add(&db, *id, *inc)).is_complete());
    // Ten flushes of three keys: thirty writes for a thousand updates.
    assert_eq!(outbox::depth(&db).unwrap(), 30);
    let total: i64 = (0..3)
        .map(|id| Counter::get(&db, id).unwrap().unwrap().count)
        .sum();
    assert_eq!(total, 1_000);
}

#[test]
fn failed_flush_keeps_values_and_a_later_flush_writes_the_merged_value() {
    let db = primary();
    // A real SQLite failure: a trigger refuses writes while the switch is on.
    db.execute_batch(
        "CREATE TABLE switch (fail INTEGER NOT NULL);
         INSERT INTO switch VALUES (0);
         CREATE TRIGGER refuse BEFORE INSERT ON counters
         WHEN (SELECT fail FROM switch) AND NEW.id = 1
         BEGIN SELECT RAISE(ABORT, 'counter 1 is locked'); END;",
    )
    .unwrap();
    add(&db, 1, 100).unwrap();
    add(&db, 2, 100).unwrap();
    let depth0 = outbox::depth(&db).unwrap();
    db.execute("UPDATE switch SET fail = 1", &[]).unwrap();

    let d: Debouncer<i64, i64> = Debouncer::with_merge(100, |a, b| *a += b);
    for _ in 0..1_000 {
        d.update(1, 1, 0);
        d.update(2, 1, 0);
    }
    let report = d.flush(|id, inc| add(&db, *id, *inc));
    assert_eq!(report.written, [2]);
    assert_eq!(report.failed.len(), 1);
    let (key, err) = &report.failed[0];
    assert_eq!(*key, 1);
    assert!(err.to_string().contains("counter 1 is locked"), "{err}");
    // The failed write left neither the row change nor an outbox record.
    assert_eq!(Counter::get(&db, 1).unwrap().unwrap().count, 100);
    assert_eq!(Counter::get(&db, 2).unwrap().unwrap().count, 1_100);
    assert_eq!(outbox::depth(&db).unwrap(), depth0 + 1);
    // ... and the debouncer kept the value, due again one interval later.
    assert_eq!(d.pending(), 1);
    assert_eq!(d.pending_value(&1), Some(1_000));
    assert_eq!(d.next_due_ms(), Some(100));

    // Still failing: still kept, and new increments merge onto it.
    for _ in 0..500 {
        d.update(1, 1, 150);
    }
    assert!(!d.flush(|id, inc| add(&db, *id, *inc)).is_complete());
    assert_eq!(d.pending_value(&1), Some(1_500));
    assert_eq!(d.next_due_ms(), Some(250));

    db.execute("UPDATE switch SET fail = 0", &[]).unwrap();
    d.update(1, 1, 200);
    let report = d.flush_if_due(250, |id, inc| add(&db, *id, *inc)).unwrap();
    assert!(report.is_complete());
    assert_eq!(report.written, [1]);
    assert_eq!(Counter::get(&db, 1).unwrap().unwrap().count, 100 + 1_501);
    assert_eq!(d.pending(), 0);
    assert_eq!(outbox::depth(&db).unwrap(), depth0 + 2);
}

// ---------------------------------------------------------------------------------------------
// Read-only SQL

fn analytics_db() -> NativePrimary {
    let db = primary();
    for id in 0..250 {
        Counter::upsert(&db, &Counter { id, count: id * 2 }).unwrap();
    }
    db
}

/// Everything a statement could change: the rows, the schema, the header, the connection.
fn snapshot(db: &NativePrimary) -> Vec<Vec<Value>> {
    let mut out = db
        .query("SELECT id, count FROM counters ORDER BY id", &[])
        .unwrap();
    out.extend(
        db.query(
            "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
            &[],
        )
        .unwrap(),
    );
    out.extend(db.query("PRAGMA user_version", &[]).unwrap());
    out.extend(db.query("PRAGMA foreign_keys", &[]).unwrap());
    // Compiling a `CREATE TEMP ..` opens the (empty) temp schema; that is not a change.
    out.extend(
        db.query(
            "SELECT name FROM pragma_database_list WHERE name <> 'temp'",
            &[],
        )
        .unwrap(),
    );
    out.extend(
        db.query("SELECT type, name FROM sqlite_temp_schema", &[])
            .unwrap(),
    );
    out.extend(db.query("SELECT COUNT(*) FROM _nt_outbox", &[]).unwrap());
    out
}

#[test]
fn reads_are_accepted() {
    let db = analytics_db();
    let out = db
        .query_readonly(
            "SELECT id, count FROM counters WHERE count >= ?1 ORDER BY id LIMIT 3",
            &[Value::Integer(100)],
            10,
        )
        .unwrap();
    assert_eq!(out.columns, ["id", "count"]);
    assert_eq!(
        out.rows,
        (50..53)
            .map(|i| vec![Value::Integer(i), Value::Integer(i * 2)])
            .collect::<Vec<_>>()
    );
    assert!(!out.truncated);

    let out = db
        .query_readonly(
            "WITH big AS (SELECT * FROM counters WHERE count > 400) SELECT COUNT(*) AS n, SUM(count) FROM big",
            &[],
            10,
        )
        .unwrap();
    assert_eq!(out.columns[0], "n");
    assert_eq!(out.rows[0][0], Value::Integer(49));

    // Recursive CTEs, functions, the engine's own tables, the table-valued pragmas.
    let out = db
        .query_readonly(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT group_concat(i) FROM n",
            &[],
            10,
        )
        .unwrap();
    assert_eq!(out.rows, [vec![Value::Text("1,2,3,4,5".into())]]);
    let out = db
        .query_readonly("SELECT COUNT(*) FROM _nt_outbox", &[], 10)
        .unwrap();
    assert_eq!(out.rows, [vec![Value::Integer(250)]]);
    let out = db
        .query_readonly("SELECT user_version FROM pragma_user_version", &[], 10)
        .unwrap();
    assert_eq!(out.rows, [vec![Value::Integer(0)]]);
    assert!(db
        .query_readonly(
            "EXPLAIN QUERY PLAN SELECT * FROM counters WHERE id = 3",
            &[],
            10
        )
        .is_ok());

    // Parameters are bound, never spliced.
    let out = db
        .query_readonly(
            "SELECT COUNT(*) FROM counters WHERE CAST(id AS TEXT) = ?1",
            &[Value::Text("1'; DELETE FROM counters; --".into())],
            10,
        )
        .unwrap();
    assert_eq!(out.rows, [vec![Value::Integer(0)]]);
    assert_eq!(snapshot(&db), snapshot(&analytics_db()));

    let json = serde_json::to_value(
        db.query_readonly(
            "SELECT id, 'x' AS s, NULL AS z FROM counters ORDER BY id",
            &[],
            2,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        json,
        json!({"columns": ["id", "s", "z"], "rows": [[0, "x", null], [1, "x", null]], "truncated": true})
    );
}

#[test]
fn the_row_cap_is_enforced() {
    let db = analytics_db();
    let q = "SELECT id FROM counters ORDER BY id";
    let out = db.query_readonly(q, &[], 100).unwrap();
    assert_eq!(out.rows.len(), 100);
    assert!(out.truncated);
    assert_eq!(out.rows[99], [Value::Integer(99)]);
    let out = db.query_readonly(q, &[], 250).unwrap();
    assert_eq!(out.rows.len(), 250);
    assert!(!out.truncated);
    let out = db.query_readonly(q, &[], 0).unwrap();
    assert!(out.rows.is_empty() && out.truncated);
    let out = db
        .query_readonly("SELECT id FROM counters WHERE id < 0", &[], 0)
        .unwrap();
    assert!(out.rows.is_empty() && !out.truncated);
}

#[test]
fn writes_and_connection_changes_are_rejected_and_change_nothing() {
    let db = analytics_db();
    let before = snapshot(&db);
    let cases: &[(&str, &str)] = &[
        (
            "INSERT INTO counters (id, count) VALUES (1000, 1)",
            "writes",
        ),
        ("REPLACE INTO counters (id, count) VALUES (1, 1)", "writes"),
        ("UPDATE counters SET count = 0", "writes"),
        ("DELETE FROM counters", "writes"),
        ("DELETE FROM counters RETURNING id", "writes"),
        ("delete /* sneaky */ from counters", "writes"),
        ("CREATE TABLE evil (x)", "writes"),
        ("CREATE TEMP TABLE evil (x)", "writes"),
        ("CREATE INDEX evil ON counters (count)", "writes"),
        ("DROP TABLE counters", "writes"),
        ("ALTER TABLE counters ADD COLUMN evil TEXT", "writes"),
        ("WITH x AS (SELECT 1) DELETE FROM counters", "writes"),
        ("PRAGMA user_version = 5", "writes"),
        ("PRAGMA foreign_keys = ON", "PRAGMA"),
        ("PRAGMA user_version", "pragma_user_version"),
        ("ATTACH DATABASE ':memory:' AS other", "ATTACH"),
        ("DETACH DATABASE main", "DETACH"),
        ("BEGIN", "transaction"),
        ("COMMIT", "transaction"),
        ("ROLLBACK", "transaction"),
        ("SAVEPOINT s", "transaction"),
        ("SELECT 1; DELETE FROM counters", "more than one statement"),
        ("SELECT 1; SELECT 2", "more than one statement"),
        ("DELETE FROM counters; SELECT 1", "more than one statement"),
        ("", "no statement"),
        ("  -- just a comment", "no statement"),
    ];
    for (sql, why) in cases {
        match db.query_readonly(sql, &[], 1_000) {
            Err(Error::Rejected(msg)) => {
                assert!(msg.contains(why), "{sql}: {msg}");
            }
            other => panic!("{sql}: expected a rejection, got {other:?}"),
        }
        let after = snapshot(&db);
        assert!(
            after == before,
            "{sql} changed the database: {:?}",
            &after[250..]
        );
        assert!(db.connection().is_autocommit(), "{sql} left a transaction");
    }
    let writes = cases.iter().filter(|(_, why)| *why == "writes").count();
    assert!(writes >= 12);

    // The primary still works normally afterwards.
    Counter::upsert(&db, &Counter { id: 7, count: -1 }).unwrap();
    assert_eq!(Counter::get(&db, 7).unwrap().unwrap().count, -1);
}

#[test]
fn readonly_sql_inside_a_write_transaction_leaves_it_alone() {
    let db = analytics_db();
    let out = db
        .transaction(|| {
            Counter::upsert(&db, &Counter { id: 1, count: 42 })?;
            // Sees the transaction's own write; a rejected statement does not end it.
            let seen = db.query_readonly("SELECT count FROM counters WHERE id = 1", &[], 1)?;
            assert!(db.query_readonly("COMMIT", &[], 1).is_err());
            assert!(db.query_readonly("ROLLBACK", &[], 1).is_err());
            Err::<(), _>(Error::Rejected(format!("roll back after {:?}", seen.rows)))
        })
        .unwrap_err();
    assert!(out.to_string().contains("Integer(42)"), "{out}");
    // The outer transaction was rolled back as a whole.
    assert_eq!(Counter::get(&db, 1).unwrap().unwrap().count, 2);
}
