//! Part 3b, in workerd (the same `wrangler dev` as [`crate::workerd`]): the change feed.
//!
//! - Delivery latency: writes at a steady rate to one room while WebSocket clients of its feed
//!   (`GET /rooms/{room}/_feed`) receive them; latency is from the write request's start to a
//!   client's receipt (an upper bound of commit to client: the request's own trip is in it),
//!   against the write's HTTP round trip measured on the same writes (the baseline: what a
//!   client polling with the same request would need at best).
//! - Clients held: a room filled to its `max_clients` (256); each gets every change; one more
//!   is turned away with close code 4029.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::load::{Client, BENCH_TOKEN};
use crate::measure::percentile;
use crate::report::{Amount, Figure, Outcome, Target};

/// Offered write rate of the latency measurement.
const WRITES_PER_SECOND: f64 = 100.0;
/// The feed's default `max_clients`.
const MAX_CLIENTS: usize = 256;

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(port: u16, room: &str) -> Result<Socket, String> {
    let url = format!("ws://127.0.0.1:{port}/rooms/{room}/_feed?since=0");
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("nanotype, bearer.{BENCH_TOKEN}")
            .parse()
            .map_err(|_| "header".to_string())?,
    );
    let (mut ws, _) = tungstenite::connect(req).map_err(|e| format!("feed connect: {e}"))?;
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
        let _ = s.set_nodelay(true);
    }
    Ok(ws)
}

/// Read until `last` is received (or the socket ends); each change's receipt time by seq.
/// Acknowledges every 100 changes, as the served client does.
fn receive(ws: &mut Socket, last: i64) -> (HashMap<i64, Instant>, Option<u16>) {
    let mut got = HashMap::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let now = Instant::now();
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if v["type"] == "change" {
                    let seq = v["seq"].as_i64().unwrap_or(0);
                    got.insert(seq, now);
                    if seq % 100 == 0 {
                        let ack = format!(r#"{{"type":"ack","seq":{seq}}}"#);
                        let _ = ws.send(Message::text(ack));
                    }
                    if seq >= last {
                        return (got, None);
                    }
                }
            }
            Ok(Message::Close(frame)) => return (got, frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(_) => return (got, None),
        }
    }
}

/// One latency run: `clients` subscribers of a fresh room, `writes` paced writes.
struct Run {
    latencies: Vec<f64>,
    round_trips: Vec<f64>,
    complete: usize,
    rate: f64,
}

