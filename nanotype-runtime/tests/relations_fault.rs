//! The seeded fault test with relations: projects, their tasks (`ON DELETE CASCADE`), the tasks'
//! notes (cascade), a task's optional reviewer task (`SET NULL`) and its members (a composite key
//! `(task_id, user)`, cascade; renamed by raw SQL, which changes a key), written through the
//! generated functions and through raw SQL, with deletes that cascade in the room, against a
//! replica that fails batches before and after applying them, delivers old ones again, and rooms
//! restarted and resynced meanwhile. Afterwards every table of every room equals its replica, and
//! the replica's foreign keys hold.
#![cfg(feature = "native")]

mod support;

use std::rc::Rc;

use nanotype::native::{ManualScheduler, NativePrimary};
use nanotype::outbox;
use nanotype::sync::{Engine, SyncConfig};
use nanotype::{Primary, Value};
use support::{block, replica, FaultyReplica, Rng, TempDir};

#[nanotype::table(name = "projects")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Project {
    #[nanotype(primary_key)]
    pub id: i64,
    pub name: String,
}

#[nanotype::table(name = "ptasks")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PTask {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "projects.id", on_delete = "cascade", index)]
    pub project_id: i64,
    #[nanotype(references = "ptasks.id", on_delete = "set_null")]
    pub reviewer: Option<i64>,
    pub title: String,
}

#[nanotype::table(name = "pnotes")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PNote {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "ptasks.id", on_delete = "cascade")]
    pub task_id: i64,
    pub body: String,
}

/// A task's member: keyed by `(task_id, user)`.
#[nanotype::table(name = "pmembers")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PMember {
    #[nanotype(primary_key, references = "ptasks.id", on_delete = "cascade")]
    pub task_id: i64,
    #[nanotype(primary_key)]
    pub user: String,
    #[nanotype(index)]
    pub role: String,
}

// Listed children first: the engine orders them itself.
nanotype::schema!(Rel = [PMember, PNote, PTask, Project]);

/// Each table, and its key for ORDER BY.
const TABLES: [(&str, &str); 4] = [
    ("projects", "id"),
    ("ptasks", "id"),
    ("pnotes", "id"),
    ("pmembers", "task_id, user"),
];
const USERS: [&str; 4] = ["ada", "bo", "cy", "di"];

type E = Engine<NativePrimary, Rc<FaultyReplica>, Rc<ManualScheduler>>;

const ROOMS: usize = 4;
const OPS: usize = 4_000;

fn primary(path: &std::path::Path) -> NativePrimary {
    let p = NativePrimary::open(path).unwrap();
    if p.query("SELECT 1 FROM sqlite_master WHERE name = 'projects'", &[])
        .unwrap()
        .is_empty()
    {
        for ddl in [
            Project::PRIMARY_DDL,
            PTask::PRIMARY_DDL,
            PNote::PRIMARY_DDL,
            PMember::PRIMARY_DDL,
        ] {
            p.execute_batch(ddl).unwrap();
        }
    }
    p
}

fn open(dir: &TempDir, room: &str, faulty: &Rc<FaultyReplica>, config: &SyncConfig) -> E {
    Engine::builder(room)
        .schema::<Rel>()
        .replica(Some(faulty.clone()))
        .config(config.clone())
        .open(
            primary(&dir.path(&format!("{room}.db"))),
            Rc::new(ManualScheduler::new()),
        )
        .unwrap()
}

