//! Complete change capture on the native backend: changes made around the generated functions —
//! raw SQL in the room, `REPLACE`, a foreign key's `ON DELETE CASCADE` — reach the replica like
//! any write; the generated writes record each change once; a capture trigger dropped by hand is
//! back at the next open; triggers of tables outside the schema are dropped.

mod support;

use std::rc::Rc;

use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
use nanotype::sync::Engine;
use nanotype::{outbox, Primary, Value};
use support::*;

/// A member of an item (a child row: `ON DELETE CASCADE` from `items`).
#[nanotype::table(name = "members")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    #[nanotype(primary_key)]
    pub id: i64,
    pub item_id: i64,
    #[nanotype(unique)]
    pub handle: String,
}

nanotype::schema!(Capture = [Item, Member]);

/// The child table with its foreign key, made by hand (the model has no references yet).
const MEMBERS_WITH_FK: &str = "CREATE TABLE \"members\" (
    \"id\" INTEGER PRIMARY KEY,
    \"item_id\" INTEGER NOT NULL REFERENCES \"items\" (\"id\") ON DELETE CASCADE,
    \"handle\" TEXT NOT NULL
);
CREATE UNIQUE INDEX \"members_handle_key\" ON \"members\" (\"handle\");";

fn db(dir: &TempDir) -> NativePrimary {
    let p = primary(&dir.path("c.db"));
    if p.query("SELECT 1 FROM sqlite_master WHERE name = 'members'", &[])
        .unwrap()
        .is_empty()
    {
        p.execute_batch(MEMBERS_WITH_FK).unwrap();
    }
    p.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    p
}

fn open(dir: &TempDir, replica: &NativeReplica) -> TestEngine<NativeReplica> {
    Engine::builder("c")
        .schema::<Capture>()
        .replica(Some(replica.clone()))
        .open(db(dir), Rc::new(ManualScheduler::at(1_900_000_000_000)))
        .unwrap()
}

fn replica_members(r: &NativeReplica) -> Vec<nanotype::Row> {
    replica_rows(r, Member::table_def(), "c")
}

#[test]
fn raw_sql_replace_and_cascades_reach_the_replica() {
    let dir = TempDir::new("capture");
    let native = replica(&dir.path("replica.db"));
    native.execute_batch(Member::REPLICA_DDL).unwrap();
    let e = open(&dir, &native);
    let mut rng = Rng::new(9);
    let a = Item::insert(e.primary(), &random_item(&mut rng, "c")).unwrap();
    let b = Item::insert(e.primary(), &random_item(&mut rng, "c")).unwrap();
    for (i, item) in [(1, a.id), (2, a.id), (3, b.id)] {
        Member::insert(
            e.primary(),
            &Member {
                id: 0,
                item_id: item,
                handle: format!("m{i}"),
            },
        )
        .unwrap();
    }
    // The generated writes: one outbox record each, no more.
    assert_eq!(outbox::current_seq(e.primary()).unwrap(), 5);
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "c");
    assert_eq!(replica_members(&native).len(), 3);

    // Raw SQL in the room, as a hook or a timer would run it.
    let db = e.primary();
    db.execute(
        "UPDATE items SET note = 'raw' WHERE id = ?1",
        &[Value::Integer(b.id)],
    )
    .unwrap();
    // A key changed by raw SQL: the old key is deleted in the replica, the new one written.
    db.execute("UPDATE members SET id = 100 WHERE handle = 'm3'", &[])
        .unwrap();
    // REPLACE over a unique conflict deletes `m2` (a different key) without a delete trigger.
    db.execute(
        "INSERT OR REPLACE INTO members (id, item_id, handle) VALUES (50, ?1, 'm2')",
        &[Value::Integer(b.id)],
    )
    .unwrap();
    // A cascade: deleting item `a` deletes its member `m1` in the room.
    db.execute("DELETE FROM items WHERE id = ?1", &[Value::Integer(a.id)])
        .unwrap();
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "c");
    let members: Vec<i64> = replica_members(&native)
        .iter()
        .map(|r| match r[0] {
            Value::Integer(i) => i,
            _ => -1,
        })
        .collect();
    assert_eq!(
        members,
        [50, 100],
        "m1 cascaded away, m2 replaced by 50, m3 moved to 100"
    );
    let notes = replica_rows(&native, Item::table_def(), "c");
    assert_eq!(notes.len(), 1, "item a deleted in the replica too");
    assert!(
        notes[0].contains(&Value::Text("raw".into())),
        "the raw update reached the replica: {notes:?}"
    );
}

