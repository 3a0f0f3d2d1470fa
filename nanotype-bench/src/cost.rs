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

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::load::Client;
use crate::report::{Amount, Figure, Outcome, Target};

/// Writes per operation and contender.
const N: usize = 40;

/// `[statements, rows read, rows written]` of a billing snapshot.
type Counts = [f64; 3];

fn counts(v: &Json) -> Counts {
    let n = |k: &str| v.get(k).and_then(Json::as_f64).unwrap_or(0.0);
    [n("statements"), n("rowsRead"), n("rowsWritten")]
}

fn minus(a: Counts, b: Counts) -> Counts {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
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

    /// Poll the status until nothing is left to send and no alarm is set (its run is part of
    /// what the writes cost); returns how many status reads it made.
    fn settle(&mut self) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut polls = 0;
        loop {
            let s = self.status()?;
            polls += 1;
            let h = &s["health"];
            // The delivery alarm has run; the next alarm, if any, is the audit hours away.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as f64)
                .unwrap_or(0.0);
            let alarm_far = s["alarmAt"]
                .as_f64()
                .is_none_or(|at| at > now_ms + 600_000.0);
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
    let per = |a: Counts, b: Counts, s: Counts| {
        let d = minus(a, b);
        [
            (d[0] - s[0] * polls as f64) / N as f64,
            (d[1] - s[1] * polls as f64) / N as f64,
            (d[2] - s[2] * polls as f64) / N as f64,
        ]
    };
    Ok((
        per(after.0, before.0, sync_cost.0),
        per(after.1, before.1, sync_cost.1),
    ))
}

fn body(i: usize) -> String {
    format!(r#"{{"title":"cost {i}","status":"open"}}"#)
}

pub fn run(port: u16, stamp: &str) -> Vec<Outcome> {
    match costs(port, stamp) {
        Ok(out) => out,
        Err(why) => vec![Outcome::Skipped {
            part: "cost",
            reason: why,
        }],
    }
}

fn costs(port: u16, stamp: &str) -> Result<Vec<Outcome>, String> {
    let mut c = Client::connect(port);
    let mut nt = Room {
        c: &mut c,
        name: format!("cost-nt-{stamp}"),
    };
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
    let mut wt_d1 = [0.0; 3];
    for i in 0..N {
        let v = wt.post("bench/write-through", &body(i))?;
        let d = counts(&v["d1Billed"]);
        for k in 0..3 {
            wt_d1[k] += d[k] / N as f64;
        }
    }

    let raw = |what: &str, ours: (Counts, Counts), base: Counts| {
        format!(
            "{N} {what}s of a `tasks` row (two indexes) in a fresh room, counted by the runtime from \
             the platform's own figures (`cursor.rowsRead/rowsWritten`, D1 `meta.rows_read/written`), \
             the status route's own reads subtracted; nanotype's include the flush, the outbox trim and \
             the delivery alarm.\n\n\
             - nanotype, Durable Object: {:.2} statements, {:.2} rows read, {:.2} rows written per {what}\n\
             - nanotype, D1: {:.2} statements, {:.2} rows read, {:.2} rows written per {what}\n\
             - plain Durable Object: {:.2} statements, {:.2} rows read, {:.2} rows written per {what}",
            ours.0[0], ours.0[1], ours.0[2], ours.1[0], ours.1[1], ours.1[2], base[0], base[1], base[2]
        )
    };
    let mut out = Vec::new();
    for (what, ours, base) in [
        ("insert", insert, p_insert.0),
        ("update", update, p_update.0),
        ("delete", delete, p_delete.0),
    ] {
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
            target: Target::AtMostPlus(1.0),
            raw: text.clone(),
        }));
        out.push(Outcome::Figure(Figure {
            part: "cost",
            measure: format!("D1 rows written per {what} (nanotype, batched)"),
            subject: Amount::new(ours.1[2], "rows"),
            baseline: None,
            target: Target::None,
            raw: text,
        }));
    }
    // List prices (Workers Paid, beyond what the plan includes), as published for D1 and for
    // SQLite-backed Durable Objects on developers.cloudflare.com, read 2026-11-30: $0.001 per
    // million rows read, $1.00 per million rows written, both.
    let dollars = |reads: f64, writes: f64| reads * 0.001 + writes * 1.00;
    let ours = dollars(insert.0[1] + insert.1[1], insert.0[2] + insert.1[2]);
    let theirs = dollars(p_insert.0[1] + wt_d1[1], p_insert.0[2] + wt_d1[2]);
    let plain_only = dollars(p_insert.0[1], p_insert.0[2]);
    out.push(Outcome::Figure(Figure {
        part: "cost",
        measure: "$ per million inserts (DO + D1 rows at list prices) vs write-through".into(),
        subject: Amount::new(ours, "$"),
        baseline: Some(("write-through".into(), Amount::new(theirs, "$"))),
        target: Target::None,
        raw: format!(
            "Prices: $0.001 per million rows read, $1.00 per million rows written, for D1 and for \
             SQLite-backed Durable Objects alike (Workers Paid list prices beyond the included 25 \
             billion reads and 50 million writes a month, as published on developers.cloudflare.com, \
             read 2026-11-30). Rows per insert as measured above. A plain Durable Object with no \
             replica: ${plain_only:.2} per million inserts."
        ),
    }));
    out.push(Outcome::Figure(Figure {
        part: "cost",
        measure: "D1 rows written per insert, nanotype vs per-write write-through".into(),
        subject: Amount::new(insert.1[2], "rows"),
        baseline: Some(("write-through".into(), Amount::new(wt_d1[2], "rows"))),
        target: Target::AtMostPlus(1.0),
        raw: format!(
            "{N} inserts each way. Write-through: {:.2} statements, {:.2} rows read, {:.2} rows \
             written in D1 per insert (one `INSERT OR REPLACE`, awaited). nanotype: {:.2} \
             statements per insert (batched: the D1 statements per write fall as writes share a \
             batch).",
            wt_d1[0], wt_d1[1], wt_d1[2], insert.1[0]
        ),
    }));
    Ok(out)
}
