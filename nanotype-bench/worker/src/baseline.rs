//! The baselines, as plain functions over [`Primary`] and [`Replica`] (tested natively), and
//! their routes.

use std::sync::OnceLock;

use nanotype::api::{body, ApiError, Reply};
use nanotype::schema::{ident::quote, ROOM_COLUMN};
use nanotype::table::placeholders;
use nanotype::{Error, Primary, Replica, Result, Schema, Statement, Table, Value};

use crate::schema::{App, Task};

/// Insert `task` as the gateway's create does (same statement, key assigned by SQLite), but
/// with no transaction around it, no outbox record and no alarm. Returns the row as stored.
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

/// `POST /rooms/{room}/bench/plain`: the create route's parsing, then [`insert_plain`].
pub fn plain_route<P: Primary>(db: &P, body: &[u8], now_ms: i64) -> Result<Reply, ApiError> {
    let table = App::table("tasks").ok_or_else(|| ApiError::internal("no tasks table"))?;
    let mut row = body::create(table, body)?;
    let task = row
        .get_mut::<Task>()
        .ok_or_else(|| ApiError::internal("not a task"))?;
    task.created_at = now_ms;
    let stored = insert_plain(db, task)?;
    Ok(Reply::json(201, serde_json::json!({ "row": stored })))
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

/// `POST /rooms/{room}/bench/write-through`: the plain insert in the room's Durable Object
/// (through the gateway: same policy and routing as every route), then the awaited D1 write.
#[cfg(target_arch = "wasm32")]
pub async fn write_through_route(
    mut req: worker::Request,
    env: &worker::Env,
    prefix: &str,
) -> worker::Result<worker::Response> {
    let bytes = req.bytes().await?;
    let mut url = req.url()?;
    url.set_path(&format!("{prefix}/bench/plain"));
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(req.headers().clone())
        .with_body(Some(js_sys::Uint8Array::from(bytes.as_slice()).into()));
    let plain = worker::Request::new_with_init(url.as_str(), &init)?;
    let mut resp = nanotype::worker::serve::<App>(plain, env, &crate::BenchToken).await?;
    if resp.status_code() != 201 {
        return Ok(resp);
    }
    let v: serde_json::Value = resp.json().await?;
    let task: Task = serde_json::from_value(v["row"].clone())?;
    let room = prefix.trim_start_matches("/rooms/");
    let d1 = nanotype::worker::D1Replica::from_env(env, nanotype::worker::D1_BINDING)
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    write_through(&d1, room, &task)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(worker::Response::from_json(&v)?.with_status(201))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanotype::native::{NativePrimary, NativeReplica};

    fn db() -> NativePrimary {
        let db = NativePrimary::open_in_memory().unwrap();
        nanotype::migrate::apply(&db, App::MIGRATIONS).unwrap();
        nanotype::outbox::install(&db).unwrap();
        db
    }

    #[test]
    fn plain_insert_writes_the_row_and_no_outbox_record() {
        let db = db();
        let a = plain_route(&db, br#"{"title": "a"}"#, 7).unwrap();
        let b = plain_route(&db, br#"{"title": "b", "tags": ["x"]}"#, 8).unwrap();
        assert_eq!(
            (a.status, &a.body["row"]["id"], &b.body["row"]["id"]),
            (201, &1.into(), &2.into())
        );
        let stored = Task::get(&db, 2).unwrap().unwrap();
        assert_eq!((stored.created_at, stored.tags), (8, vec!["x".to_owned()]));
        assert_eq!(
            nanotype::outbox::current_seq(&db).unwrap(),
            0,
            "no outbox record"
        );
        assert_eq!(plain_route(&db, b"{}", 9).unwrap_err().status, 400);
    }

    #[test]
    fn write_through_replaces_the_rooms_row_in_the_replica() {
        let replica = NativeReplica::open_in_memory().unwrap();
        replica.execute_batch(Task::REPLICA_DDL).unwrap();
        let db = db();
        let mut t = insert_plain(
            &db,
            &Task {
                id: 0,
                title: "a".into(),
                status: "open".into(),
                done: false,
                created_at: 1,
                assignee: None,
                tags: vec![],
            },
        )
        .unwrap();
        pollster::block_on(write_through(&replica, "r1", &t)).unwrap();
        t.title = "changed".into();
        pollster::block_on(write_through(&replica, "r1", &t)).unwrap();
        pollster::block_on(write_through(&replica, "r2", &t)).unwrap();
        let rows = replica
            .query_sync(&Statement::new(
                "SELECT room_id, id, title FROM tasks ORDER BY room_id",
                vec![],
            ))
            .unwrap();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            rows,
            vec![
                vec![text("r1"), Value::Integer(1), text("changed")],
                vec![text("r2"), Value::Integer(1), text("changed")],
            ]
        );
    }
}
