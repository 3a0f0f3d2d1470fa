//! Part 3c, in workerd (the same `wrangler dev`): what a write is billed for. Cloudflare bills
//! Durable Object SQLite and D1 by rows read and rows written (an index entry counts as a row
//! written); the runtime counts both as the platform reports them on every statement and the
//! room's status (`GET /rooms/{room}/_sync`) shows them (`billed`).
//!
//! For an insert, an update and a delete of a `tasks` row (two indexes), in fresh rooms: nanotype
//! (Durable Object side, including the outbox, its trim, the flush and the alarm that follows; D1
//! side, including the room's watermark), a plain Durable Object (the same row in a table nothing
//! replicates), and the original per-write replication (the plain write plus one awaited D1
//! `INSERT OR REPLACE`, for inserts). The status route's own reads are measured and subtracted.
//! Each with the feed off and on, back to back from one client (writes share the flush's
//! batches), and inserts alone (each in D1 before the next: a batch per write).

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::load::Client;
use crate::report::{Amount, Figure, Outcome, Target};

/// Writes per operation and contender.
const N: usize = 40;

/// `[statements, rows read, rows written, SQL API calls, values carried]` of a billing
/// snapshot (the last two: crossings between wasm and JavaScript, Durable Object only).
type Counts = [f64; 5];

fn counts(v: &Json) -> Counts {
    let n = |k: &str| v.get(k).and_then(Json::as_f64).unwrap_or(0.0);
    [
        n("statements"),
        n("rowsRead"),
        n("rowsWritten"),
        n("calls"),
        n("values"),
    ]
}

fn minus(a: Counts, b: Counts) -> Counts {
    std::array::from_fn(|k| a[k] - b[k])
}

struct Room<'a> {
    c: &'a mut Client,
    name: String,
}

