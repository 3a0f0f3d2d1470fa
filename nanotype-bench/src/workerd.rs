//! Part 3, in workerd: the bench's own Worker (`nanotype-bench/worker`: the tasks example's
//! schema served by nanotype, plus the baselines) under `wrangler dev` on 127.0.0.1, driven by
//! [`crate::load`]. It is built here with worker-build.
//!
//! - Throughput of `POST /rooms/{room}/tasks` (DO insert + outbox, flushed to D1 under
//!   `wait_until`) against two baselines served by the same Worker: `POST
//!   /rooms/{room}/bench/plain` (the same insert into the DO's SQLite, no outbox, no replication)
//!   and `POST /rooms/{room}/bench/write-through` (the insert, then an awaited D1 write before
//!   the response: the original design).
//! - Replication lag at a fixed offered load: writes at a steady rate over 8 rooms; lag is the
//!   time from a write's acknowledgement until a replica read (`GET /rooms/{room}/tasks`,
//!   served by the Worker from D1) returns the row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::load::{closed_loop, open_loop, Client};
use crate::measure::{interleave, median, percentile, Contender};
use crate::report::{list, Amount, Figure, Outcome, Target};
use crate::{workspace_root, Sizes};

const ROOMS: usize = 8;
const CONNECTIONS: usize = 8;

fn skipped(reason: impl Into<String>) -> Vec<Outcome> {
    vec![Outcome::Skipped {
        part: "workerd",
        reason: reason.into(),
    }]
}

/// The bench Worker's paths, or what is missing.
pub(crate) struct Example {
    dir: PathBuf,
    wrangler: PathBuf,
    migrations: PathBuf,
}

/// Build the bench's Worker (release, into its `build/`) and find wrangler.
pub(crate) fn example(scratch: &Path) -> Result<Example, String> {
    let root = workspace_root();
    let dir = root.join("nanotype-bench/worker");
    let ex = Example {
        wrangler: root.join("examples/tasks/node_modules/.bin/wrangler"),
        migrations: root.join("migrations"),
        dir,
    };
    let tools = crate::size::tools()?;
    crate::size::build(
        &tools,
        &ex.dir,
        &ex.dir.join("build"),
        &scratch.join("bench-worker-build.log"),
    )?;
    for (p, why) in [
        (
            ex.dir.join("build/index.js"),
            "the bench Worker did not build",
        ),
        (
            ex.wrangler.clone(),
            "wrangler is not installed (run scripts/setup-tools.sh: npm ci in examples/tasks)",
        ),
        (ex.migrations.clone(), "no migrations/ folder for D1"),
    ] {
        if !p.exists() {
            return Err(format!("{why}: {} not found", p.display()));
        }
    }
    Ok(ex)
}