#[test]
fn unique_values_swapped_between_rows_replicate() {
    let dir = TempDir::new("capture-swap");
    let native = replica(&dir.path("replica.db"));
    native.execute_batch(Member::REPLICA_DDL).unwrap();
    let e = open(&dir, &native);
    let item = Item::insert(e.primary(), &random_item(&mut Rng::new(4), "c")).unwrap();
    let new = |handle: &str| Member {
        id: 0,
        item_id: item.id,
        handle: handle.into(),
    };
    let x = Member::insert(e.primary(), &new("a")).unwrap();
    let y = Member::insert(e.primary(), &new("b")).unwrap();
    block(e.sync()).unwrap();
    // Swap through a temporary value: the replica gets only the final states, in one batch.
    for (row, handle) in [(&x, "tmp"), (&y, "a"), (&x, "b")] {
        let mut row = row.clone();
        row.handle = handle.into();
        Member::update(e.primary(), &row).unwrap();
    }
    block(e.sync()).unwrap();
    let mut got: Vec<String> = replica_members(&native)
        .iter()
        .map(|r| format!("{:?}={:?}", r[0], r[2]))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            format!("{:?}={:?}", Value::Integer(x.id), Value::Text("b".into())),
            format!("{:?}={:?}", Value::Integer(y.id), Value::Text("a".into())),
        ]
    );
}

#[test]
fn a_dropped_trigger_is_back_at_the_next_open_and_others_are_removed() {
    let dir = TempDir::new("capture-reopen");
    let native = replica(&dir.path("replica.db"));
    native.execute_batch(Member::REPLICA_DDL).unwrap();
    let e = open(&dir, &native);
    let triggers = |p: &dyn Fn(&str, &[Value]) -> Vec<nanotype::Row>| -> Vec<String> {
        p(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '_nt_capture_%' ORDER BY name",
            &[],
        )
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            _ => String::new(),
        })
        .collect()
    };
    let q = |sql: &str, params: &[Value]| e.primary().query(sql, params).unwrap();
    let before = triggers(&q);
    // items: insert, update, delete; members (a unique index): those and the replace guard.
    assert_eq!(before.len(), 7, "{before:?}");
    let dropped = before
        .iter()
        .find(|t| t.contains("items_upd"))
        .unwrap()
        .clone();
    e.primary()
        .execute_batch(&format!("DROP TRIGGER \"{dropped}\""))
        .unwrap();
    // A stray trigger of a table outside the schema would stop the flush: it goes.
    e.primary()
        .execute_batch(
            "CREATE TABLE scratch (id INTEGER PRIMARY KEY);
             CREATE TRIGGER \"_nt_capture_scratch_ins_0\" AFTER INSERT ON scratch BEGIN
               INSERT INTO _nt_outbox (tbl, pk) VALUES ('scratch', NEW.id); END;",
        )
        .unwrap();
    drop(e);
    let e = open(&dir, &native);
    let q = |sql: &str, params: &[Value]| e.primary().query(sql, params).unwrap();
    assert_eq!(triggers(&q), before);
    let item = Item::insert(e.primary(), &random_item(&mut Rng::new(2), "c")).unwrap();
    let seq = outbox::current_seq(e.primary()).unwrap();
    e.primary()
        .execute(
            "UPDATE items SET n = n + 1 WHERE id = ?1",
            &[Value::Integer(item.id)],
        )
        .unwrap();
    assert_eq!(
        outbox::current_seq(e.primary()).unwrap(),
        seq + 1,
        "captured again"
    );
    e.primary()
        .execute("INSERT INTO scratch (id) VALUES (1)", &[])
        .unwrap();
    assert_eq!(
        outbox::current_seq(e.primary()).unwrap(),
        seq + 1,
        "not captured"
    );
    block(e.sync()).unwrap();
    assert_converged(e.primary(), &native, "c");
}

#[test]
fn a_bare_database_still_records_the_generated_writes() {
    // Without an engine (no triggers), the write path appends to the outbox itself.
    let dir = TempDir::new("capture-bare");
    let p = primary(&dir.path("b.db"));
    outbox::install(&p).unwrap();
    Item::insert(&p, &random_item(&mut Rng::new(3), "b")).unwrap();
    assert_eq!(outbox::current_seq(&p).unwrap(), 1);
    assert!(p.hooks().is_none(), "a bare backend has no engine hooks");
}

#[test]
fn a_raw_delete_never_frees_a_key_for_reuse() {
    let dir = TempDir::new("capture-keys");
    let native = replica(&dir.path("replica.db"));
    let e = open(&dir, &native);
    let mut rng = Rng::new(6);
    let ids: Vec<i64> = (0..3)
        .map(|_| {
            Item::insert(e.primary(), &random_item(&mut rng, "c"))
                .unwrap()
                .id
        })
        .collect();
    // The largest key deleted by raw SQL, not through `Item::delete`.
    e.primary()
        .execute("DELETE FROM items WHERE id = ?1", &[Value::Integer(ids[2])])
        .unwrap();
    let next = Item::insert(e.primary(), &random_item(&mut rng, "c")).unwrap();
    assert_eq!(
        next.id,
        ids[2] + 1,
        "the deleted key is not handed out again"
    );
}
