//! Part 2, replication throughput: rows per second moved into the replica by the engine's flush,
//! by a backfill (a room's first start against an empty replica) and by a resync (every row
//! copied again over a replica that has them), against
//! (a) the limit: the same rows bulk-loaded straight into the replica with the engine's
//!     multi-row statement size, one transaction per batch of the engine's batch size;
//! (b) the original design: one `INSERT OR REPLACE` per row, each its own transaction.
//! Primary and replica are files, opened as `NativePrimary::open` / `NativeReplica::open` do.

use std::path::{Path, PathBuf};

use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
use nanotype::sync::{Engine, SyncConfig};
use nanotype::{Primary, Row, Table};
use rusqlite::Connection;

use crate::item::{item, row, Item};
use crate::measure::{interleave, timed, Contender};
use crate::report::{list, Amount, Figure, Outcome, Target};
use crate::Sizes;

const ROOM: &str = "room-bench";

type BenchEngine = Engine<NativePrimary, NativeReplica, ManualScheduler>;

fn replica(path: &Path) -> NativeReplica {
    let r = NativeReplica::open(path).expect("open replica");
    r.execute_batch(nanotype::schema::ddl::REPLICA_META)
        .expect("replica meta");
    r.execute_batch(Item::REPLICA_DDL).expect("replica DDL");
    r
}

fn engine(primary: &Path, replica_path: &Path) -> BenchEngine {
    let p = NativePrimary::open(primary).expect("open primary");
    p.execute_batch(Item::PRIMARY_DDL).expect("primary DDL");
    Engine::builder(ROOM)
        .tables(vec![Item::table_def()])
        .replica(Some(replica(replica_path)))
        .open(p, ManualScheduler::new())
        .expect("engine")
}

/// Write `n` rows through the generated insert, in one transaction (setup, not timed).
fn fill(e: &BenchEngine, n: usize) {
    e.primary()
        .transaction(|| {
            for i in 0..n as u64 {
                Item::insert(e.primary(), &item(i))?;
            }
            Ok(())
        })
        .expect("fill primary");
}

fn replica_rows(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM \"items\" WHERE \"room_id\" = ?1",
        [ROOM],
        |r| r.get(0),
    )
    .expect("count replica rows")
}

