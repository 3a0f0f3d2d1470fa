//! The feed carries every captured change, without gaps: rows deleted by a cascade (one and
//! three levels deep, and through a composite key), a raw multi-row delete, `INSERT OR REPLACE`
//! removing a row for a unique conflict. A simulated client applies what it is sent live,
//! reconnects from its seq at random points (catching up from the log), and refuses a gap as the
//! served client does; at the end its state equals a strong read of every table.
#![cfg(feature = "native")]

mod support;

use std::collections::BTreeMap;
use std::rc::Rc;

use nanotype::feed::{self, FeedConfig, Message};
use nanotype::native::{ManualScheduler, NativePrimary, NativeReplica};
use nanotype::sync::Engine;
use nanotype::{Primary, Schema, Value};
use serde_json::Value as Json;
use support::{Rng, TempDir};

#[nanotype::table(name = "orgs")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Org {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(unique)]
    pub name: String,
}

#[nanotype::table(name = "projects")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Project {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "orgs.id", on_delete = "cascade", index)]
    pub org_id: i64,
}

#[nanotype::table(name = "tasks")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "projects.id", on_delete = "cascade", index)]
    pub project_id: i64,
    pub title: String,
}

#[nanotype::table(name = "comments")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "tasks.id", on_delete = "cascade", index)]
    pub task_id: i64,
    pub body: String,
}

#[nanotype::table(name = "watchers")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Watcher {
    #[nanotype(primary_key, references = "tasks.id", on_delete = "cascade")]
    pub task_id: i64,
    #[nanotype(primary_key)]
    pub user: String,
}

nanotype::schema!(App = [Org, Project, Task, Comment, Watcher]);

type E = Engine<NativePrimary, NativeReplica, Rc<ManualScheduler>>;

fn open(dir: &TempDir) -> E {
    let p = NativePrimary::open(dir.path("room.db")).unwrap();
    if p.query("SELECT 1 FROM sqlite_master WHERE name = 'orgs'", &[])
        .unwrap()
        .is_empty()
    {
        for ddl in [
            Org::PRIMARY_DDL,
            Project::PRIMARY_DDL,
            Task::PRIMARY_DDL,
            Comment::PRIMARY_DDL,
            Watcher::PRIMARY_DDL,
        ] {
            p.execute_batch(ddl).unwrap();
        }
    }
    Engine::builder("r")
        .schema::<App>()
        .feed(Some(FeedConfig::default()))
        .open(p, Rc::new(ManualScheduler::at(1_900_000_000_000)))
        .unwrap()
}

/// What a client holds: `(table, key as JSON text)` → row, and the last seq applied.
#[derive(Default)]
struct Client {
    rows: BTreeMap<(String, String), Json>,
    seq: i64,
}

impl Client {
    /// Apply messages as the served client does. `Err` is a gap: the client must reconnect.
    fn apply(&mut self, messages: &[(i64, String)]) -> Result<(), i64> {
        for (seq, text) in messages {
            if *seq <= self.seq {
                continue;
            }
            if *seq != self.seq + 1 {
                return Err(*seq);
            }
            let m: Json = serde_json::from_str(text).unwrap();
            let key = (
                m["table"].as_str().unwrap().to_owned(),
                m["key"].to_string(),
            );
            match m["op"].as_str().unwrap() {
                "upsert" => {
                    self.rows.insert(key, m["row"].clone());
                }
                "delete" => {
                    self.rows.remove(&key);
                }
                op => panic!("unknown op {op}"),
            }
            self.seq = *seq;
        }
        Ok(())
    }

    /// Reconnect from the last seq applied: the log's changes after it, or a reset.
    fn reconnect(&mut self, e: &E) {
        let current = e.current_seq().unwrap();
        let mut changes = Vec::new();
        for m in feed::catch_up(e.primary(), Some(self.seq), current).unwrap() {
            match m {
                Message::Change { seq, text } => changes.push((seq, text)),
                Message::Reset { .. } => panic!("a kept seq must resume, not reset: {m:?}"),
                Message::Live { seq } => assert_eq!(seq, current),
            }
        }
        self.apply(&changes).expect("the log has no gap");
    }
}