/// A free loopback port (bound then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The bench's wrangler config: the bench Worker's bindings and absolute paths, and its token in
/// `.dev.vars`. Written to the scratch directory, never deployed.
pub(crate) fn write_config(ex: &Example, dir: &Path) -> PathBuf {
    let base = std::fs::read_to_string(ex.dir.join("wrangler.toml")).expect("read wrangler.toml");
    let mut out = String::new();
    for line in base.lines() {
        if line.starts_with("main = ") {
            out.push_str(&format!("main = {:?}\n", ex.dir.join("build/index.js")));
        } else if line.starts_with("migrations_dir = ") {
            out.push_str(&format!("migrations_dir = {:?}\n", ex.migrations));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = dir.join("wrangler.bench.toml");
    std::fs::write(&path, out).expect("write the bench config");
    // The bench Worker's policy reads its token from this secret (`.dev.vars` beside the config).
    // Audits are off: the figures are what writes and reads cost, and a room's audit (every
    // 5 min by default) would land in some runs' counters and not others'.
    let vars = format!(
        "BENCH_TOKEN=\"{}\"\nNANOTYPE_AUDIT_INTERVAL_MS=\"0\"\n",
        crate::load::BENCH_TOKEN
    );
    std::fs::write(dir.join(".dev.vars"), vars).expect("write the bench .dev.vars");
    path
}

fn wrangler(ex: &Example, dir: &Path) -> Command {
    let mut c = Command::new(&ex.wrangler);
    let state = dir.join("xdg");
    let path = format!(
        "{}:{}",
        ex.dir.join("node_modules/.bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Offline and quiet, state in the scratch directory (as scripts/setup-tools.sh does).
    c.current_dir(dir)
        .env("PATH", path)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("XDG_CONFIG_HOME", state.join("config"))
        .env("XDG_CACHE_HOME", state.join("cache"))
        .env("XDG_DATA_HOME", state.join("data"))
        .env("WRANGLER_LOG_PATH", state.join("logs"));
    c
}

/// `wrangler dev` in its own process group, stopped (by that group's id) on drop.
pub(crate) struct Dev {
    child: Child,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(ex: &Example, dir: &Path, config: &Path, port: u16) -> Result<Dev, String> {
    use std::os::unix::process::CommandExt;
    let persist = dir.join("persist");
    let out = wrangler(ex, dir)
        .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
        .arg(&persist)
        .arg("--config")
        .arg(config)
        .output()
        .map_err(|e| format!("could not run wrangler: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "wrangler d1 migrations apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let log = std::fs::File::create(dir.join("wrangler-dev.log")).expect("log file");
    let child = wrangler(ex, dir)
        .args([
            "dev",
            "--local",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["--inspector-port", &free_port().to_string()])
        .arg("--persist-to")
        .arg(&persist)
        .arg("--config")
        .arg(config)
        .args([
            "--show-interactive-dev-session=false",
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start wrangler dev: {e}"))?;
    let dev = Dev { child };
    let t = Instant::now();
    let mut c = Client::connect(port);
    while t.elapsed() < Duration::from_mins(1) {
        if let Ok(r) = c.request("GET", "/health", None) {
            if r.status == 200 {
                return Ok(dev);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "wrangler dev did not answer /health within 60 s (log: {})",
        dir.join("wrangler-dev.log").display()
    ))
}

fn body(i: usize) -> String {
    format!("{{\"title\":\"bench task {i}\",\"status\":\"open\"}}")
}

/// The id of the task a create route returned.
fn task_id(body: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("row")?.get("id")?.as_i64()
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
    let mut out = measure(sizes, port);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    out.extend(crate::feed::measure(
        port,
        sizes.lag_writes.min(1_000),
        &stamp,
    ));
    out.extend(crate::cost::run(port, &stamp));
    // Cold start: rooms written now, `wrangler dev` restarted, then each room's first request.
    let mut c = Client::connect(port);
    for k in 0..ROOMS {
        let _ = c.request(
            "POST",
            &format!("/rooms/cold-nt-{stamp}-{k}/tasks"),
            Some(&body(k)),
        );
        let _ = c.request(
            "POST",
            &format!("/rooms/cold-plain-{stamp}-{k}/bench/plain"),
            Some(&body(k)),
        );
    }
    drop(c);
    drop(dev);
    // The old workerd lets go of the port before the new one takes it.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10)
        && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    match start(&ex, dir, &config, port) {
        Ok(dev) => {
            out.extend(cold_start(port, &stamp));
            drop(dev);
        }
        Err(why) => out.push(Outcome::Skipped {
            part: "workerd",
            reason: format!("restart for the cold start: {why}"),
        }),
    }
    out
}

/// The first request to each of [`ROOMS`] existing rooms after `wrangler dev` restarted (the
/// Durable Object instantiated; for nanotype also its migrations checked, its engine opened and
/// its backfill state read), nanotype's create against the plain insert, alternating rooms; and
/// the second request to each, warm.
fn cold_start(port: u16, stamp: &str) -> Vec<Outcome> {
    let mut c = Client::connect(port);
    let (mut cold_nt, mut cold_plain, mut warm_nt, mut warm_plain) =
        (vec![], vec![], vec![], vec![]);
    for k in 0..ROOMS {
        for (path, cold, warm) in [
            (
                format!("/rooms/cold-nt-{stamp}-{k}/tasks"),
                &mut cold_nt,
                &mut warm_nt,
            ),
            (
                format!("/rooms/cold-plain-{stamp}-{k}/bench/plain"),
                &mut cold_plain,
                &mut warm_plain,
            ),
        ] {
            for times in [&mut *cold, &mut *warm] {
                let t = Instant::now();
                if matches!(c.request("POST", &path, Some(&body(k))), Ok(r) if r.status < 300) {
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    }
    if cold_nt.is_empty() || cold_plain.is_empty() {
        return skipped("cold start: the restarted Worker did not answer");
    }
    vec![Outcome::Figure(Figure {
        part: "workerd",
        measure: "cold start: first request to a room after a restart, vs plain DO".into(),
        subject: Amount::new(median(&cold_nt), "ms"),
        baseline: Some(("plain DO".into(), Amount::new(median(&cold_plain), "ms"))),
        target: Target::RatioAtMost(1.5),
        raw: format!(
            "{ROOMS} rooms of each, written before `wrangler dev` was restarted; first request \
             after the restart, alternating. ms per room: nanotype {}; plain {}. The second request \
             (warm): nanotype median {:.1} ms, plain {:.1} ms.",
            list(&cold_nt, 1.0),
            list(&cold_plain, 1.0),
            median(&warm_nt),
            median(&warm_plain)
        ),
    })]
}

/// A route under load: its path for room `k`.
struct Route {
    name: &'static str,
    path: fn(usize) -> String,
}

const REPLICATED: Route = Route {
    name: "replicated",
    path: |k| format!("/rooms/tp-repl-{k}/tasks"),
};
const PLAIN: Route = Route {
    name: "plain",
    path: |k| format!("/rooms/tp-plain-{k}/bench/plain"),
};
/// The create route in rooms whose flush waits ten minutes (the bench Worker's
/// `sync_config`): the request path alone, no batch sent to the local D1 during the round.
const DEFERRED: Route = Route {
    name: "flush deferred",
    path: |k| format!("/rooms/tp-defer-{k}/tasks"),
};
const FEED: Route = Route {
    name: "replicated + feed",
    path: |k| format!("/rooms/tp-feed-{k}/tasks"),
};
const REPLICATED_ONE: Route = Route {
    name: "replicated, one room",
    path: |_| "/rooms/one-repl/tasks".to_string(),
};
const PLAIN_ONE: Route = Route {
    name: "plain, one room",
    path: |_| "/rooms/one-plain/bench/plain".to_string(),
};
const WT_ONE: Route = Route {
    name: "write-through, one room",
    path: |_| "/rooms/one-wt/bench/write-through".to_string(),
};

impl Route {
    fn path_for(&self, k: usize) -> String {
        (self.path)(k)
    }
}

const WRITE_THROUGH: Route = Route {
    name: "write-through",
    path: |k| format!("/rooms/tp-wt-{k}/bench/write-through"),
};

fn measure(sizes: &Sizes, port: u16) -> Vec<Outcome> {
    let mut c = Client::connect(port);
    // Warm every room (Durable Object instantiation, engine start-up) and find the routes.
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for route in [REPLICATED, FEED, PLAIN, WRITE_THROUGH, DEFERRED] {
        let mut ok = true;
        for k in 0..ROOMS {
            for i in 0..3 {
                match c.request("POST", &(route.path)(k), Some(&body(i))) {
                    Ok(r) if r.status < 300 => {}
                    Ok(r) => {
                        ok = false;
                        if route.name == "replicated" {
                            return skipped(format!(
                                "POST {} answered {}: {}",
                                (route.path)(k),
                                r.status,
                                String::from_utf8_lossy(&r.body)
                            ));
                        }
                    }
                    Err(e) => return skipped(format!("request to the Worker failed: {e}")),
                }
            }
        }
        if ok {
            present.push(route);
        } else {
            missing.push(route.name);
        }
    }

    let deadline = Duration::from_secs_f64(sizes.request_seconds);
    let rounds = interleave(
        sizes.rounds.min(5),
        present
            .iter()
            .map(|route| {
                let path = route.path;
                Contender::new(route.name, move || {
                    let run = closed_loop(port, CONNECTIONS, sizes.requests, deadline, |i| {
                        ("POST", path(i % ROOMS), Some(body(i)))
                    });
                    if run.failed > 0 {
                        eprintln!(
                            "workerd: {} requests to {} failed in a round",
                            run.failed,
                            path(0)
                        );
                    }
                    // Seconds per request, so the medians compare like the other parts.
                    if run.ok == 0 {
                        f64::INFINITY
                    } else {
                        1.0 / run.per_second()
                    }
                })
            })
            .collect(),
    );
    let rate = |name: &str| 1.0 / rounds.median(name);
    let raw_of = |name: &str| {
        format!(
            "- {name}: req/s per round: {}",
            list(
                &rounds.of(name).iter().map(|s| 1.0 / s).collect::<Vec<_>>(),
                1.0
            )
        )
    };
    let how = format!(
        "`wrangler dev --local` on 127.0.0.1; {CONNECTIONS} keep-alive connections over {ROOMS} rooms, \
         closed loop, each round at most {} requests or {} s; routes interleaved by round.\n\n{}",
        sizes.requests,
        sizes.request_seconds,
        present.iter().map(|r| raw_of(r.name)).collect::<Vec<_>>().join("\n")
    );
    let mut out = Vec::new();
    out.push(Outcome::Figure(Figure {
        part: "workerd",
        measure: "create-task with replication (absolute)".into(),
        subject: Amount::new(rate("replicated"), "req/s"),
        baseline: None,
        target: Target::None,
        raw: how.clone(),
    }));
    for (name, label, target) in [
        (
            "plain",
            "vs plain DO insert, no replication",
            Target::RatioAtLeast(0.9),
        ),
        (
            "write-through",
            "vs awaited per-write D1 write-through",
            Target::RatioAtLeast(1.4),
        ),
    ] {
        if missing.contains(&name) {
            out.push(Outcome::Skipped {
                part: "workerd",
                reason: format!(
                    "create-task {label}: the bench Worker did not answer POST /rooms/{{room}}/bench/{name}"
                ),
            });
        } else {
            out.push(Outcome::Figure(Figure {
                part: "workerd",
                measure: format!("create-task {label}"),
                subject: Amount::new(rate("replicated"), "req/s"),
                baseline: Some((name.into(), Amount::new(rate(name), "req/s"))),
                target,
                raw: how.clone(),
            }));
        }
    }
    if !missing.contains(&FEED.name) {
        out.push(Outcome::Figure(Figure {
            part: "workerd",
            measure: "create-task with the change feed on (no client) vs without".into(),
            subject: Amount::new(rate(FEED.name), "req/s"),
            baseline: Some((
                "replicated".into(),
                Amount::new(rate("replicated"), "req/s"),
            )),
            target: Target::RatioAtLeast(0.9),
            raw: how.clone(),
        }));
    }
    if !missing.contains(&DEFERRED.name) {
        out.push(Outcome::Figure(Figure {
            part: "workerd",
            measure:
                "create-task with its flush deferred past the round (no D1) vs plain DO insert"
                    .into(),
            subject: Amount::new(rate(DEFERRED.name), "req/s"),
            baseline: Some(("plain".into(), Amount::new(rate("plain"), "req/s"))),
            target: Target::None,
            raw: format!(
                "The same create route, in rooms whose replication waits ten minutes (the bench \
                 Worker's `RoomHooks::sync_config`): the request path alone, with its capture \
                 trigger and outbox row, and nothing sent to the local D1 during the round. What \
                 the replicated route loses beyond it is the flush: its batches, and the local D1 \
                 that runs them on the same CPUs (in production D1 runs elsewhere).\n\n{how}"
            ),
        }));
    }
    let lag_rate = (rate("replicated") / 2.0).max(10.0);
    out.extend(lag(sizes, port, lag_rate));
    out.extend(latency(sizes, port, rate("plain"), &mut c));
    out
}

/// Create-route latency, open loop, at 25 %, 50 % and 90 % of the plain Durable Object's
/// saturated rate, nanotype against the plain insert, on one room and on [`ROOMS`] rooms. The
/// one-room saturated rates are measured here first (closed loop), with the write-through.
fn latency(sizes: &Sizes, port: u16, plain_rate_8: f64, c: &mut Client) -> Vec<Outcome> {
    let mut out = Vec::new();
    for k in 0..1 {
        let _ = c.request("POST", &REPLICATED_ONE.path_for(k), Some(&body(0)));
        let _ = c.request("POST", &PLAIN_ONE.path_for(k), Some(&body(0)));
        let _ = c.request("POST", &WT_ONE.path_for(k), Some(&body(0)));
    }
    // One room: its saturated rates, interleaved by round.
    let deadline = Duration::from_secs_f64(sizes.request_seconds);
    let one = interleave(
        sizes.rounds.min(3),
        [&REPLICATED_ONE, &PLAIN_ONE, &WT_ONE]
            .into_iter()
            .map(|route| {
                Contender::new(route.name, move || {
                    let run = closed_loop(port, CONNECTIONS, sizes.requests, deadline, |i| {
                        ("POST", route.path_for(0), Some(body(i)))
                    });
                    if run.ok == 0 {
                        f64::INFINITY
                    } else {
                        1.0 / run.per_second()
                    }
                })
            })
            .collect(),
    );
    let one_rate = |n: &str| 1.0 / one.median(n);
    let how_one = format!(
        "One room, {CONNECTIONS} keep-alive connections, closed loop, each round at most {} requests \
         or {} s, routes interleaved by round. req/s per round: nanotype {}, plain {}, write-through {}.",
        sizes.requests,
        sizes.request_seconds,
        list(&one.of(REPLICATED_ONE.name).iter().map(|s| 1.0 / s).collect::<Vec<_>>(), 1.0),
        list(&one.of(PLAIN_ONE.name).iter().map(|s| 1.0 / s).collect::<Vec<_>>(), 1.0),
        list(&one.of(WT_ONE.name).iter().map(|s| 1.0 / s).collect::<Vec<_>>(), 1.0),
    );
    out.push(Outcome::Figure(Figure {
        part: "workerd",
        measure: "create-task on one room vs plain DO insert (saturated)".into(),
        subject: Amount::new(one_rate(REPLICATED_ONE.name), "req/s"),
        baseline: Some((
            "plain".into(),
            Amount::new(one_rate(PLAIN_ONE.name), "req/s"),
        )),
        target: Target::RatioAtLeast(0.8),
        raw: how_one.clone(),
    }));
    out.push(Outcome::Figure(Figure {
        part: "workerd",
        measure: "create-task on one room vs write-through (saturated)".into(),
        subject: Amount::new(one_rate(REPLICATED_ONE.name), "req/s"),
        baseline: Some((
            "write-through".into(),
            Amount::new(one_rate(WT_ONE.name), "req/s"),
        )),
        target: Target::None,
        raw: how_one,
    }));
    // Open loop at fractions of the plain Durable Object's saturated rate.
    for (rooms, plain_rate) in [(1usize, one_rate(PLAIN_ONE.name)), (ROOMS, plain_rate_8)] {
        for share in [0.25, 0.5, 0.9] {
            let rate = (plain_rate * share).max(5.0);
            let n = ((rate * sizes.request_seconds.min(4.0)) as usize).max(50);
            let mut lat = Vec::new();
            for route in [REPLICATED, PLAIN] {
                let run = open_loop(port, 16, n, rate, |i| {
                    let path = if rooms == 1 {
                        (route.path)(0)
                    } else {
                        (route.path)(i % rooms)
                    };
                    ("POST", path, Some(body(i)))
                });
                lat.push(run);
            }
            let (nt, plain) = (&lat[0], &lat[1]);
            let raw = format!(
                "{n} create requests offered at {rate:.0}/s ({:.0} % of the plain DO's saturated \
                 {plain_rate:.0} req/s) over {rooms} room(s), 16 connections, open loop; latency from \
                 each request's due time. nanotype p50 {:.1} / p99 {:.1} ms ({} failed, {:.0}/s done); \
                 plain p50 {:.1} / p99 {:.1} ms ({} failed, {:.0}/s done).",
                share * 100.0,
                median(&nt.latencies_ms),
                percentile(&nt.latencies_ms, 0.99),
                nt.failed,
                nt.rate,
                median(&plain.latencies_ms),
                percentile(&plain.latencies_ms, 0.99),
                plain.failed,
                plain.rate,
            );
            for (q, name, target) in [(0.5, "p50", 1.1), (0.99, "p99", 1.3)] {
                out.push(Outcome::Figure(Figure {
                    part: "latency",
                    measure: format!(
                        "create {name} at {:.0} % load, {rooms} room(s), vs plain DO",
                        share * 100.0
                    ),
                    subject: Amount::new(percentile(&nt.latencies_ms, q), "ms"),
                    baseline: Some((
                        "plain DO".into(),
                        Amount::new(percentile(&plain.latencies_ms, q), "ms"),
                    )),
                    target: if share == 0.5 {
                        Target::RatioAtMost(target)
                    } else {
                        Target::None
                    },
                    raw: raw.clone(),
                }));
            }
        }
    }
    out
}

/// Writes at `rate` (half the create route's saturated rate) over [`ROOMS`] rooms (one writer per room, paced), and
/// one replica reader per room polling for new rows.
fn lag(sizes: &Sizes, port: u16, rate: f64) -> Vec<Outcome> {
    #[allow(non_snake_case)]
    let LAG_WRITES_PER_SECOND = rate.round();
    let per_room = sizes.lag_writes.div_ceil(ROOMS);
    let interval = Duration::from_secs_f64(ROOMS as f64 / LAG_WRITES_PER_SECOND);
    // (room, id) → (acknowledged, seen in the replica)
    let acks: Mutex<HashMap<(usize, i64), Instant>> = Mutex::new(HashMap::new());
    let seen: Mutex<HashMap<(usize, i64), Instant>> = Mutex::new(HashMap::new());
    let writers_done = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    // The pollers' own load on the same CPUs, reported beside the lag it inflates.
    let reads = std::sync::atomic::AtomicUsize::new(0);
    // When the last writer finished (µs after t0): the offered rate is a target, not a given.
    let writes_end = std::sync::atomic::AtomicU64::new(0);
    let bound = Duration::from_secs_f64(per_room as f64 * interval.as_secs_f64() + 30.0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for k in 0..ROOMS {
            let (acks, writers_done, failed, writes_end) =
                (&acks, &writers_done, &failed, &writes_end);
            s.spawn(move || {
                let mut c = Client::connect(port);
                let start = Instant::now() + interval.mul_f64(k as f64 / ROOMS as f64);
                for i in 0..per_room {
                    let due = start + interval.mul_f64(i as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if t0.elapsed() > bound {
                        break;
                    }
                    match c.request("POST", &format!("/rooms/lag-{k}/tasks"), Some(&body(i))) {
                        Ok(r) if r.status < 300 => {
                            if let Some(id) = task_id(&r.body) {
                                acks.lock().unwrap().insert((k, id), Instant::now());
                            }
                        }
                        _ => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
                writes_end.fetch_max(
                    t0.elapsed().as_micros() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                writers_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            let (seen, reads) = (&seen, &reads);
            s.spawn(move || {
                let mut c = Client::connect(port);
                let mut after = 0i64;
                loop {
                    let done = writers_done.load(std::sync::atomic::Ordering::Relaxed) == ROOMS;
                    let path = format!("/rooms/lag-{k}/tasks?after={after}&limit=100");
                    if let Ok(r) = c.request("GET", &path, None) {
                        let now = Instant::now();
                        reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        if let Some(tasks) = v.get("rows").and_then(|t| t.as_array()) {
                            let mut s = seen.lock().unwrap();
                            for t in tasks {
                                if let Some(id) = t.get("id").and_then(serde_json::Value::as_i64) {
                                    s.entry((k, id)).or_insert(now);
                                    after = after.max(id);
                                }
                            }
                        }
                    }
                    let pending = {
                        let a = acks.lock().unwrap();
                        let s = seen.lock().unwrap();
                        a.keys()
                            .filter(|key| key.0 == k && !s.contains_key(key))
                            .count()
                    };
                    if (done && pending == 0) || t0.elapsed() > bound {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let reads = reads.into_inner();
    let write_seconds = writes_end.into_inner() as f64 / 1e6;
    let acks = acks.into_inner().unwrap();
    let seen = seen.into_inner().unwrap();
    let mut lags: Vec<f64> = Vec::new();
    let mut never = 0;
    for (key, ack) in &acks {
        match seen.get(key) {
            // Seen before the acknowledgement reached the driver: no lag to speak of.
            Some(s) => lags.push(s.saturating_duration_since(*ack).as_secs_f64() * 1e3),
            None => never += 1,
        }
    }
    if lags.is_empty() {
        return vec![Outcome::Skipped {
            part: "workerd",
            reason: "replication lag: no write was acknowledged and seen in the replica".into(),
        }];
    }
    let p50 = median(&lags);
    let p99 = percentile(&lags, 0.99);
    let raw = format!(
        "Offered load {LAG_WRITES_PER_SECOND} writes/s over {ROOMS} rooms ({} writes, one paced \
         writer per room); one reader per room polls the replica route (`GET \
         /rooms/{{room}}/tasks?after=<last seen>`, served by the Worker from D1) every 5 ms plus \
         its round trip, which bounds the resolution. Lag = first replica read returning the row − \
         write acknowledged. {} writes acknowledged in {write_seconds:.1} s ({:.0}/s achieved), {} \
         failed, {} never seen within the bound; \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms. The pollers made {reads} replica \
         reads in {elapsed:.1} s ({:.0}/s) on the same CPUs as the writes.",
        per_room * ROOMS,
        acks.len(),
        acks.len() as f64 / write_seconds,
        failed.into_inner(),
        never,
        p50,
        percentile(&lags, 0.9),
        p99,
        percentile(&lags, 1.0),
        reads as f64 / elapsed,
    );
    vec![
        Outcome::Figure(Figure {
            part: "workerd",
            measure: format!(
                "replication lag p50 at 50 % load ({LAG_WRITES_PER_SECOND} writes/s over {ROOMS} rooms)"
            ),
            subject: Amount::new(p50, "ms"),
            baseline: None,
            target: Target::None,
            raw: raw.clone(),
        }),
        Outcome::Figure(Figure {
            part: "workerd",
            measure: format!(
                "replication lag p99 at 50 % load ({LAG_WRITES_PER_SECOND} writes/s over {ROOMS} rooms)"
            ),
            subject: Amount::new(p99, "ms"),
            baseline: None,
            target: Target::Below(250.0),
            raw,
        }),
    ]
}
