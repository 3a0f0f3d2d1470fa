//! A table keyed by two fields, end to end on the native backend: its DDL, the generated
//! functions (a tuple for the key), keyset pages in the room and in the replica, replication of
//! writes and of raw SQL that changes a key, a resync copied in pages, and an audit repairing a
//! tampered replica.
#![cfg(feature = "native")]

mod support;

use std::rc::Rc;

use nanotype::key::compose;
use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
use nanotype::read::ReplicaReads;
use nanotype::replica::Statement;
use nanotype::sync::{Engine, SyncConfig};
use nanotype::{outbox, Page, Primary, Value};
use support::{block, primary_rows, replica, replica_rows, TempDir};

/// Who is on which team: one row per `(team, user)`.
#[nanotype::table(name = "memberships")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    #[nanotype(primary_key)]
    pub team: i64,
    #[nanotype(index)]
    pub role: String,
    #[nanotype(primary_key)]
    pub user: String,
}

nanotype::schema!(Teams = [Membership]);

type E = Engine<NativePrimary, NativeReplica, Rc<ManualScheduler>>;

fn open(dir: &TempDir, replica: &NativeReplica) -> E {
    let p = NativePrimary::open(dir.path("room.db")).unwrap();
    if p.query(
        "SELECT 1 FROM sqlite_master WHERE name = 'memberships'",
        &[],
    )
    .unwrap()
    .is_empty()
    {
        p.execute_batch(Membership::PRIMARY_DDL).unwrap();
    }
    Engine::builder("teams")
        .schema::<Teams>()
        .replica(Some(replica.clone()))
        .config(SyncConfig {
            backfill_page: 3,
            max_changes_per_batch: 4,
            ..SyncConfig::default()
        })
        .open(p, Rc::new(ManualScheduler::new()))
        .unwrap()
}

fn drain(e: &E) {
    for _ in 0..200 {
        block(e.sync()).unwrap();
        if outbox::depth(e.primary()).unwrap() == 0 && !e.resync_in_progress().unwrap() {
            return;
        }
    }
    panic!("the outbox did not drain");
}

fn member(team: i64, user: &str, role: &str) -> Membership {
    Membership {
        team,
        user: user.to_owned(),
        role: role.to_owned(),
    }
}

fn converged(e: &E, r: &NativeReplica) {
    let def = Membership::table_def();
    assert_eq!(
        primary_rows(e.primary(), def),
        replica_rows(r, def, "teams"),
        "the replica holds the room's memberships"
    );
}

#[test]
fn the_key_is_declared_in_field_order_and_led_by_the_room_in_the_replica() {
    assert!(
        Membership::PRIMARY_DDL.contains("PRIMARY KEY (\"team\", \"user\")"),
        "{}",
        Membership::PRIMARY_DDL
    );
    assert!(
        Membership::REPLICA_DDL.contains("PRIMARY KEY (\"room_id\", \"team\", \"user\")"),
        "{}",
        Membership::REPLICA_DDL
    );
    // Neither key column is the rowid: both are NOT NULL and given by the writer.
    assert!(Membership::PRIMARY_DDL.contains("\"team\" INTEGER NOT NULL"));
    let key = nanotype::Table::key(&member(7, "ada", "x")).unwrap();
    assert_eq!(
        key,
        compose(vec![Value::Integer(7), Value::Text("ada".into())])
    );
}

