//! The baselines, as plain functions over [`Primary`] and [`Replica`] (tested natively), and
//! their routes.

use std::sync::OnceLock;

use nanotype::api::{body, ApiError, Reply};
use nanotype::schema::{ident::quote, ROOM_COLUMN};
use nanotype::table::placeholders;
use nanotype::{Error, Primary, Replica, Result, Schema, Statement, Table, Value};

use crate::schema::{App, Task};

/// The plain Durable Object's table: `tasks`' columns and indexes under another name. It is not
/// in the schema, so the engine puts no capture trigger on it and replicates nothing of it: what
/// a write costs a Durable Object with no replication at all.
pub const PLAIN_TABLE: &str = "plain_tasks";

fn plain_ddl() -> &'static str {
    static DDL: OnceLock<String> = OnceLock::new();
    DDL.get_or_init(|| {
        Task::PRIMARY_DDL
            .replace("\"tasks\"", &quote(PLAIN_TABLE))
            .replace("\"tasks_", &format!("\"{PLAIN_TABLE}_"))
    })
}

/// Run `f`; when the plain table is not there yet (a room's first plain write), create it and
/// run `f` again.
fn with_plain_table<P: Primary, T>(db: &P, f: impl Fn() -> Result<T>) -> Result<T> {
    match f() {
        // The statement cannot run as written here: the table is missing (by SQLite's code).
        Err(Error::Primary(m)) if m.kind == nanotype::error::SqlKind::Statement => {
            db.execute_batch(plain_ddl())?;
            f()
        }
        other => other,
    }
}

fn plain_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<String> = Task::DEF
            .columns
            .iter()
            .filter(|c| !c.primary_key)
            .map(|c| quote(&c.name))
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            quote(PLAIN_TABLE),
            cols.join(", "),
            placeholders(1, cols.len()),
            Task::sql().columns
        )
    })
}

/// Insert `task` into the plain table as a user of a bare Durable Object would: one statement,
/// the key assigned by SQLite. Returns the row as stored.
pub fn insert_plain<P: Primary>(db: &P, task: &Task) -> Result<Task> {
    let sql = Task::sql();
    let mut values = task.to_row()?;
    values.remove(sql.key_position);
    let row = with_plain_table(db, || {
        db.query(plain_insert_sql(), &values)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Primary("insert returned no row".into()))
    })?;
    Task::from_row(row)
}

/// Change the title and status of plain row `id`: one statement.
pub fn update_plain<P: Primary>(db: &P, id: i64, title: &str, status: &str) -> Result<u64> {
    let sql = format!(
        "UPDATE {} SET \"title\" = ?2, \"status\" = ?3 WHERE \"id\" = ?1",
        quote(PLAIN_TABLE)
    );
    with_plain_table(db, || {
        db.execute(
            &sql,
            &[
                Value::Integer(id),
                Value::Text(title.into()),
                Value::Text(status.into()),
            ],
        )
    })
}

/// Delete plain row `id`: one statement.
pub fn delete_plain<P: Primary>(db: &P, id: i64) -> Result<u64> {
    let sql = format!("DELETE FROM {} WHERE \"id\" = ?1", quote(PLAIN_TABLE));
    with_plain_table(db, || db.execute(&sql, &[Value::Integer(id)]))
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

/// `POST /rooms/{room}/bench/plain/{id}/update` (body `{"title", "status"}`) and
/// `…/{id}/delete`: the plain baselines of an update and a delete.
pub fn plain_change_route<P: Primary>(
    db: &P,
    id: &str,
    action: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("the key is an integer"))?;
    let n = match action {
        "update" => {
            let v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            update_plain(
                db,
                id,
                v["title"].as_str().unwrap_or("changed"),
                v["status"].as_str().unwrap_or("open"),
            )?
        }
        "delete" => delete_plain(db, id)?,
        _ => return Err(ApiError::not_found("update or delete")),
    };
    Ok(Reply::json(200, serde_json::json!({ "changed": n })))
}

