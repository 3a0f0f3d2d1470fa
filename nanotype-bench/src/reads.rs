//! Part `reads`, in workerd: where a room's reads should go, measured. The bench Worker under
//! `wrangler dev` (one local D1, no read replicas), rooms of 50 tasks each:
//!
//! - a room listing (`GET /rooms/{room}/tasks?limit=50`) from D1 (`consistency=replica`, the
//!   gateway's one D1 batch: the room's `_nt_rooms` row and the page) against the room's Durable
//!   Object (`consistency=strong`: a request to the object, one SQLite query), over 1, 8 and 64
//!   rooms, with one client and with eight: reads/s and latency p50/p99;
//! - a page across rooms (`GET /_across/tasks?limit=50`) against a room listing of the same size
//!   from D1;
//! - the cost of finding a room's shard (rendezvous hashing over the shard names), natively.
//!
//! Rows read per read are counted on paper in `docs/scaling.md` (local D1 reports no meta to the
//! client).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::load::Client;
use crate::measure::{median, percentile};
use crate::report::{Amount, Figure, Outcome, Target};
use crate::workerd::{example, free_port, start, write_config};
use crate::Sizes;

const ROOM_ROWS: usize = 50;
const MAX_ROOMS: usize = 64;
/// How a body answered from D1 says so.
const REPLICA_SOURCE: &[u8] = b"\"source\":\"replica\"";

fn skipped(reason: impl Into<String>) -> Vec<Outcome> {
    vec![Outcome::Skipped {
        part: "reads",
        reason: reason.into(),
    }]
}

/// What a closed-loop read run did: reads/s, each read's latency (ms), and how many answers
/// came from where.
struct Reads {
    per_second: f64,
    latencies: Vec<f64>,
    from_replica: usize,
    failed: usize,
}