#[test]
fn generated_functions_pages_and_replication_work_by_the_whole_key() {
    let dir = TempDir::new("composite");
    let r = replica(&dir.path("replica.db"));
    r.execute_batch(Membership::REPLICA_DDL).unwrap();
    let e = open(&dir, &r);
    let db = e.primary();

    // The same user on two teams, two users on one team: four rows, no conflict.
    for (team, user) in [(1, "ada"), (1, "bo"), (2, "ada"), (2, "cy"), (3, "ada")] {
        Membership::insert(db, &member(team, user, "member")).unwrap();
    }
    assert!(
        Membership::insert(db, &member(1, "ada", "again")).is_err(),
        "the whole key is unique"
    );
    let got = Membership::get(db, (1, "bo")).unwrap().unwrap();
    assert_eq!(got, member(1, "bo", "member"));
    assert_eq!(Membership::get(db, (2, "bo")).unwrap(), None);
    Membership::update(db, &member(2, "ada", "lead")).unwrap();
    Membership::upsert(db, &member(2, "cy", "lead")).unwrap();
    assert!(Membership::delete(db, (3, "ada")).unwrap());
    assert!(!Membership::delete(db, (3, "ada")).unwrap());

    // Keyset pages over the two columns, in key order.
    let mut seen = Vec::new();
    let mut page = Page::first(3);
    loop {
        let rows = Membership::list(db, &page).unwrap();
        let Some(last) = rows.last() else { break };
        page = Page::after(nanotype::Table::key(last).unwrap(), 3);
        seen.extend(rows.iter().map(|m| (m.team, m.user.clone())));
    }
    let want: Vec<(i64, String)> = [(1, "ada"), (1, "bo"), (2, "ada"), (2, "cy")]
        .iter()
        .map(|(t, u)| (*t, u.to_string()))
        .collect();
    assert_eq!(seen, want);

    drain(&e);
    converged(&e, &r);

    // Replica reads by key and by page, scoped to the room.
    let reads = ReplicaReads(r.clone());
    let one = block(Membership::room_get(&reads, "teams", (2, "ada"))).unwrap();
    assert_eq!(one, Some(member(2, "ada", "lead")));
    let after = compose(vec![Value::Integer(1), Value::Text("bo".into())]);
    let rest = block(Membership::room_list(
        &reads,
        "teams",
        &Page::after(after, 10),
    ))
    .unwrap();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(
        block(Membership::room_find_by_role(
            &reads,
            "teams",
            "lead",
            &Page::first(10)
        ))
        .unwrap()
        .len(),
        2
    );

    // The key's first column filters like an index's: one team's members.
    let team_two = block(Membership::room_find_by_team(
        &reads,
        "teams",
        2,
        &Page::first(10),
    ))
    .unwrap();
    assert_eq!(
        team_two.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(),
        ["ada", "cy"]
    );

    // Raw SQL that changes a key: the old keys leave the replica, the new ones arrive.
    db.execute(
        "UPDATE memberships SET user = user || '2' WHERE team = 1",
        &[],
    )
    .unwrap();
    db.execute(
        "UPDATE memberships SET team = 9 WHERE team = 2 AND user = 'cy'",
        &[],
    )
    .unwrap();
    drain(&e);
    converged(&e, &r);
    let keys: Vec<(i64, String)> = Membership::list(db, &Page::first(10))
        .unwrap()
        .into_iter()
        .map(|m| (m.team, m.user))
        .collect();
    assert_eq!(
        keys,
        [(1, "ada2"), (1, "bo2"), (2, "ada"), (9, "cy")]
            .iter()
            .map(|(t, u)| (*t, u.to_string()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_resync_copies_pages_and_an_audit_repairs_by_the_whole_key() {
    let dir = TempDir::new("composite-resync");
    let r = replica(&dir.path("replica.db"));
    r.execute_batch(Membership::REPLICA_DDL).unwrap();
    let e = open(&dir, &r);
    let db = e.primary();
    for team in 1..=4 {
        for user in ["ada", "bo", "cy"] {
            Membership::insert(db, &member(team, user, "member")).unwrap();
        }
    }
    drain(&e);
    // The replica loses the room; the resync copies it back three rows a page (the cursor is a
    // whole key, so pages split a team's rows).
    r.execute_batch("DELETE FROM memberships").unwrap();
    e.request_resync().unwrap();
    drain(&e);
    converged(&e, &r);

    // Tampering: a changed row, a missing one and an invented one, all found by their key.
    r.execute_batch(
        "UPDATE memberships SET role = 'tampered' WHERE team = 2 AND user = 'bo';
         DELETE FROM memberships WHERE team = 3 AND user = 'cy';
         INSERT INTO memberships (room_id, team, user, role) VALUES ('teams', 2, 'zed', 'x');",
    )
    .unwrap();
    e.request_audit();
    block(e.sync()).unwrap();
    let report = e.last_audit().expect("an audit ran");
    assert_eq!(report.divergent, 3, "{report:?}");
    converged(&e, &r);
    let stray = r
        .query_sync(&Statement::new(
            "SELECT COUNT(*) FROM memberships WHERE user = 'zed'",
            vec![],
        ))
        .unwrap();
    assert_eq!(stray[0][0], Value::Integer(0));
}
