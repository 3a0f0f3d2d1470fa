//! Shared pieces of the engine tests: a seeded PRNG, a replica that injects faults, rooms on
//! files that can be restarted, and a replica == primary comparison.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
use nanotype::sync::{Engine, SyncConfig};
use nanotype::{Primary, Replica, Result, Row, Statement, Table, Value};

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn text(&mut self, max: usize) -> String {
        const PARTS: &[&str] = &[
            "a",
            "Z",
            "é",
            "日本",
            "🦀",
            "'",
            "\"",
            "); DROP TABLE items; --",
            " ",
            "\\",
            "%",
        ];
        let n = self.below(max as u64 + 1) as usize;
        (0..n)
            .map(|_| PARTS[self.below(PARTS.len() as u64) as usize])
            .collect()
    }
}

#[nanotype::table(name = "items", index(kind, n))]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    #[nanotype(primary_key)]
    pub id: i64,
    /// The room the row was written in: lets isolation tests check every row they read.
    #[nanotype(index)]
    pub room_tag: String,
    pub kind: String,
    pub n: i64,
    pub score: f64,
    pub note: Option<String>,
    pub data: Vec<u8>,
}

#[nanotype::table(name = "tags")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    #[nanotype(primary_key)]
    pub name: String,
    pub room_tag: String,
    pub count: i64,
}

pub fn tables() -> Vec<&'static nanotype::schema::Table> {
    vec![Item::table_def(), Tag::table_def()]
}

/// How a batch fares in the faulty replica.
#[derive(Default, Debug, Clone)]
pub struct FaultStats {
    pub batches: u64,
    pub failed_before_apply: u64,
    pub failed_after_apply: u64,
    pub redelivered: u64,
    pub crash_points: u64,
    pub failed_reads: u64,
    pub max_params_seen: usize,
    pub max_statements_seen: usize,
    pub rows_upserted: u64,
}

/// A replica that fails batches before or after applying them, delivers old batches again, and
/// can ask the test to crash the primary right after a batch applied (before the outbox trim).
pub struct FaultyReplica {
    pub inner: NativeReplica,
    pub rng: RefCell<Rng>,
    pub fail_before: f64,
    pub fail_after: f64,
    pub redeliver: f64,
    pub crash: f64,
    pub read_fail: f64,
    pub held: RefCell<Vec<Vec<Statement>>>,
    pub stats: RefCell<FaultStats>,
    /// Set when a crash point was hit: the test restarts the primary.
    pub crashed: RefCell<bool>,
    pub enabled: RefCell<bool>,
    /// When set, only this many more batches succeed; after that every batch fails before
    /// applying (a replica that goes away half-way).
    pub budget: RefCell<Option<u64>>,
}

impl FaultyReplica {
    pub fn new(inner: NativeReplica, seed: u64) -> FaultyReplica {
        FaultyReplica {
            inner,
            rng: RefCell::new(Rng::new(seed)),
            fail_before: 0.17,
            fail_after: 0.15,
            redeliver: 0.15,
            crash: 0.03,
            read_fail: 0.1,
            held: RefCell::new(Vec::new()),
            stats: RefCell::new(FaultStats::default()),
            crashed: RefCell::new(false),
            enabled: RefCell::new(true),
            budget: RefCell::new(None),
        }
    }

    pub fn calm(&self) {
        *self.enabled.borrow_mut() = false;
    }
}

impl Replica for FaultyReplica {
    async fn query(&self, stmt: &Statement) -> Result<Vec<Row>> {
        if *self.enabled.borrow() && self.rng.borrow_mut().chance(self.read_fail) {
            self.stats.borrow_mut().failed_reads += 1;
            return Err(nanotype::Error::Replica("injected read failure".into()));
        }
        self.inner.query_sync(stmt)
    }

    async fn batch(&self, stmts: &[Statement]) -> Result<Vec<Vec<Row>>> {
        {
            let mut st = self.stats.borrow_mut();
            st.batches += 1;
            st.max_statements_seen = st.max_statements_seen.max(stmts.len());
            for s in stmts {
                st.max_params_seen = st.max_params_seen.max(s.params.len());
                assert!(
                    s.params.len() <= 100,
                    "a statement binds {} parameters (D1 allows 100)",
                    s.params.len()
                );
                assert!(
                    s.sql.len() <= 100_000,
                    "a statement is {} bytes (D1 allows 100 KB)",
                    s.sql.len()
                );
            }
        }
        if let Some(left) = self.budget.borrow_mut().as_mut() {
            if *left == 0 {
                self.stats.borrow_mut().failed_before_apply += 1;
                return Err(nanotype::Error::Replica("injected outage".into()));
            }
            *left -= 1;
        }
        let enabled = *self.enabled.borrow();
        if enabled {
            // An old batch arrives again, late.
            let redeliver = {
                let mut rng = self.rng.borrow_mut();
                let held = self.held.borrow();
                if !held.is_empty() && rng.chance(self.redeliver) {
                    Some(held[rng.below(held.len() as u64) as usize].clone())
                } else {
                    None
                }
            };
            if let Some(old) = redeliver {
                self.stats.borrow_mut().redelivered += 1;
                let _ = self.inner.batch_sync(&old);
            }
            if self.rng.borrow_mut().chance(0.2) {
                let mut held = self.held.borrow_mut();
                if held.len() > 64 {
                    held.remove(0);
                }
                held.push(stmts.to_vec());
            }
            if self.rng.borrow_mut().chance(self.fail_before) {
                self.stats.borrow_mut().failed_before_apply += 1;
                return Err(nanotype::Error::Replica(
                    "injected failure before apply".into(),
                ));
            }
        }
        let out = self.inner.batch_sync(stmts)?;
        // Rows that reached the replica (applied), whatever the acknowledgement then says.
        self.stats.borrow_mut().rows_upserted += stmts
            .iter()
            .filter(|s| {
                s.sql.starts_with("INSERT INTO \"items\"")
                    || s.sql.starts_with("INSERT INTO \"tags\"")
            })
            .map(|s| s.sql.matches("(?1,").count() as u64)
            .sum::<u64>();
        if enabled {
            let mut rng = self.rng.borrow_mut();
            if rng.chance(self.crash) {
                self.stats.borrow_mut().crash_points += 1;
                *self.crashed.borrow_mut() = true;
                return Err(nanotype::Error::Replica(
                    "injected crash after apply".into(),
                ));
            }
            if rng.chance(self.fail_after) {
                self.stats.borrow_mut().failed_after_apply += 1;
                return Err(nanotype::Error::Replica(
                    "injected failure after apply, before acknowledgement".into(),
                ));
            }
        }
        Ok(out)
    }
}