fn closed_loop(
    port: u16,
    clients: usize,
    requests: usize,
    deadline: Duration,
    path: &(dyn Fn(usize) -> String + Sync),
) -> Reads {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let per_client: Vec<(Vec<f64>, usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::connect(port);
                    let (mut lat, mut replica, mut failed) = (Vec::new(), 0, 0);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= requests || start.elapsed() > deadline {
                            break;
                        }
                        let t = Instant::now();
                        match c.request("GET", &path(i), None) {
                            Ok(r) if r.status == 200 => {
                                lat.push(t.elapsed().as_secs_f64() * 1e3);
                                if r.body
                                    .windows(REPLICA_SOURCE.len())
                                    .any(|w| w == REPLICA_SOURCE)
                                {
                                    replica += 1;
                                }
                            }
                            _ => failed += 1,
                        }
                    }
                    (lat, replica, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let (mut from_replica, mut failed) = (0, 0);
    for (l, r, f) in per_client {
        latencies.extend(l);
        from_replica += r;
        failed += f;
    }
    Reads {
        per_second: latencies.len() as f64 / seconds,
        latencies,
        from_replica,
        failed,
    }
}

pub fn run(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    let ex = match example(dir) {
        Ok(e) => e,
        Err(why) => return skipped(why),
    };
    let config = write_config(&ex, dir);
    let port = free_port();
    let dev = match start(&ex, dir, &config, port) {
        Ok(d) => d,
        Err(why) => return skipped(why),
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let room = move |k: usize| format!("rd-{stamp}-{k}");
    // Seed: every room its rows, then wait until D1 has them (a replica answer for each room).
    let mut c = Client::connect(port);
    for k in 0..MAX_ROOMS {
        for i in 0..ROOM_ROWS {
            let body = format!("{{\"title\":\"read bench {k} {i}\"}}");
            match c.request("POST", &format!("/rooms/{}/tasks", room(k)), Some(&body)) {
                Ok(r) if r.status == 201 => {}
                Ok(r) => return skipped(format!("seeding answered {}", r.status)),
                Err(e) => return skipped(format!("seeding failed: {e}")),
            }
        }
    }
    let t = Instant::now();
    for k in 0..MAX_ROOMS {
        loop {
            let r = c.request("GET", &format!("/rooms/{}/tasks?limit=50", room(k)), None);
            let full = r
                .ok()
                .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                .is_some_and(|v| {
                    v["source"] == "replica"
                        && v["rows"]
                            .as_array()
                            .is_some_and(|rows| rows.len() >= ROOM_ROWS)
                });
            if full {
                break;
            }
            if t.elapsed() > Duration::from_mins(2) {
                return skipped("D1 did not have the seeded rows within 2 minutes");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(c);

    let requests = if sizes.quick { 300 } else { 3_000 };
    let deadline = Duration::from_secs_f64(sizes.request_seconds.min(10.0));
    let rounds = if sizes.quick { 1 } else { 3 };
    let mut out = Vec::new();
    for rooms in [1usize, 8, 64] {
        for clients in [1usize, 8] {
            let mut replica_runs = Vec::new();
            let mut strong_runs = Vec::new();
            for round in 0..rounds {
                let replica = |i: usize| format!("/rooms/{}/tasks?limit=50", room(i % rooms));
                let strong = |i: usize| {
                    format!(
                        "/rooms/{}/tasks?limit=50&consistency=strong",
                        room(i % rooms)
                    )
                };
                // Alternate which goes first.
                if round % 2 == 0 {
                    replica_runs.push(closed_loop(port, clients, requests, deadline, &replica));
                    strong_runs.push(closed_loop(port, clients, requests, deadline, &strong));
                } else {
                    strong_runs.push(closed_loop(port, clients, requests, deadline, &strong));
                    replica_runs.push(closed_loop(port, clients, requests, deadline, &replica));
                }
            }
            out.push(figure(
                format!("room listing (50 rows), {rooms} room(s), {clients} client(s): D1 vs the Durable Object"),
                &replica_runs,
                &strong_runs,
            ));
        }
    }
    // A page across rooms against a room listing of the same size, both from D1.
    let mut across_runs = Vec::new();
    let mut listing_runs = Vec::new();
    for _ in 0..rounds {
        across_runs.push(closed_loop(port, 1, requests / 2, deadline, &|_| {
            "/_across/tasks?limit=50".to_string()
        }));
        listing_runs.push(closed_loop(port, 1, requests / 2, deadline, &|i| {
            format!("/rooms/{}/tasks?limit=50", room(i % MAX_ROOMS))
        }));
    }
    out.push(figure(
        "page across rooms (50 rows, /_across/tasks: one D1 query) vs a room listing, both from D1, one client".into(),
        &across_runs,
        &listing_runs,
    ));
    drop(dev);
    out.push(shard_cost());
    out
}

/// reads/s of `subject` against `baseline` (medians of rounds), with latencies in the raw text.
fn figure(measure: String, subject: &[Reads], baseline: &[Reads]) -> Outcome {
    let rate = |runs: &[Reads]| median(&runs.iter().map(|r| r.per_second).collect::<Vec<_>>());
    let lat = |runs: &[Reads], p: f64| {
        let all: Vec<f64> = runs
            .iter()
            .flat_map(|r| r.latencies.iter().copied())
            .collect();
        percentile(&all, p)
    };
    let count = |runs: &[Reads]| runs.iter().map(|r| r.latencies.len()).sum::<usize>();
    let replica = |runs: &[Reads]| runs.iter().map(|r| r.from_replica).sum::<usize>();
    let failed = |runs: &[Reads]| runs.iter().map(|r| r.failed).sum::<usize>();
    let raw = format!(
        "subject p50 {:.2} ms, p99 {:.2} ms, {} reads ({} from D1, {} failed); baseline p50 {:.2} ms, p99 {:.2} ms, {} reads ({} from D1, {} failed); per-round reads/s {:?} vs {:?}",
        lat(subject, 0.5),
        lat(subject, 0.99),
        count(subject),
        replica(subject),
        failed(subject),
        lat(baseline, 0.5),
        lat(baseline, 0.99),
        count(baseline),
        replica(baseline),
        failed(baseline),
        subject.iter().map(|r| r.per_second.round()).collect::<Vec<_>>(),
        baseline.iter().map(|r| r.per_second.round()).collect::<Vec<_>>(),
    );
    Outcome::Figure(Figure {
        part: "reads",
        measure,
        subject: Amount::new(rate(subject), "reads/s"),
        baseline: Some(("baseline".into(), Amount::new(rate(baseline), "reads/s"))),
        target: Target::None,
        raw,
    })
}

/// Finding a room's shard: rendezvous hashing over three names against over one.
fn shard_cost() -> Outcome {
    let one = nanotype::Shards::new(["DB"]);
    let three = nanotype::Shards::new(["DB", "DB_1", "DB_2"]);
    let rooms: Vec<String> = (0..10_000).map(|i| format!("room-{i}")).collect();
    let time = |s: &nanotype::Shards| {
        let t = Instant::now();
        let mut n = 0usize;
        for _ in 0..20 {
            for r in &rooms {
                n += s.home(r).len();
            }
        }
        std::hint::black_box(n);
        t.elapsed().as_secs_f64() * 1e9 / (20.0 * rooms.len() as f64)
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        b.push(time(&one));
        a.push(time(&three));
    }
    Outcome::Figure(Figure {
        part: "reads",
        measure: "finding a room's shard (its home by rendezvous hashing, natively): 3 shards vs 1".into(),
        subject: Amount::new(median(&a), "ns/room"),
        baseline: Some(("1 shard".into(), Amount::new(median(&b), "ns/room"))),
        target: Target::None,
        raw: format!("rounds (ns): 3 shards {a:.1?}, 1 shard {b:.1?}; a cached room away from home adds one hash-map lookup"),
    })
}