impl Room<'_> {
    fn status(&mut self) -> Result<Json, String> {
        let r = self
            .c
            .request("GET", &format!("/rooms/{}/_sync", self.name), None)
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&r.body).map_err(|e| e.to_string())
    }

    /// `(durable object, d1)` billed so far.
    fn billed(&mut self) -> Result<(Counts, Counts), String> {
        let s = self.status()?;
        Ok((
            counts(&s["billed"]["durableObject"]),
            counts(&s["billed"]["d1"]),
        ))
    }

    fn post(&mut self, path: &str, body: &str) -> Result<Json, String> {
        let r = self
            .c
            .request("POST", &format!("/rooms/{}/{path}", self.name), Some(body))
            .map_err(|e| e.to_string())?;
        if r.status >= 300 {
            return Err(format!(
                "POST {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        serde_json::from_slice(&r.body).map_err(|e| e.to_string())
    }

    fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<(), String> {
        let r = self
            .c
            .request(method, &format!("/rooms/{}/{path}", self.name), body)
            .map_err(|e| e.to_string())?;
        if r.status >= 300 {
            return Err(format!("{method} {path}: {}", r.status));
        }
        Ok(())
    }

    /// Poll a replica read of `tasks/{id}` (answered by the Worker from D1) until D1 has the
    /// row. Unlike the room's status, whose read stores the room's pending health counters (so
    /// that counters someone saw never go back), it writes nothing in the room: a quiet room
    /// nobody watches stores them at most every 10 s. Returns how many reads it made.
    fn in_d1(&mut self, id: i64) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut reads = 0;
        loop {
            // First after the fast flush's delay (50 ms), so few reads fall back to the room.
            std::thread::sleep(Duration::from_millis(100));
            let r = self
                .c
                .request(
                    "GET",
                    &format!("/rooms/{}/tasks/{id}?consistency=replica", self.name),
                    None,
                )
                .map_err(|e| e.to_string())?;
            reads += 1;
            if r.status == 200 {
                let v: Json = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
                if v["source"] == "replica" {
                    return Ok(reads);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("task {id} of room {} never reached D1", self.name));
            }
        }
    }

    /// Poll the status until nothing is left to send and no alarm is set (its run is part of
    /// what the writes cost); returns how many status reads it made.
    fn settle(&mut self) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut polls = 0;
        loop {
            let s = self.status()?;
            polls += 1;
            let h = &s["health"];
            // The delivery alarm has run (and its retries, 30 s apart at most); the next alarm,
            // if any, is an app's timer or an audit, minutes away.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_millis() as f64);
            let alarm_far = s["alarmAt"]
                .as_f64()
                .is_none_or(|at| at > now_ms + 60_000.0);
            let idle =
                h["lag"].as_i64() == Some(0) && h["outboxDepth"].as_i64() == Some(0) && alarm_far;
            if idle {
                return Ok(polls);
            }
            if Instant::now() > deadline {
                return Err(format!("room {} did not settle: {s}", self.name));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One operation's cost per write: `(durable object, d1)`.
fn measure(
    room: &mut Room<'_>,
    sync_cost: (Counts, Counts),
    settle: bool,
    ops: impl FnOnce(&mut Room<'_>) -> Result<(), String>,
) -> Result<(Counts, Counts), String> {
    let before = room.billed()?;
    ops(room)?;
    let polls = if settle { room.settle()? } else { 0 } + 1;
    let after = room.billed()?;
    let per = |a: Counts, b: Counts, s: Counts| -> Counts {
        let d = minus(a, b);
        std::array::from_fn(|k| (d[k] - s[k] * polls as f64) / N as f64)
    };
    Ok((
        per(after.0, before.0, sync_cost.0),
        per(after.1, before.1, sync_cost.1),
    ))
}

/// Timed requests per statement kind.
const ROUNDS: usize = 9;

/// Time in the Durable Object per statement of a write. Time does not advance inside a request
/// in workerd, so each kind runs a thousand times or more in one request (`bench/repeat`) and the
/// bench times the request from outside, less the same request with none; the median of
/// [`ROUNDS`]. The nanotype inserts' flush is let finish before the next request.
fn statement_times(port: u16, stamp: &str) -> Result<Vec<Outcome>, String> {
    let mut c = Client::connect(port);
    let mut room = Room {
        c: &mut c,
        name: format!("stmt-{stamp}"),
    };
    room.post("tasks", &body(0))?;
    room.post("bench/plain", &body(0))?;
    room.settle()?;
    let mut micros = std::collections::HashMap::new();
    // Enough statements per request that they outweigh the request's own noise (a few ms).
    for (kind, repeat) in [
        ("select1", 5000),
        ("seq", 5000),
        ("plain", 1000),
        ("insert", 1000),
    ] {
        let mut per = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let mut timed = |n: usize| -> Result<Duration, String> {
                let t = Instant::now();
                room.post(&format!("bench/repeat/{kind}/{n}"), "{}")?;
                Ok(t.elapsed())
            };
            let none = timed(0)?;
            let many = timed(repeat)?;
            per.push(many.saturating_sub(none).as_secs_f64() * 1e6 / repeat as f64);
            room.settle()?;
        }
        per.sort_by(f64::total_cmp);
        micros.insert(kind, (per[ROUNDS / 2], per, repeat));
    }
    let raw = |kind: &str| {
        let (_, per, repeat) = &micros[kind];
        format!(
            "`POST bench/repeat/{kind}/{repeat}` less `…/{kind}/0`, per statement, {ROUNDS} rounds \
             (µs, sorted): {}. In local workerd on this machine, with local D1 idle.",
            per.iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let figure = |measure: &str, kind: &'static str, base: Option<(&str, &'static str)>| {
        Outcome::Figure(Figure {
            part: "cost",
            measure: measure.to_owned(),
            subject: Amount::new(micros[kind].0, "µs"),
            baseline: base.map(|(name, k)| (name.to_owned(), Amount::new(micros[k].0, "µs"))),
            target: Target::None,
            raw: match base {
                Some((_, k)) => format!("{}\n\n{}", raw(kind), raw(k)),
                None => raw(kind),
            },
        })
    };
    Ok(vec![
        figure(
            "DO time per statement: nanotype's insert (transaction, row, capture trigger) vs plain insert",
            "insert",
            Some(("plain insert", "plain")),
        ),
        figure(
            "DO time per statement: the reply's SELECT MAX(seq) vs SELECT 1",
            "seq",
            Some(("SELECT 1", "select1")),
        ),
        figure(
            "DO time per statement: SELECT 1 (one exec from wasm and back)",
            "select1",
            None,
        ),
    ])
}

fn body(i: usize) -> String {
    format!(r#"{{"title":"cost {i}","status":"open"}}"#)
}

pub fn run(port: u16, stamp: &str) -> Vec<Outcome> {
    let skipped = |why| {
        vec![Outcome::Skipped {
            part: "cost",
            reason: why,
        }]
    };
    let mut out = costs(port, stamp).unwrap_or_else(skipped);
    out.extend(statement_times(port, stamp).unwrap_or_else(skipped));
    out
}

/// nanotype's bill per insert, update and delete in the room `name` ([`N`] of each, back to
/// back from one client: they share the flush's batches): `(durable object, d1)` each.
fn nanotype_ops(port: u16, name: String) -> Result<[(Counts, Counts); 3], String> {
    let mut c = Client::connect(port);
    let mut nt = Room { c: &mut c, name };
    // Warm: the room's engine open, its migrations, its first flush.
    for i in 0..3 {
        nt.post("tasks", &body(i))?;
    }
    nt.settle()?;
    let s0 = nt.billed()?;
    let s1 = nt.billed()?;
    let sync_cost = (minus(s1.0, s0.0), minus(s1.1, s0.1));
    let mut ids = Vec::new();
    let insert = measure(&mut nt, sync_cost, true, |r| {
        for i in 0..N {
            let v = r.post("tasks", &body(i))?;
            ids.push(v["row"]["id"].as_i64().unwrap_or(0));
        }
        Ok(())
    })?;
    let update = measure(&mut nt, sync_cost, true, |r| {
        for id in &ids {
            r.call(
                "PATCH",
                &format!("tasks/{id}"),
                Some(r#"{"title":"changed"}"#),
            )?;
        }
        Ok(())
    })?;
    let delete = measure(&mut nt, sync_cost, true, |r| {
        for id in &ids {
            r.call("DELETE", &format!("tasks/{id}"), None)?;
        }
        Ok(())
    })?;
    Ok([insert, update, delete])
}

/// Inserts one at a time, each in D1 before the next: the bill of a write that shares its batch
/// with none, as most writes of a quiet room do. The room's status is read once before and once
/// after the ten (reading it stores the pending health counters, as a reader would make it).
const ALONE: usize = 10;

fn insert_alone(port: u16, name: String) -> Result<(Counts, Counts), String> {
    let mut c = Client::connect(port);
    let mut room = Room { c: &mut c, name };
    room.post("tasks", &body(0))?;
    room.settle()?;
    let s0 = room.billed()?;
    let s1 = room.billed()?;
    let sync_cost = (minus(s1.0, s0.0), minus(s1.1, s0.1));
    let before = room.billed()?;
    for i in 0..ALONE {
        let v = room.post("tasks", &body(i))?;
        room.in_d1(v["row"]["id"].as_i64().unwrap_or(0))?;
    }
    let mut polls = room.settle()?;
    let after = room.billed()?;
    polls += 1;
    let per = |a: Counts, b: Counts, s: Counts| -> Counts {
        let d = minus(a, b);
        std::array::from_fn(|k| (d[k] - s[k] * polls as f64) / ALONE as f64)
    };
    Ok((
        per(after.0, before.0, sync_cost.0),
        per(after.1, before.1, sync_cost.1),
    ))
}

fn costs(port: u16, stamp: &str) -> Result<Vec<Outcome>, String> {
    let [insert, update, delete] = nanotype_ops(port, format!("cost-nt-{stamp}"))?;
    // The bench Worker turns the feed on in rooms named `feed-…`.
    let feed = nanotype_ops(port, format!("feed-cost-{stamp}"))?;
    let alone = insert_alone(port, format!("cost-alone-{stamp}"))?;
    let alone_feed = insert_alone(port, format!("feed-cost-alone-{stamp}"))?;

    let mut c2 = Client::connect(port);
    let mut plain = Room {
        c: &mut c2,
        name: format!("cost-plain-{stamp}"),
    };
    for i in 0..3 {
        plain.post("bench/plain", &body(i))?;
    }
    let p0 = plain.billed()?;
    let p1 = plain.billed()?;
    let psync = (minus(p1.0, p0.0), minus(p1.1, p0.1));
    let mut pids = Vec::new();
    let p_insert = measure(&mut plain, psync, false, |r| {
        for i in 0..N {
            let v = r.post("bench/plain", &body(i))?;
            pids.push(v["row"]["id"].as_i64().unwrap_or(0));
        }
        Ok(())
    })?;
    let p_update = measure(&mut plain, psync, false, |r| {
        for id in &pids {
            r.post(
                &format!("bench/plain/{id}/update"),
                r#"{"title":"changed","status":"open"}"#,
            )?;
        }
        Ok(())
    })?;
    let p_delete = measure(&mut plain, psync, false, |r| {
        for id in &pids {
            r.post(&format!("bench/plain/{id}/delete"), "{}")?;
        }
        Ok(())
    })?;

    // The original per-write replication: D1's bill for each awaited write.
    let mut c3 = Client::connect(port);
    let mut wt = Room {
        c: &mut c3,
        name: format!("cost-wt-{stamp}"),
    };
    // Per operation: D1's bill for each awaited write, averaged.
    let mut wt_d1 = [[0.0; 5]; 3];
    let mut wt_ids = Vec::new();
    for i in 0..N {
        let v = wt.post("bench/write-through", &body(i))?;
        wt_ids.push(v["row"]["id"].as_i64().unwrap_or(0));
        let d = counts(&v["d1Billed"]);
        for k in 0..5 {
            wt_d1[0][k] += d[k] / N as f64;
        }
    }
    for (op, action, body) in [
        (1, "update", r#"{"title":"changed","status":"open"}"#),
        (2, "delete", "{}"),
    ] {
        for id in &wt_ids {
            let v = wt.post(&format!("bench/write-through/{id}/{action}"), body)?;
            let d = counts(&v["d1Billed"]);
            for k in 0..5 {
                wt_d1[op][k] += d[k] / N as f64;
            }
        }
    }

    let raw = |what: &str, ours: (Counts, Counts), base: Counts| {
        format!(
            "{N} {what}s of a `tasks` row (two indexes) in a fresh room, counted by the runtime from \
             the platform's own figures (`cursor.rowsRead/rowsWritten`, D1 `meta.rows_read/written`), \
             the status route's own reads subtracted; nanotype's include the flush, its applied mark and \
             the delivery alarm.\n\n\
             - nanotype, Durable Object: {:.2} statements, {:.2} rows read, {:.2} rows written per {what}\n\
             - nanotype, D1: {:.2} statements, {:.2} rows read, {:.2} rows written per {what}\n\
             - plain Durable Object: {:.2} statements, {:.2} rows read, {:.2} rows written per {what}",
            ours.0[0], ours.0[1], ours.0[2], ours.1[0], ours.1[1], ours.1[2], base[0], base[1], base[2]
        )
    };
    let mut out = Vec::new();
    for (op, (what, ours, base)) in [
        ("insert", insert, p_insert.0),
        ("update", update, p_update.0),
        ("delete", delete, p_delete.0),
    ]
    .into_iter()
    .enumerate()
    {
        let text = raw(what, ours, base);
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("DO rows written per {what} vs plain DO"),
            subject: Amount::new(ours.0[2], "rows"),
            baseline: Some(("plain DO".into(), Amount::new(base[2], "rows"))),
            target: Target::AtMostPlus(1.0),
            raw: text.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("DO rows read per {what} vs plain DO"),
            subject: Amount::new(ours.0[1], "rows"),
            baseline: Some(("plain DO".into(), Amount::new(base[1], "rows"))),
            target: Target::AtMostPlus(2.0),
            raw: text.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("DO calls from wasm into the SQL API per {what} vs plain DO"),
            subject: Amount::new(ours.0[3], "calls"),
            baseline: Some(("plain DO".into(), Amount::new(base[3], "calls"))),
            target: Target::None,
            raw: format!(
                "Counted by the runtime's Durable Object backend: each `sql.exec`, the cursor's \
                 `raw()`, each step of its iterator (`next`, `done`, `value`), its `rowsRead` and \
                 `rowsWritten`, each `transactionSync`. Values carried with them (bound parameters \
                 and result cells, each converted by one or a few more crossings): nanotype \
                 {:.1}, plain {:.1} per {what}.\n\n{text}",
                ours.0[4], base[4]
            ),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("D1 rows written per {what}, nanotype (batched) vs per-write write-through"),
            subject: Amount::new(ours.1[2], "rows"),
            baseline: Some(("write-through".into(), Amount::new(wt_d1[op][2], "rows"))),
            target: Target::AtMostPlus(1.0),
            raw: format!(
                "{N} {what}s each way. Write-through: {:.2} statements, {:.2} rows read, {:.2} rows \
                 written in D1 per {what} (one awaited statement: `INSERT OR REPLACE` of the row, \
                 `UPDATE` of the two changed columns, `DELETE`). nanotype: {:.2} statements per \
                 {what} (batched: the D1 statements per write fall as writes share a batch).\n\n{text}",
                wt_d1[op][0], wt_d1[op][1], wt_d1[op][2], ours.1[0]
            ),
        }));
    }
    // The same with the room's change feed on (its log kept for reconnecting clients).
    for (op, (what, ours)) in [
        ("insert", feed[0]),
        ("update", feed[1]),
        ("delete", feed[2]),
    ]
    .into_iter()
    .enumerate()
    {
        let base = [p_insert.0, p_update.0, p_delete.0][op];
        let text = format!(
            "The feed on (a room the bench Worker names `feed-…`), no client connected.\n\n{}",
            raw(what, ours, base)
        );
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("DO rows written per {what}, feed on, vs plain DO"),
            subject: Amount::new(ours.0[2], "rows"),
            baseline: Some(("plain DO".into(), Amount::new(base[2], "rows"))),
            target: Target::AtMostPlus(1.0),
            raw: text.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("DO rows read per {what}, feed on, vs plain DO"),
            subject: Amount::new(ours.0[1], "rows"),
            baseline: Some(("plain DO".into(), Amount::new(base[1], "rows"))),
            target: Target::AtMostPlus(2.0),
            raw: text,
        }));
    }
    // One write alone: every batch carries one change.
    for (label, ours) in [("feed off", alone), ("feed on", alone_feed)] {
        let text = format!(
            "{ALONE} inserts one at a time, each flushed and its alarm run before the next \
             (nothing shared with another write), {label}.\n\n{}",
            raw("insert", ours, p_insert.0)
        );
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!(
                "DO rows written per insert alone (its own batch), {label}, vs plain DO"
            ),
            subject: Amount::new(ours.0[2], "rows"),
            baseline: Some(("plain DO".into(), Amount::new(p_insert.0[2], "rows"))),
            target: Target::AtMostPlus(1.0),
            raw: text.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("DO rows read per insert alone (its own batch), {label}, vs plain DO"),
            subject: Amount::new(ours.0[1], "rows"),
            baseline: Some(("plain DO".into(), Amount::new(p_insert.0[1], "rows"))),
            target: Target::AtMostPlus(2.0),
            raw: text.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!(
                "D1 rows written per insert alone (its own batch), {label}, vs write-through"
            ),
            subject: Amount::new(ours.1[2], "rows"),
            baseline: Some(("write-through".into(), Amount::new(wt_d1[0][2], "rows"))),
            target: Target::AtMostPlus(1.0),
            raw: text,
        }));
    }
    // List prices (Workers Paid, beyond what the plan includes), as published for D1 and for
    // SQLite-backed Durable Objects on developers.cloudflare.com, read 2026-11-30: $0.001 per
    // million rows read, $1.00 per million rows written, both.
    let dollars = |reads: f64, writes: f64| reads * 0.001 + writes * 1.00;
    let bill = |c: (Counts, Counts)| dollars(c.0[1] + c.1[1], c.0[2] + c.1[2]);
    let theirs =
        |op: usize, plain: Counts| dollars(plain[1] + wt_d1[op][1], plain[2] + wt_d1[op][2]);
    let plain_only = dollars(p_insert.0[1], p_insert.0[2]);
    let prices = String::from(
        "Prices: $0.001 per million rows read, $1.00 per million rows written, for D1 and for \
         SQLite-backed Durable Objects alike (Workers Paid list prices, read 2026-11-30). Rows per \
         write as measured above; the write-through is the plain write plus its awaited D1 statement."
    );
    for (label, op, ours, plain) in [
        ("inserts, feed off", 0, insert, p_insert.0),
        ("updates, feed off", 1, update, p_update.0),
        ("deletes, feed off", 2, delete, p_delete.0),
        ("inserts, feed on", 0, feed[0], p_insert.0),
        ("updates, feed on", 1, feed[1], p_update.0),
        ("deletes, feed on", 2, feed[2], p_delete.0),
        ("inserts alone, feed off", 0, alone, p_insert.0),
        ("inserts alone, feed on", 0, alone_feed, p_insert.0),
    ] {
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!(
                "$ per million {label} (DO + D1 rows at list prices) vs write-through"
            ),
            subject: Amount::new(bill(ours), "$"),
            baseline: Some(("write-through".into(), Amount::new(theirs(op, plain), "$"))),
            target: Target::RatioAtMost(1.0),
            raw: prices.clone(),
        }));
    }
    out.push(Outcome::Figure(Figure {
        part: "cost",
        measure: "$ per million inserts, plain DO with no replica (absolute)".into(),
        subject: Amount::new(plain_only, "$"),
        baseline: None,
        target: Target::None,
        raw: "Prices: $0.001 per million rows read, $1.00 per million rows written, for D1 and for \
              SQLite-backed Durable Objects alike (Workers Paid list prices beyond the included 25 \
              billion reads and 50 million writes a month, as published on developers.cloudflare.com, \
              read 2026-11-30). Rows per insert as measured above: the bill of a room with no \
              replica, for scale."
            .to_owned(),
    }));
    Ok(out)
}