/// A fresh shared replica with the engine's table and the test tables.
pub fn replica(path: &Path) -> NativeReplica {
    let r = NativeReplica::open(path).unwrap();
    r.execute_batch(nanotype::schema::ddl::REPLICA_META)
        .unwrap();
    r.execute_batch(Item::REPLICA_DDL).unwrap();
    r.execute_batch(Tag::REPLICA_DDL).unwrap();
    r
}

/// A room's primary file, migrated.
pub fn primary(path: &Path) -> NativePrimary {
    let p = NativePrimary::open(path).unwrap();
    let exists = !p
        .query("SELECT 1 FROM sqlite_master WHERE name = 'items'", &[])
        .unwrap()
        .is_empty();
    if !exists {
        p.execute_batch(Item::PRIMARY_DDL).unwrap();
        p.execute_batch(Tag::PRIMARY_DDL).unwrap();
    }
    p
}

pub type TestEngine<R> = Engine<NativePrimary, R, Rc<ManualScheduler>>;

pub fn engine<R: Replica>(
    path: &Path,
    replica: R,
    room: &str,
    config: SyncConfig,
) -> (TestEngine<R>, Rc<ManualScheduler>) {
    let sched = Rc::new(ManualScheduler::new());
    let e = Engine::builder(room)
        .tables(tables())
        .replica(Some(replica))
        .config(config)
        .open(primary(path), sched.clone())
        .unwrap();
    (e, sched)
}

/// A temporary directory (the `tempfile` crate's), removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("nanotype-{name}-"))
                .tempdir()
                .unwrap(),
        )
    }
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.path().join(file)
    }
}

/// Every row of a table in the primary, by key.
pub fn primary_rows<P: Primary>(db: &P, def: &nanotype::schema::Table) -> Vec<Row> {
    let sql = &nanotype::table::TableSql::new(def);
    db.query(&format!("{} ORDER BY {}", sql.select, sql.key_columns), &[])
        .unwrap()
}

/// Every row of a table in the replica for one room, by key.
pub fn replica_rows(r: &NativeReplica, def: &nanotype::schema::Table, room: &str) -> Vec<Row> {
    let sql = &nanotype::table::TableSql::new(def);
    r.query_sync(&Statement::new(
        format!("{} ORDER BY {}", sql.replica_select, sql.key_columns),
        vec![Value::Text(room.into())],
    ))
    .unwrap()
}

/// Assert the replica holds exactly the primary's rows for `room`.
pub fn assert_converged<P: Primary>(db: &P, r: &NativeReplica, room: &str) {
    for def in tables() {
        let p = primary_rows(db, def);
        let q = replica_rows(r, def, room);
        assert_eq!(
            p.len(),
            q.len(),
            "room {room} table {}: {} rows in the primary, {} in the replica",
            def.name,
            p.len(),
            q.len()
        );
        for (a, b) in p.iter().zip(&q) {
            assert_eq!(a, b, "room {room} table {}", def.name);
        }
    }
}

pub fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// A random item for `room`.
pub fn random_item(rng: &mut Rng, room: &str) -> Item {
    Item {
        id: 0,
        room_tag: room.to_owned(),
        kind: ["a", "b", "c"][rng.below(3) as usize].to_owned(),
        n: rng.below(1 << 40) as i64 - (1 << 39),
        score: (rng.below(1_000_000) as f64) / 7.0,
        note: if rng.chance(0.3) {
            None
        } else {
            Some(rng.text(6))
        },
        data: (0..rng.below(12)).map(|_| rng.below(256) as u8).collect(),
    }
}

/// Keep a clone of a table's rows in memory: the independent record of what the room holds.
pub fn items_of<P: Primary>(db: &P) -> Vec<Item> {
    primary_rows(db, Item::table_def())
        .into_iter()
        .map(|r| Item::from_row(r).unwrap())
        .collect()
}