/// `POST /rooms/{room}/bench/repeat/{kind}/{n}`: one statement of a write, `n` times in one
/// request, for the bench to time from outside (time does not advance inside a request in
/// workerd): `select1` (`SELECT 1`, the floor of any statement: one `exec` across from wasm and
/// back), `insert` (nanotype's create: a transaction, the insert, its capture trigger), `plain`
/// (the plain Durable Object's insert), `seq` (the reply's `SELECT MAX(seq)`).
pub fn repeat_route<P: Primary>(db: &P, kind: &str, n: &str) -> Result<Reply, ApiError> {
    let n: usize = n
        .parse()
        .ok()
        .filter(|n| *n <= 10_000)
        .ok_or_else(|| ApiError::bad_request("n is 0 to 10000"))?;
    let task = Task {
        id: 0,
        title: "repeat".into(),
        status: "open".into(),
        done: false,
        created_at: 0,
        assignee: None,
        tags: Vec::new(),
    };
    for _ in 0..n {
        match kind {
            "select1" => {
                db.query("SELECT 1", &[])?;
            }
            "insert" => {
                nanotype::write::insert_row(db, Task::sql(), task.to_row()?)?;
            }
            "plain" => {
                insert_plain(db, &task)?;
            }
            "seq" => {
                nanotype::outbox::current_seq(db)?;
            }
            _ => return Err(ApiError::not_found("select1, insert, plain or seq")),
        }
    }
    Ok(Reply::json(200, serde_json::json!({ "n": n })))
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

/// POST `body` to the plain route at `path` of the room's Durable Object (through the gateway:
/// same policy and routing as every route), with `req`'s headers; its response.
#[cfg(target_arch = "wasm32")]
async fn plain_request(
    req: &worker::Request,
    env: &worker::Env,
    path: &str,
    body: &[u8],
) -> worker::Result<worker::Response> {
    let mut url = req.url()?;
    url.set_path(path);
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(req.headers().clone())
        .with_body(Some(js_sys::Uint8Array::from(body).into()));
    let plain = worker::Request::new_with_init(url.as_str(), &init)?;
    nanotype::worker::serve::<App>(plain, env, &crate::BenchToken).await
}

/// The D1 binding, as the runtime opens it.
#[cfg(target_arch = "wasm32")]
fn d1(env: &worker::Env) -> worker::Result<nanotype::worker::D1Replica> {
    nanotype::worker::D1Replica::from_env(env, nanotype::worker::D1_BINDING)
        .map_err(|e| worker::Error::RustError(e.to_string()))
}

/// `POST /rooms/{room}/bench/write-through`: the plain insert in the room's Durable Object, then
/// the awaited D1 write.
#[cfg(target_arch = "wasm32")]
pub async fn write_through_route(
    mut req: worker::Request,
    env: &worker::Env,
    prefix: &str,
) -> worker::Result<worker::Response> {
    let bytes = req.bytes().await?;
    let mut resp = plain_request(&req, env, &format!("{prefix}/bench/plain"), &bytes).await?;
    if resp.status_code() != 201 {
        return Ok(resp);
    }
    let v: serde_json::Value = resp.json().await?;
    let task: Task = serde_json::from_value(v["row"].clone())?;
    let room = prefix.trim_start_matches("/rooms/");
    let d1 = d1(env)?;
    write_through(&d1, room, &task)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut v = v;
    // What D1 billed for this one write, for the bench's cost table.
    v["d1Billed"] = serde_json::to_value(d1.billed())?;
    Ok(worker::Response::from_json(&v)?.with_status(201))
}

/// The awaited D1 statement of a plain update (`title`, `status`) or delete of row `id` of
/// `room`: the per-write replication of that change.
pub async fn write_through_change<R: Replica>(
    replica: &R,
    room: &str,
    id: i64,
    change: Option<(&str, &str)>,
) -> Result<()> {
    let (room, id) = (Value::Text(room.to_owned()), Value::Integer(id));
    let stmt = match change {
        Some((title, status)) => Statement::new(
            "UPDATE \"tasks\" SET \"title\" = ?3, \"status\" = ?4 WHERE \"room_id\" = ?1 AND \"id\" = ?2",
            vec![room, id, Value::Text(title.into()), Value::Text(status.into())],
        ),
        None => Statement::new(
            "DELETE FROM \"tasks\" WHERE \"room_id\" = ?1 AND \"id\" = ?2",
            vec![room, id],
        ),
    };
    replica.batch(&[stmt]).await?;
    Ok(())
}

/// `POST /rooms/{room}/bench/write-through/{id}/update` (body `{"title", "status"}`) and
/// `…/{id}/delete`: the plain change in the room's Durable Object (through the gateway), then
/// the awaited D1 statement ([`write_through_change`]).
#[cfg(target_arch = "wasm32")]
pub async fn write_through_change_route(
    mut req: worker::Request,
    env: &worker::Env,
    prefix: &str,
    id: &str,
    action: &str,
) -> worker::Result<worker::Response> {
    let bytes = req.bytes().await?;
    let path = format!("{prefix}/bench/plain/{id}/{action}");
    let mut resp = plain_request(&req, env, &path, &bytes).await?;
    if resp.status_code() != 200 {
        return Ok(resp);
    }
    let mut v: serde_json::Value = resp.json().await?;
    let id: i64 = id
        .parse()
        .map_err(|_| worker::Error::RustError("the key is an integer".into()))?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let change = (action == "update").then(|| {
        (
            body["title"].as_str().unwrap_or("changed"),
            body["status"].as_str().unwrap_or("open"),
        )
    });
    let room = prefix.trim_start_matches("/rooms/");
    let d1 = d1(env)?;
    write_through_change(&d1, room, id, change)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    v["d1Billed"] = serde_json::to_value(d1.billed())?;
    worker::Response::from_json(&v)
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
        let stored = db
            .query("SELECT created_at, tags FROM plain_tasks WHERE id = 2", &[])
            .unwrap();
        assert_eq!(
            stored,
            vec![vec![Value::Integer(8), Value::Text("[\"x\"]".into())]]
        );
        assert_eq!(update_plain(&db, 2, "b2", "done").unwrap(), 1);
        assert_eq!(delete_plain(&db, 1).unwrap(), 1);
        assert!(
            Task::get(&db, 2).unwrap().is_none(),
            "the schema's table is untouched"
        );
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
        // An update and a delete, each the one statement of its room's row.
        pollster::block_on(write_through_change(
            &replica,
            "r1",
            1,
            Some(("again", "done")),
        ))
        .unwrap();
        pollster::block_on(write_through_change(&replica, "r2", 1, None)).unwrap();
        let rows = replica
            .query_sync(&Statement::new(
                "SELECT room_id, title, status FROM tasks ORDER BY room_id",
                vec![],
            ))
            .unwrap();
        assert_eq!(rows, vec![vec![text("r1"), text("again"), text("done")]]);
    }
}