/// Every row of every table, as a strong read gives it.
fn strong(e: &E) -> BTreeMap<(String, String), Json> {
    let mut out = BTreeMap::new();
    for def in App::defs() {
        let entry = App::table(&def.name).unwrap();
        for row in e
            .primary()
            .query(&format!("SELECT * FROM \"{}\"", def.name), &[])
            .unwrap()
        {
            let key = entry.sql().key_json(&entry.sql().row_key(&row)).to_string();
            out.insert((def.name.to_string(), key), entry.row_to_json(row).unwrap());
        }
    }
    out
}

/// Live delivery: what the host sends after each request. As in the room's Durable Object,
/// `raw` (app code ran: a custom route or a timer) is what makes it look for captured changes;
/// after a generated write the feed must already hold everything the write caused.
fn deliver(e: &E, client: &mut Client, raw: bool) {
    if raw {
        e.primary().feed_captured().unwrap();
    }
    let sent = e.primary().take_feed();
    if let Err(gap) = client.apply(&sent) {
        panic!(
            "a gap in the live feed before seq {gap} (client at {})",
            client.seq
        );
    }
}

fn org(e: &E, name: &str) -> Org {
    Org::insert(
        e.primary(),
        &Org {
            id: 0,
            name: name.into(),
        },
    )
    .unwrap()
}

fn project(e: &E, org_id: i64) -> Project {
    Project::insert(e.primary(), &Project { id: 0, org_id }).unwrap()
}

fn task(e: &E, project_id: i64) -> Task {
    let t = Task {
        id: 0,
        project_id,
        title: "t".into(),
    };
    Task::insert(e.primary(), &t).unwrap()
}

fn comment(e: &E, task_id: i64) {
    let c = Comment {
        id: 0,
        task_id,
        body: "c".into(),
    };
    Comment::insert(e.primary(), &c).unwrap();
}

fn watch(e: &E, task_id: i64, user: &str) {
    let w = Watcher {
        task_id,
        user: user.into(),
    };
    Watcher::upsert(e.primary(), &w).unwrap();
}

#[test]
fn a_cascaded_delete_reaches_the_feed_with_every_child() {
    let dir = TempDir::new("feed-cascade");
    let e = open(&dir);
    let mut client = Client::default();
    let o = org(&e, "o");
    let p = project(&e, o.id);
    let t = task(&e, p.id);
    comment(&e, t.id);
    comment(&e, t.id);
    watch(&e, t.id, "ada");
    watch(&e, t.id, "bo");
    deliver(&e, &mut client, false);
    assert_eq!(client.seq, 7);
    // The task and its two comments and two watchers: five changes, all sent, in seq order.
    assert!(Task::delete(e.primary(), t.id).unwrap());
    let sent = e.primary().take_feed();
    assert_eq!(
        sent.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [8, 9, 10, 11, 12]
    );
    for (_, text) in &sent {
        let m: Json = serde_json::from_str(text).unwrap();
        assert_eq!(m["op"], "delete", "{m}");
    }
    client.apply(&sent).unwrap();
    assert_eq!(client.rows, strong(&e));
    // A client that was at seq 7 resumes from the log with the same five.
    let mut late = Client {
        seq: 7,
        ..Client::default()
    };
    late.rows = client.rows.clone();
    late.reconnect(&e);
    assert_eq!(late.seq, 12);
}