fn keys(db: &impl Primary, table: &str) -> Vec<i64> {
    db.query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .unwrap()
        .into_iter()
        .filter_map(|r| match r[0] {
            Value::Integer(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn rows(db: &impl Primary, table: &str, key: &str) -> Vec<nanotype::Row> {
    db.query(&format!("SELECT * FROM {table} ORDER BY {key}"), &[])
        .unwrap()
}

#[test]
fn relations_converge_under_faults_with_cascades_and_raw_sql() {
    let seed = std::env::var("NANOTYPE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261130u64);
    let dir = TempDir::new("relations-fault");
    let native = replica(&dir.path("replica.db"));
    for ddl in [
        Project::REPLICA_DDL,
        PTask::REPLICA_DDL,
        PNote::REPLICA_DDL,
        PMember::REPLICA_DDL,
    ] {
        native.execute_batch(ddl).unwrap();
    }
    let faulty = Rc::new(FaultyReplica::new(native.clone(), seed ^ 0x5E1));
    let config = SyncConfig {
        max_changes_per_batch: 16,
        backfill_page: 10,
        ..SyncConfig::default()
    };
    let rooms: Vec<String> = (0..ROOMS).map(|i| format!("rel-{i}")).collect();
    let mut engines: Vec<E> = rooms
        .iter()
        .map(|r| open(&dir, r, &faulty, &config))
        .collect();
    let mut rng = Rng::new(seed);
    let mut counts = [0u64; 8];
    for _ in 0..OPS {
        let i = rng.below(ROOMS as u64) as usize;
        let db = engines[i].primary();
        let projects = keys(db, "projects");
        let tasks = keys(db, "ptasks");
        let pick = |rng: &mut Rng, v: &[i64]| v[rng.below(v.len() as u64) as usize];
        match rng.below(20) {
            0..=3 => {
                Project::insert(
                    db,
                    &Project {
                        id: 0,
                        name: rng.text(12),
                    },
                )
                .unwrap();
                counts[0] += 1;
            }
            4..=9 if !projects.is_empty() => {
                let reviewer =
                    (!tasks.is_empty() && rng.chance(0.3)).then(|| pick(&mut rng, &tasks));
                let project_id = pick(&mut rng, &projects);
                PTask::insert(
                    db,
                    &PTask {
                        id: 0,
                        project_id,
                        reviewer,
                        title: rng.text(10),
                    },
                )
                .unwrap();
                counts[1] += 1;
            }
            10..=13 if !tasks.is_empty() => {
                let task_id = pick(&mut rng, &tasks);
                PNote::insert(
                    db,
                    &PNote {
                        id: 0,
                        task_id,
                        body: rng.text(20),
                    },
                )
                .unwrap();
                counts[2] += 1;
            }
            // A project deleted: its tasks and their notes go by cascade, reviewers become NULL.
            14 if !projects.is_empty() => {
                assert!(Project::delete(db, pick(&mut rng, &projects)).unwrap());
                counts[3] += 1;
            }
            // Raw SQL in the room: a bulk rename and a raw delete that cascades.
            15 if !tasks.is_empty() => {
                db.execute(
                    "UPDATE ptasks SET title = title || '!' WHERE id % 3 = ?1",
                    &[Value::Integer(rng.below(3) as i64)],
                )
                .unwrap();
                db.execute(
                    "DELETE FROM ptasks WHERE id = ?1",
                    &[Value::Integer(pick(&mut rng, &tasks))],
                )
                .unwrap();
                counts[4] += 1;
            }
            // Members: set (insert or replace) and removed by their composite key.
            16 | 17 if !tasks.is_empty() => {
                let task_id = pick(&mut rng, &tasks);
                let user = USERS[rng.below(USERS.len() as u64) as usize];
                if rng.chance(0.3) {
                    PMember::delete(db, (task_id, user)).unwrap();
                } else {
                    PMember::upsert(
                        db,
                        &PMember {
                            task_id,
                            user: user.to_owned(),
                            role: rng.text(5),
                        },
                    )
                    .unwrap();
                }
                counts[6] += 1;
            }
            // Raw SQL that changes keys: a task's members renamed (the old keys go, the new
            // ones come), and moved to another task.
            18 if !tasks.is_empty() => {
                let task_id = pick(&mut rng, &tasks);
                db.execute(
                    "UPDATE OR IGNORE pmembers SET user = user || 'x' WHERE task_id = ?1",
                    &[Value::Integer(task_id)],
                )
                .unwrap();
                db.execute(
                    "UPDATE OR IGNORE pmembers SET task_id = ?2 WHERE task_id = ?1 AND user = 'ada'",
                    &[Value::Integer(task_id), Value::Integer(pick(&mut rng, &tasks))],
                )
                .unwrap();
                counts[7] += 1;
            }
            _ => {}
        }
        if rng.chance(0.2) {
            engines[i].scheduler().take();
            let _ = block(engines[i].sync());
        }
        if rng.chance(0.003) {
            engines[i].request_resync().unwrap();
            counts[5] += 1;
        }
        let crashed = std::mem::take(&mut *faulty.crashed.borrow_mut());
        if crashed || rng.chance(0.004) {
            let j = if crashed {
                i
            } else {
                rng.below(ROOMS as u64) as usize
            };
            let scratch = open(&dir, "scratch", &faulty, &config);
            drop(std::mem::replace(&mut engines[j], scratch));
            engines[j] = open(&dir, &rooms[j], &faulty, &config);
        }
    }
    faulty.calm();
    for e in &engines {
        for _ in 0..2000 {
            block(e.sync()).unwrap();
            if outbox::depth(e.primary()).unwrap() == 0 && !e.resync_in_progress().unwrap() {
                break;
            }
        }
    }
    let conn = native.connection();
    for (i, e) in engines.iter().enumerate() {
        for (table, key) in TABLES {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT * FROM {table} WHERE room_id = ?1 ORDER BY {key}"
                ))
                .unwrap();
            let theirs: Vec<Vec<rusqlite::types::Value>> = stmt
                .query_map([&rooms[i]], |r| {
                    (1..r.as_ref().column_count())
                        .map(|k| r.get::<_, rusqlite::types::Value>(k))
                        .collect()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let ours: Vec<Vec<rusqlite::types::Value>> = rows(e.primary(), table, key)
                .into_iter()
                .map(|r| r.into_iter().map(to_sqlite).collect())
                .collect();
            assert_eq!(
                ours, theirs,
                "room {} table {table}: the replica differs",
                rooms[i]
            );
        }
    }
    let violations: usize = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
    assert_eq!(violations, 0, "the replica's foreign keys hold");
    let stats = faulty.stats.borrow();
    eprintln!(
        "relations under faults: ops {counts:?} (projects, tasks, notes, project deletes, raw SQL, resyncs, \
         members, raw key changes); \
         batches {} failed before {} after {} redelivered {}",
        stats.batches, stats.failed_before_apply, stats.failed_after_apply, stats.redelivered
    );
    assert!(
        stats.failed_before_apply + stats.failed_after_apply > 50,
        "faults were injected"
    );
    assert!(
        counts[3] > 20 && counts[4] > 20 && counts[6] > 100 && counts[7] > 20,
        "cascades, raw SQL and composite keys ran: {counts:?}"
    );
    let members: i64 = conn
        .query_row("SELECT COUNT(*) FROM pmembers", [], |r| r.get(0))
        .unwrap();
    assert!(members > 10, "members reached the replica: {members}");
}

fn to_sqlite(v: Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Integer(i) => rusqlite::types::Value::Integer(i),
        Value::Real(f) => rusqlite::types::Value::Real(f),
        Value::Text(t) => rusqlite::types::Value::Text(t),
        Value::Blob(b) => rusqlite::types::Value::Blob(b),
    }
}
