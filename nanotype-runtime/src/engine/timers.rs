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
    db.query(
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
    Ok(!db
        .query(
            "DELETE FROM \"_nt_timers\" WHERE \"name\" = ?1 RETURNING 1",
            &[Value::Text(name.to_owned())],
        )?
        .is_empty())
}

/// Remove and return the timers due at `now_ms`, earliest first.
pub fn take_due<P: Primary>(db: &P, now_ms: i64) -> Result<Vec<String>> {
    // One statement: the delete returns what it removed (`RETURNING` has no order, so the
    // names are sorted here).
    let rows = db.query(
        "DELETE FROM \"_nt_timers\" WHERE \"at\" <= ?1 RETURNING \"at\", \"name\"",
        &[Value::Integer(now_ms)],
    )?;
    let mut due: Vec<(i64, String)> = rows
        .into_iter()
        .filter_map(
            |r| match (r.first().and_then(Value::as_integer), r.get(1)) {
                (Some(at), Some(Value::Text(name))) => Some((at, name.clone())),
                _ => None,
            },
        )
        .collect();
    nanotype_schema::sort::sort(&mut due);
    Ok(due.into_iter().map(|(_, name)| name).collect())
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

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::platform::native::{ManualScheduler, NativePrimary};

    #[test]
    fn due_timers_are_taken_once_earliest_first_and_cancel_says_whether_one_was_set() {
        let db = NativePrimary::open_in_memory().unwrap();
        crate::outbox::install(&db).unwrap();
        let clock = ManualScheduler::at(1_000);
        for (name, at) in [("c", 1_300), ("b", 1_100), ("a", 1_300), ("later", 9_000)] {
            set(&db, &clock, name, at).unwrap();
        }
        assert!(cancel(&db, "later").unwrap());
        assert!(
            !cancel(&db, "later").unwrap(),
            "a cancelled timer is no longer set"
        );
        set(&db, &clock, "later", 9_000).unwrap();
        assert_eq!(take_due(&db, 1_000).unwrap(), Vec::<String>::new());
        assert_eq!(take_due(&db, 1_300).unwrap(), ["b", "a", "c"]);
        assert_eq!(
            take_due(&db, 1_300).unwrap(),
            Vec::<String>::new(),
            "taken once"
        );
        assert_eq!(next_due(&db).unwrap(), Some(9_000));
    }
}