#[test]
fn cascades_three_levels_deep_raw_deletes_and_replaces_keep_a_client_equal_to_the_room() {
    let dir = TempDir::new("feed-cascade-deep");
    let mut e = open(&dir);
    let mut rng = Rng::new(20);
    let mut live = Client::default();
    // A second client that drops its socket now and then and resumes from its seq.
    let mut flaky = Client::default();
    let users = ["ada", "bo", "cy"];
    for step in 0..400 {
        let orgs: Vec<i64> = ids(&e, "orgs");
        let projects: Vec<i64> = ids(&e, "projects");
        let tasks: Vec<i64> = ids(&e, "tasks");
        let op = rng.below(10);
        match op {
            0 | 1 if orgs.len() < 6 => {
                org(&e, &format!("org-{step}"));
            }
            2 | 3 if !orgs.is_empty() => {
                project(&e, orgs[rng.below(orgs.len() as u64) as usize]);
            }
            4 | 5 if !projects.is_empty() => {
                let t = task(&e, projects[rng.below(projects.len() as u64) as usize]);
                for _ in 0..rng.below(3) {
                    comment(&e, t.id);
                }
                watch(&e, t.id, users[rng.below(3) as usize]);
            }
            6 if !orgs.is_empty() => {
                // Three levels: org → projects → tasks → comments and watchers.
                let id = orgs[rng.below(orgs.len() as u64) as usize];
                Org::delete(e.primary(), id).unwrap();
            }
            7 if !tasks.is_empty() => {
                // Raw SQL that deletes many rows (and cascades), as a custom route runs it.
                let id = tasks[rng.below(tasks.len() as u64) as usize];
                e.primary()
                    .execute("DELETE FROM tasks WHERE id >= ?1", &[Value::Integer(id)])
                    .unwrap();
            }
            8 if !orgs.is_empty() => {
                // REPLACE on the unique name: the old org (and what it cascades to) goes.
                let victim = orgs[rng.below(orgs.len() as u64) as usize];
                let name: String = match &e
                    .primary()
                    .query(
                        "SELECT name FROM orgs WHERE id = ?1",
                        &[Value::Integer(victim)],
                    )
                    .unwrap()[0][0]
                {
                    Value::Text(n) => n.clone(),
                    v => panic!("{v:?}"),
                };
                e.primary()
                    .execute(
                        "INSERT OR REPLACE INTO orgs (name) VALUES (?1)",
                        &[Value::Text(name)],
                    )
                    .unwrap();
            }
            _ if !tasks.is_empty() => {
                let id = tasks[rng.below(tasks.len() as u64) as usize];
                Task::delete(e.primary(), id).unwrap();
            }
            _ => {}
        }
        deliver(&e, &mut live, matches!(op, 7 | 8));
        if rng.chance(0.2) {
            flaky.reconnect(&e);
        }
        if step % 97 == 96 {
            // The room restarts (a new Durable Object instance): the log carries on.
            drop(e);
            e = open(&dir);
        }
    }
    flaky.reconnect(&e);
    let room = strong(&e);
    assert!(room.len() > 10, "the room kept rows: {}", room.len());
    assert_eq!(live.rows, room, "the live client equals a strong read");
    assert_eq!(flaky.rows, room, "the resuming client equals a strong read");
    assert_eq!(live.seq, e.current_seq().unwrap());
}

#[test]
fn a_log_with_a_hole_resets_a_resuming_client() {
    let dir = TempDir::new("feed-hole");
    let e = open(&dir);
    let o = org(&e, "o");
    project(&e, o.id);
    project(&e, o.id);
    e.primary().take_feed();
    // A change the log lost (as if trimmed before it was logged): resuming across it resets.
    e.primary()
        .execute("DELETE FROM _nt_outbox WHERE seq = 2", &[])
        .unwrap();
    let current = e.current_seq().unwrap();
    match &feed::catch_up(e.primary(), Some(1), current).unwrap()[..] {
        [Message::Reset { seq, .. }] => assert_eq!(*seq, current),
        other => panic!("expected a reset, got {other:?}"),
    }
    // From after the hole it resumes.
    assert!(matches!(
        &feed::catch_up(e.primary(), Some(2), current).unwrap()[..],
        [Message::Change { seq: 3, .. }, Message::Live { seq: 3 }]
    ));
}

fn ids(e: &E, table: &str) -> Vec<i64> {
    e.primary()
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .unwrap()
        .into_iter()
        .map(|r| match r[0] {
            Value::Integer(i) => i,
            ref v => panic!("{v:?}"),
        })
        .collect()
}
