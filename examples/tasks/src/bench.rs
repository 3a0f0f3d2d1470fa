//! The baselines `nanotype-bench` measures the create route against, served only when the
//! Worker's `NANOTYPE_BENCH_ROUTES` var is `"1"` (see [`crate::api::BenchRoutes`]):
//!
//! - [`insert_plain`]: the create route's insert into the room's SQLite and nothing else (no
//!   outbox record, no flush): what a write costs without replication.
//! - [`write_through`]: after that insert, one awaited `INSERT OR REPLACE` of the row into D1
//!   before the response: the original design's per-write replication.
//!
//! Plain functions over [`Primary`] and [`Replica`], so they are tested natively.

use std::sync::OnceLock;

use nanotype::schema::{ident::quote, ROOM_COLUMN};
use nanotype::table::placeholders;
use nanotype::{Error, Primary, Replica, Result, Statement, Table, Value};

use crate::schema::Task;

/// Insert `task` as `Task::insert` does (same statement, key assigned by SQLite), but with no
/// transaction around it, no outbox record and no change signal. Returns the row as stored.
pub fn insert_plain<P: Primary>(db: &P, task: &Task) -> Result<Task> {
    let sql = Task::sql();
    let mut values = task.to_row()?;
    if sql.assigns_key {
        values.remove(sql.key_position);
    }
    let row = db
        .query(&sql.insert, &values)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Primary("insert returned no row".into()))?;
    Task::from_row(row)
}

/// Write `task` (as stored in the primary) to the replica's `tasks` under `room`: one
/// statement, awaited.
pub async fn write_through<R: Replica>(replica: &R, room: &str, task: &Task) -> Result<()> {
    let mut params = vec![Value::Text(room.to_owned())];
    params.extend(task.to_row()?);
    replica
        .batch(&[Statement::new(replace_sql(), params)])
        .await?;
    Ok(())
}

/// `INSERT OR REPLACE INTO "tasks" ("room_id", <columns>) VALUES (?1, …)`, rendered once.
fn replace_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let sql = Task::sql();
        let columns = Task::DEF.columns.len();
        format!(
            "INSERT OR REPLACE INTO {} ({}, {}) VALUES ({})",
            sql.table,
            quote(ROOM_COLUMN),
            sql.columns,
            placeholders(1, columns + 1)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanotype::native::{NativePrimary, NativeReplica};

    fn task(title: &str) -> Task {
        crate::api::NewTask::parse(
            format!("{{\"title\": \"{title}\", \"tags\": [\"b\"]}}").as_bytes(),
        )
        .unwrap()
        .into_task(7)
    }

    #[test]
    fn plain_insert_writes_the_row_and_no_outbox_record() {
        let db = NativePrimary::open_in_memory().unwrap();
        db.execute_batch(Task::PRIMARY_DDL).unwrap();
        nanotype::outbox::install(&db).unwrap();
        let a = insert_plain(&db, &task("a")).unwrap();
        let b = insert_plain(&db, &task("b")).unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(Task::get(&db, 2).unwrap(), Some(b));
        assert_eq!(nanotype::outbox::current_seq(&db).unwrap(), 0);
    }

    #[test]
    fn write_through_replaces_the_rooms_row_in_the_replica() {
        let replica = NativeReplica::open_in_memory().unwrap();
        replica.execute_batch(Task::REPLICA_DDL).unwrap();
        let mut t = task("a");
        t.id = 3;
        block_on(write_through(&replica, "r1", &t)).unwrap();
        t.title = "changed".into();
        block_on(write_through(&replica, "r1", &t)).unwrap();
        block_on(write_through(&replica, "r2", &t)).unwrap();
        let rows = block_on(replica.query(&Statement::new(
            "SELECT room_id, id, title FROM tasks ORDER BY room_id",
            vec![],
        )))
        .unwrap();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            rows,
            vec![
                vec![text("r1"), Value::Integer(3), text("changed")],
                vec![text("r2"), Value::Integer(3), text("changed")],
            ]
        );
    }

    /// The native replica's futures complete without waiting; poll once.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the native replica never waits"),
        }
    }
}
