//! App timers over the room's one alarm.
//!
//! A Durable Object has one alarm; the engine uses it for delivery and retries, and an app may
//! want its own (a debounce, a daily digest). Timers are rows of `_nt_timers` in the room's
//! SQLite (so they survive eviction and restarts), and the alarm is always set no later than the
//! earliest of them: when it fires, the host runs the due timers ([`take_due`]), then the engine's
//! sync, then sets the alarm for the next timer ([`next_due`]). Setting a timer with a name that
//! is already set moves it.

use crate::clock::Scheduler;
use crate::error::Result;
use crate::primary::Primary;
use crate::value::Value;

/// Set timer `name` to fire at `at_ms` (ms since the epoch), replacing one of the same name, and
/// make sure the alarm fires by then.
pub fn set<P: Primary>(db: &P, alarm: &dyn Scheduler, name: &str, at_ms: i64) -> Result<()> {
    db.execute(
        "INSERT INTO \"_nt_timers\" (\"name\", \"at\") VALUES (?1, ?2) \
         ON CONFLICT (\"name\") DO UPDATE SET \"at\" = excluded.\"at\"",
        &[Value::Text(name.to_owned()), Value::Integer(at_ms)],
    )?;
    alarm.schedule((at_ms - alarm.now_ms()).max(0) as u64);
    Ok(())
}

/// Whether timer `name` is set.
pub fn is_set<P: Primary>(db: &P, name: &str) -> Result<bool> {
    Ok(due(db, name)?.is_some())
}

/// When timer `name` is due (ms since the epoch), if it is set.
pub fn due<P: Primary>(db: &P, name: &str) -> Result<Option<i64>> {
    let rows = db.query(
        "SELECT \"at\" FROM \"_nt_timers\" WHERE \"name\" = ?1",
        &[Value::Text(name.to_owned())],
    )?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_integer))
}

/// Cancel timer `name`; whether it was set.
pub fn cancel<P: Primary>(db: &P, name: &str) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM \"_nt_timers\" WHERE \"name\" = ?1",
        &[Value::Text(name.to_owned())],
    )? > 0)
}

/// Remove and return the timers due at `now_ms`, earliest first.
pub fn take_due<P: Primary>(db: &P, now_ms: i64) -> Result<Vec<String>> {
    let now = [Value::Integer(now_ms)];
    db.transaction(|| {
        let rows = db.query(
            "SELECT \"name\" FROM \"_nt_timers\" WHERE \"at\" <= ?1 ORDER BY \"at\", \"name\"",
            &now,
        )?;
        db.execute("DELETE FROM \"_nt_timers\" WHERE \"at\" <= ?1", &now)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(Value::Text(name)) => Some(name),
                _ => None,
            })
            .collect())
    })
}

/// When the earliest timer is due, if any is set.
pub fn next_due<P: Primary>(db: &P) -> Result<Option<i64>> {
    let rows = db.query("SELECT MIN(\"at\") FROM \"_nt_timers\"", &[])?;
    Ok(match rows.first().and_then(|r| r.first()) {
        Some(Value::Integer(at)) => Some(*at),
        _ => None,
    })
}

/// Ask the alarm for the earliest timer, if any (after the due ones ran, or on start).
pub fn arm_next<P: Primary>(db: &P, alarm: &dyn Scheduler) -> Result<()> {
    if let Some(at) = next_due(db)? {
        alarm.schedule((at - alarm.now_ms()).max(0) as u64);
    }
    Ok(())
}
