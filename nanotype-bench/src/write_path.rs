//! Part 1, the write path: a generated `Item::insert` in a room's engine (the row and its
//! outbox record, written by the capture trigger, in one transaction) against a raw prepared
//! insert of the same row, and against the same insert on a bare database (where the write path
//! sends the outbox record as a statement of its own), each in its own SQLite file with
//! the same pragmas. Two pairs: `synchronous=FULL` (what `NativePrimary::open` uses: every
//! commit durable, the headline) and `synchronous=NORMAL` (no fsync per commit: the CPU cost of
//! the write path, where any overhead shows most).

use std::path::Path;

use nanotype::native::NativePrimary;
use rusqlite::Connection;

use crate::item::{item, Item};
use crate::measure::{interleave, timed, Contender};
use crate::report::{list, Amount, Figure, Outcome, Target};
use crate::Sizes;

const RAW_INSERT: &str = "INSERT INTO \"items\" (\"room_tag\", \"kind\", \"n\", \"score\", \"note\", \"data\") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

fn open(path: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("open bench database");
    // The pragmas of `NativePrimary::open`, with the synchronous mode under test.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA busy_timeout=5000;"
    ))
    .expect("pragmas");
    conn.execute_batch(Item::PRIMARY_DDL).expect("items DDL");
    conn
}

fn pair(
    dir: &Path,
    synchronous: &'static str,
    writes: usize,
    rounds: usize,
    headline: bool,
) -> Vec<Figure> {
    let primary = NativePrimary::from_connection(open(
        &dir.join(format!("generated-{synchronous}.db")),
        synchronous,
    ));
    nanotype::outbox::install(&primary).expect("outbox");
    // The same insert in a room's engine: its capture triggers record the change inside the
    // insert statement, where the bare database above sends a second statement.
    let engine: nanotype::sync::Engine<NativePrimary, nanotype::native::NativeReplica, _> =
        nanotype::sync::Engine::builder("bench")
            .tables(vec![Item::table_def()])
            .open(
                NativePrimary::from_connection(open(
                    &dir.join(format!("room-{synchronous}.db")),
                    synchronous,
                )),
                std::rc::Rc::new(nanotype::native::ManualScheduler::new()),
            )
            .expect("engine");
    let room = engine.primary();
    let raw = open(&dir.join(format!("raw-{synchronous}.db")), synchronous);
    raw.set_prepared_statement_cache_capacity(16);

    // Warm both: statement caches, page cache, WAL file created.
    let mut next = 0u64;
    for _ in 0..20 {
        Item::insert(&primary, &item(next)).expect("insert");
        Item::insert(room, &item(next)).expect("insert");
        raw_insert(&raw, &item(next));
        next += 1;
    }
    let start = std::cell::Cell::new(next);
    let rounds = interleave(
        rounds,
        vec![
            Contender::new("generated", || {
                let first = start.get();
                let s = timed(|| {
                    for i in first..first + writes as u64 {
                        Item::insert(&primary, &item(i)).expect("generated insert");
                    }
                });
                start.set(first + writes as u64);
                s
            }),
            Contender::new("room", || {
                let first = start.get();
                let s = timed(|| {
                    for i in first..first + writes as u64 {
                        Item::insert(room, &item(i)).expect("insert in a room");
                    }
                });
                start.set(first + writes as u64);
                s
            }),
            Contender::new("raw", || {
                let first = start.get();
                let s = timed(|| {
                    for i in first..first + writes as u64 {
                        raw_insert(&raw, &item(i));
                    }
                });
                start.set(first + writes as u64);
                s
            }),
        ],
    );
    // Both wrote the same rows, and every generated write left its outbox record.
    let outbox = nanotype::outbox::depth(&primary).expect("outbox depth");
    let raw_rows: i64 = raw
        .query_row("SELECT COUNT(*) FROM \"items\"", [], |r| r.get(0))
        .expect("count");
    assert_eq!(outbox, raw_rows, "one outbox record per generated write");
    let room_outbox = nanotype::outbox::depth(room).expect("outbox depth");
    assert_eq!(
        room_outbox, raw_rows,
        "one trigger record per write in the room"
    );

    let per = 1e6 / writes as f64;
    let g = rounds.median("generated") * per;
    let r = rounds.median("raw") * per;
    let t = rounds.median("room") * per;
    let capture = Figure {
        part: "write",
        measure: format!(
            "insert in a room (capture trigger) vs with its own outbox statement, synchronous={synchronous}"
        ),
        subject: Amount::new(t, "µs/write"),
        baseline: Some(("outbox statement".into(), Amount::new(g, "µs/write"))),
        target: Target::None,
        raw: format!(
            "The same rounds: `Item::insert` on a room's engine (the outbox record written by the \
             table's AFTER INSERT trigger, inside the insert) against `Item::insert` on a bare \
             database (the write path's own outbox INSERT).\n\n\
             - on a bare database µs/write per round: {}",
            list(rounds.of("generated"), per)
        ),
    };
    let headline_figure = Figure {
        part: "write",
        measure: format!(
            "generated insert in a room vs raw prepared insert, WAL synchronous={synchronous}{}",
            if headline { " (headline)" } else { "" }
        ),
        subject: Amount::new(t, "µs/write"),
        baseline: Some(("raw insert".into(), Amount::new(r, "µs/write"))),
        // The targets: 1.2× with an fsync per commit, 1.3× without.
        target: Target::RatioAtMost(if headline { 1.2 } else { 1.3 }),
        raw: format!(
            "{} rounds of {writes} single-row inserts each, interleaved (order rotating), each \
             insert its own transaction; file-backed SQLite, journal_mode=WAL, \
             synchronous={synchronous}.\n\n\
             - generated `Item::insert` in a room (its engine's capture trigger records the \
             change) µs/write per round: {}\n\
             - raw prepared `INSERT` µs/write per round: {}\n\
             - medians: {:.2} vs {:.2} µs/write",
            rounds.of("raw").len(),
            list(rounds.of("room"), per),
            list(rounds.of("raw"), per),
            t,
            r
        ),
    };
    vec![headline_figure, capture]
}

fn raw_insert(conn: &Connection, it: &Item) {
    let mut stmt = conn.prepare_cached(RAW_INSERT).expect("prepare");
    stmt.execute(rusqlite::params![
        it.room_tag,
        it.kind,
        it.n,
        it.score,
        it.note,
        it.data
    ])
    .expect("raw insert");
}

pub fn run(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    pair(dir, "FULL", sizes.durable_writes, sizes.rounds, true)
        .into_iter()
        .chain(pair(dir, "NORMAL", sizes.writes, sizes.rounds, false))
        .map(Outcome::Figure)
        .collect()
}