fn run(port: u16, room: &str, clients: usize, writes: usize) -> Result<Run, String> {
    let mut sockets = Vec::new();
    for _ in 0..clients {
        sockets.push(connect(port, room)?);
    }
    let sent: Mutex<HashMap<i64, (Instant, f64)>> = Mutex::new(HashMap::new());
    let received: Mutex<Vec<HashMap<i64, Instant>>> = Mutex::new(Vec::new());
    let interval = Duration::from_secs_f64(1.0 / WRITES_PER_SECOND);
    let mut rate = 0.0;
    std::thread::scope(|s| {
        for mut ws in sockets {
            let received = &received;
            s.spawn(move || {
                let (got, _) = receive(&mut ws, writes as i64);
                received.lock().unwrap().push(got);
                let _ = ws.close(None);
            });
        }
        let mut c = Client::connect(port);
        let t0 = Instant::now();
        for i in 0..writes {
            if let Some(wait) =
                (t0 + interval.mul_f64(i as f64)).checked_duration_since(Instant::now())
            {
                std::thread::sleep(wait);
            }
            let start = Instant::now();
            let body = format!(r#"{{"title":"feed {i}","status":"todo"}}"#);
            if let Ok(r) = c.request("POST", &format!("/rooms/{room}/tasks"), Some(&body)) {
                let rt = start.elapsed().as_secs_f64() * 1e3;
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if let Some(seq) = v["seq"].as_i64() {
                    sent.lock().unwrap().insert(seq, (start, rt));
                }
            }
        }
        rate = writes as f64 / t0.elapsed().as_secs_f64();
    });
    let sent = sent.into_inner().unwrap();
    let received = received.into_inner().unwrap();
    let mut latencies = Vec::new();
    let mut complete = 0;
    for got in &received {
        if (1..=writes as i64).all(|seq| got.contains_key(&seq)) {
            complete += 1;
        }
        for (seq, at) in got {
            if let Some((start, _)) = sent.get(seq) {
                latencies.push(at.duration_since(*start).as_secs_f64() * 1e3);
            }
        }
    }
    Ok(Run {
        latencies,
        round_trips: sent.values().map(|(_, rt)| *rt).collect(),
        complete,
        rate,
    })
}

/// The feed's figures.
pub fn measure(port: u16, writes: usize, stamp: &str) -> Vec<Outcome> {
    let mut out = Vec::new();
    for clients in [1usize, 32] {
        let room = format!("feed-lat{clients}-{stamp}");
        match run(port, &room, clients, writes) {
            Ok(r) => {
                let p = |xs: &[f64], q: f64| percentile(xs, q);
                let raw = format!(
                    "{writes} writes offered at {WRITES_PER_SECOND}/s (achieved {:.0}/s) to one room, \
                     {clients} feed client(s) on 127.0.0.1; latency = write request start → change \
                     received; baseline = the same writes' HTTP round trip.\n\n- latency ms p50 {:.1}, \
                     p99 {:.1}, max {:.1}\n- round trip ms p50 {:.1}, p99 {:.1}\n- clients with every \
                     change, once: {}/{clients}",
                    r.rate,
                    p(&r.latencies, 0.5),
                    p(&r.latencies, 0.99),
                    r.latencies.iter().copied().fold(0.0, f64::max),
                    p(&r.round_trips, 0.5),
                    p(&r.round_trips, 0.99),
                    r.complete
                );
                for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
                    out.push(Outcome::Figure(Figure {
                        part: "feed",
                        measure: format!(
                            "feed delivery {name}, {clients} client(s), vs the write's round trip"
                        ),
                        subject: Amount::new(p(&r.latencies, q), "ms"),
                        baseline: Some((
                            "HTTP round trip".into(),
                            Amount::new(p(&r.round_trips, q), "ms"),
                        )),
                        target: Target::None,
                        raw: raw.clone(),
                    }));
                }
                if r.complete != clients {
                    out.push(Outcome::Skipped {
                        part: "feed",
                        reason: format!(
                            "only {}/{clients} clients received every change",
                            r.complete
                        ),
                    });
                }
            }
            Err(why) => out.push(Outcome::Skipped {
                part: "feed",
                reason: why,
            }),
        }
    }
    out.push(held(port, stamp));
    out
}

/// Fill a room to [`MAX_CLIENTS`], write 20 changes, count the clients that got all 20; one
/// more client is refused.
fn held(port: u16, stamp: &str) -> Outcome {
    let room = format!("feed-held-{stamp}");
    let mut sockets = Vec::new();
    for _ in 0..MAX_CLIENTS {
        match connect(port, &room) {
            Ok(ws) => sockets.push(ws),
            Err(why) => {
                return Outcome::Skipped {
                    part: "feed",
                    reason: why,
                }
            }
        }
    }
    let extra = connect(port, &room).map(|mut ws| receive(&mut ws, 1).1);
    let complete = Mutex::new(0usize);
    std::thread::scope(|s| {
        for mut ws in sockets {
            let complete = &complete;
            s.spawn(move || {
                let (got, _) = receive(&mut ws, 20);
                if got.len() == 20 {
                    *complete.lock().unwrap() += 1;
                }
                let _ = ws.close(None);
            });
        }
        let mut c = Client::connect(port);
        for i in 0..20 {
            let body = format!(r#"{{"title":"held {i}","status":"todo"}}"#);
            let _ = c.request("POST", &format!("/rooms/{room}/tasks"), Some(&body));
        }
    });
    let complete = complete.into_inner().unwrap();
    Outcome::Figure(Figure {
        part: "feed",
        measure: "feed clients held by one room, each with every change".into(),
        subject: Amount::new(complete as f64, "clients"),
        baseline: None,
        target: Target::None,
        raw: format!(
            "{MAX_CLIENTS} clients (the default max_clients) subscribed to one room, 20 writes; \
             {complete} received all 20. Client {}: {}.",
            MAX_CLIENTS + 1,
            match extra {
                Ok(Some(code)) => format!("closed with {code}"),
                Ok(None) => "not closed".into(),
                Err(e) => format!("refused ({e})"),
            }
        ),
    })
}