/// A fresh directory per contender and round: every load starts from the same state.
struct Scratch {
    dir: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Scratch {
    fn next(&self, what: &str) -> PathBuf {
        let k = self.n.get();
        self.n.set(k + 1);
        let d = self.dir.join(format!("{what}-{k}"));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    }
}

/// Rows per multi-row statement and per transaction, as the engine sends them.
pub struct Shape {
    pub rows_per_statement: usize,
    pub rows_per_batch: usize,
}

pub fn engine_shape(config: &SyncConfig) -> Shape {
    let ncols = Item::DEF.columns.len();
    // statements.rs: three guard parameters (room, primary id, read seq) per statement.
    let rows_per_statement = (config.limits.max_params - 3) / ncols;
    Shape {
        rows_per_statement,
        rows_per_batch: config.max_changes_per_batch,
    }
}

fn columns() -> String {
    Item::DEF
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (a): multi-row INSERTs of `shape.rows_per_statement` rows (room bound once as ?1), one
/// transaction per `shape.rows_per_batch` rows.
fn bulk_load(conn: &Connection, rows: &[Row], shape: &Shape) {
    let ncols = Item::DEF.columns.len();
    let sql_for = |n: usize| {
        let tuples: Vec<String> = (0..n)
            .map(|t| {
                let ph: Vec<String> = (0..ncols)
                    .map(|c| format!("?{}", 2 + t * ncols + c))
                    .collect();
                format!("(?1, {})", ph.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO \"items\" (\"room_id\", {}) VALUES {}",
            columns(),
            tuples.join(", ")
        )
    };
    for batch in rows.chunks(shape.rows_per_batch) {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for chunk in batch.chunks(shape.rows_per_statement) {
            let mut stmt = conn.prepare_cached(&sql_for(chunk.len())).expect("prepare");
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&ROOM];
            for r in chunk {
                params.extend(r.iter().map(|v| v as &dyn rusqlite::ToSql));
            }
            stmt.execute(params.as_slice()).expect("bulk insert");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
}

/// (b): one `INSERT OR REPLACE` per row, each its own transaction.
fn per_row(conn: &Connection, rows: &[Row]) {
    let ncols = Item::DEF.columns.len();
    let ph: Vec<String> = (1..=ncols + 1).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT OR REPLACE INTO \"items\" (\"room_id\", {}) VALUES ({})",
        columns(),
        ph.join(", ")
    );
    for r in rows {
        let mut stmt = conn.prepare_cached(&sql).expect("prepare");
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&ROOM];
        params.extend(r.iter().map(|v| v as &dyn rusqlite::ToSql));
        stmt.execute(params.as_slice()).expect("per-row insert");
    }
}

pub fn run(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    let n = sizes.rows;
    let scratch = Scratch {
        dir: dir.to_path_buf(),
        n: std::cell::Cell::new(0),
    };
    let shape = engine_shape(&SyncConfig::default());
    let rows: Vec<Row> = (0..n as u64).map(|i| row(i as i64 + 1, i)).collect();
    let check = |conn: &Connection, what: &str| {
        assert_eq!(replica_rows(conn), n as i64, "{what} moved every row");
    };

    let rounds = interleave(
        sizes.rounds,
        vec![
            Contender::new("flush", || {
                let d = scratch.next("flush");
                let e = engine(&d.join("primary.db"), &d.join("replica.db"));
                pollster::block_on(e.sync()).expect("claim the room");
                fill(&e, n);
                let s = timed(|| pollster::block_on(e.sync()).expect("flush"));
                check(e.replica().unwrap().connection(), "flush");
                assert_eq!(nanotype::outbox::depth(e.primary()).unwrap(), 0);
                s
            }),
            Contender::new("backfill", || {
                let d = scratch.next("backfill");
                let e = engine(&d.join("primary.db"), &d.join("replica.db"));
                fill(&e, n);
                let s = timed(|| pollster::block_on(e.sync()).expect("backfill"));
                check(e.replica().unwrap().connection(), "backfill");
                s
            }),
            Contender::new("resync", || {
                let d = scratch.next("resync");
                let e = engine(&d.join("primary.db"), &d.join("replica.db"));
                fill(&e, n);
                pollster::block_on(e.sync()).expect("backfill");
                let s = timed(|| pollster::block_on(e.resync()).expect("resync"));
                check(e.replica().unwrap().connection(), "resync");
                s
            }),
            Contender::new("bulk", || {
                let d = scratch.next("bulk");
                let r = replica(&d.join("replica.db"));
                let s = timed(|| bulk_load(r.connection(), &rows, &shape));
                check(r.connection(), "bulk load");
                s
            }),
            Contender::new("per-row", || {
                let d = scratch.next("per-row");
                let r = replica(&d.join("replica.db"));
                let s = timed(|| per_row(r.connection(), &rows));
                check(r.connection(), "per-row replication");
                s
            }),
        ],
    );
    let _ = std::fs::remove_dir_all(dir);

    let rate = |name: &str| n as f64 / rounds.median(name);
    let raw = |name: &str| {
        format!(
            "- {name}: seconds per round: {}; median {} rows/s",
            list(rounds.of(name), 1.0),
            crate::report::number(rate(name))
        )
    };
    let how = format!(
        "{n} rows of `items` (7 columns) per round, {} rounds, contenders interleaved with the order \
         rotating; each contender starts from fresh primary/replica files every round (setup not \
         timed). The engine sends {} rows per multi-row statement (3 guard parameters + 7 per row \
         ≤ 100) and up to {} changes per batch; the bulk load uses the same statement and \
         transaction sizes; the per-row baseline commits every row on its own.\n\n{}\n{}\n{}\n{}\n{}",
        rounds.of("flush").len(),
        shape.rows_per_statement,
        shape.rows_per_batch,
        raw("flush"),
        raw("backfill"),
        raw("resync"),
        raw("bulk"),
        raw("per-row"),
    );
    let mut out = Vec::new();
    for (subject, what) in [
        ("flush", "flush of the outbox"),
        ("backfill", "backfill (first start, empty replica)"),
        ("resync", "resync over existing replica rows"),
    ] {
        out.push(Outcome::Figure(Figure {
            part: "replication",
            measure: format!("{what} vs bulk load (limit)"),
            subject: Amount::new(rate(subject), "rows/s"),
            baseline: Some((
                "bulk multi-row load".into(),
                Amount::new(rate("bulk"), "rows/s"),
            )),
            target: Target::RatioAtLeast(0.8),
            raw: how.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "replication",
            measure: format!("{what} vs per-row INSERT OR REPLACE"),
            subject: Amount::new(rate(subject), "rows/s"),
            baseline: Some((
                "per-row, own transaction".into(),
                Amount::new(rate("per-row"), "rows/s"),
            )),
            target: Target::RatioAtLeast(10.0),
            raw: how.clone(),
        }));
    }
    out
}
