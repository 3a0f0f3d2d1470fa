//! Room-scoped reads on the replica: every generated read takes the room as an argument, binds
//! it as a parameter, and returns only that room's rows, whatever the keys and values of other
//! rooms. Checked by hand and against a model over thousands of random reads.

use nanotype::native::{NativePrimary, NativeReplica};
use nanotype::read::{PrimaryReads, ReplicaReads};
use nanotype::{Error, Order, Page, Primary, Value};
use pollster::block_on;

#[nanotype::table(name = "tasks", index(status, rank))]
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index)]
    pub status: String,
    #[nanotype(unique)]
    pub slug: String,
    #[nanotype(index)]
    pub assignee: Option<String>,
    pub rank: i32,
    /// `room/id`: tells which room a returned row came from.
    pub title: String,
}

/// Rooms whose ids are awkward on purpose; their rows share keys and values.
const ROOMS: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "room with spaces",
    "'; DROP TABLE tasks; --",
];
const STATUSES: &[&str] = &["open", "doing", "done"];
const PEOPLE: &[&str] = &["ann", "bob", "cy"];

/// xorshift64*: a fixed seed gives the same reads on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// The replica with rows for every room written directly, and the same rows kept as the model.
fn replica(rng: &mut Rng) -> (NativeReplica, Vec<(String, Task)>) {
    let replica = NativeReplica::open_in_memory().unwrap();
    replica.execute_batch(Task::REPLICA_DDL).unwrap();
    let mut rows = Vec::new();
    for room in ROOMS {
        let n = 20 + rng.below(40);
        for id in 1..=n as i64 {
            let assignee = match rng.below(4) {
                0 => None,
                _ => Some(rng.pick(PEOPLE).to_owned()),
            };
            let task = Task {
                id,
                status: rng.pick(STATUSES).to_owned(),
                // The same slugs in every room: unique per room only.
                slug: format!("slug-{id}"),
                assignee,
                rank: rng.below(5) as i32,
                title: format!("{room}/{id}"),
            };
            replica
                .connection()
                .execute(
                    "INSERT INTO \"tasks\" (\"room_id\", \"id\", \"status\", \"slug\", \"assignee\", \"rank\", \"title\") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![room, task.id, task.status, task.slug, task.assignee, task.rank, task.title],
                )
                .unwrap();
            rows.push((room.to_string(), task));
        }
    }
    (replica, rows)
}

fn of_room<'a>(rows: &'a [(String, Task)], room: &str) -> Vec<&'a Task> {
    rows.iter()
        .filter(|(r, _)| r == room)
        .map(|(_, t)| t)
        .collect()
}

/// What a keyset page over `candidates` (ascending by key) must return.
fn expected_page(mut candidates: Vec<&Task>, page: &Page) -> Vec<Task> {
    candidates.sort_by_key(|t| t.id);
    if page.order == Order::Desc {
        candidates.reverse();
    }
    let after = match &page.after {
        Some(Value::Integer(k)) => Some(*k),
        None => None,
        Some(other) => panic!("keys are integers here, got {other:?}"),
    };
    candidates
        .into_iter()
        .filter(|t| match (after, page.order) {
            (None, _) => true,
            (Some(k), Order::Asc) => t.id > k,
            (Some(k), Order::Desc) => t.id < k,
        })
        .take(page.limit as usize)
        .cloned()
        .collect()
}

fn assert_from_room(rows: &[Task], room: &str) {
    for t in rows {
        assert!(
            t.title.starts_with(&format!("{room}/")),
            "room {room:?} read a row of another room: {t:?}"
        );
    }
}

#[test]
fn each_read_sees_only_its_room() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (replica, rows) = replica(&mut rng);
    let r = ReplicaReads(replica);
    for room in ROOMS {
        let mine = of_room(&rows, room);
        assert_eq!(
            block_on(Task::room_count(&r, room)).unwrap(),
            mine.len() as i64
        );
        // Key 1 exists in every room; each room gets its own.
        let one = block_on(Task::room_get(&r, room, 1)).unwrap().unwrap();
        assert_eq!(one.title, format!("{room}/1"));
        assert_eq!(block_on(Task::room_get(&r, room, 10_000)).unwrap(), None);
        // Slugs repeat across rooms; the unique index is per room.
        let by_slug = block_on(Task::room_find_by_slug(
            &r,
            room,
            "slug-2",
            &Page::first(10),
        ))
        .unwrap();
        assert_eq!(by_slug.len(), 1);
        assert_eq!(by_slug[0].title, format!("{room}/2"));

        // Walk the whole room in pages, both ways.
        for order in [Order::Asc, Order::Desc] {
            let mut page = Page {
                after: None,
                limit: 7,
                order,
            };
            let mut walked = Vec::new();
            loop {
                let got = block_on(Task::room_list(&r, room, &page)).unwrap();
                assert_eq!(got, expected_page(mine.clone(), &page));
                let Some(last) = got.last() else { break };
                page.after = Some(Value::Integer(last.id));
                walked.extend(got);
            }
            assert_eq!(walked.len(), mine.len());
            assert_from_room(&walked, room);
        }
    }
    // A room with no rows reads nothing, even with keys other rooms have.
    assert_eq!(block_on(Task::room_count(&r, "empty")).unwrap(), 0);
    assert_eq!(block_on(Task::room_get(&r, "empty", 1)).unwrap(), None);
    assert!(block_on(Task::room_list(&r, "empty", &Page::first(100)))
        .unwrap()
        .is_empty());
    // A room id that looks like a pattern or an injection is a plain value.
    assert_eq!(block_on(Task::room_count(&r, "%")).unwrap(), 0);
    assert_eq!(
        block_on(Task::room_count(&r, "alpha' OR '1'='1")).unwrap(),
        0
    );
    // An empty room id is refused before any SQL runs.
    assert!(matches!(
        block_on(Task::room_count(&r, "")),
        Err(Error::InvalidRoom(_))
    ));
}

#[test]
fn randomized_reads_match_the_model_and_never_cross_rooms() {
    let mut rng = Rng(0x0bad_cafe_f00d_2026);
    let (replica, rows) = replica(&mut rng);
    let r = ReplicaReads(replica);
    let mut rooms: Vec<&str> = ROOMS.to_vec();
    rooms.push("nobody-here");
    let mut reads = 0;
    for _ in 0..2_500 {
        let room = rng.pick(&rooms);
        let mine = of_room(&rows, room);
        let page = Page {
            after: match rng.below(3) {
                0 => None,
                _ => Some(Value::Integer(rng.below(70) as i64)),
            },
            limit: rng.below(12) as u32,
            order: if rng.below(2) == 0 {
                Order::Asc
            } else {
                Order::Desc
            },
        };
        let got = match rng.below(6) {
            0 => {
                let key = rng.below(70) as i64;
                let got = block_on(Task::room_get(&r, room, key)).unwrap();
                let want = mine.iter().find(|t| t.id == key).map(|t| (*t).clone());
                assert_eq!(got, want, "room_get({room:?}, {key})");
                got.into_iter().collect()
            }
            1 => {
                let got = block_on(Task::room_list(&r, room, &page)).unwrap();
                assert_eq!(got, expected_page(mine.clone(), &page), "{room:?} {page:?}");
                got
            }
            2 => {
                let status = rng.pick(STATUSES);
                let got = block_on(Task::room_find_by_status(&r, room, status, &page)).unwrap();
                let want: Vec<&Task> = mine
                    .iter()
                    .copied()
                    .filter(|t| t.status == status)
                    .collect();
                assert_eq!(got, expected_page(want, &page), "{room:?} status={status}");
                got
            }
            3 => {
                let who = match rng.below(4) {
                    0 => None,
                    _ => Some(rng.pick(PEOPLE)),
                };
                let got = block_on(Task::room_find_by_assignee(&r, room, who, &page)).unwrap();
                let want: Vec<&Task> = mine
                    .iter()
                    .copied()
                    .filter(|t| t.assignee.as_deref() == who)
                    .collect();
                assert_eq!(got, expected_page(want, &page), "{room:?} assignee={who:?}");
                got
            }
            4 => {
                let slug = format!("slug-{}", rng.below(70));
                let got = block_on(Task::room_find_by_slug(&r, room, &slug, &page)).unwrap();
                let want: Vec<&Task> = mine.iter().copied().filter(|t| t.slug == slug).collect();
                assert_eq!(got, expected_page(want, &page), "{room:?} slug={slug}");
                got
            }
            _ => {
                let n = block_on(Task::room_count(&r, room)).unwrap();
                assert_eq!(n, mine.len() as i64, "room_count({room:?})");
                Vec::new()
            }
        };
        assert_from_room(&got, room);
        reads += 1;
    }
    assert!(reads >= 2_000);
}

#[test]
fn a_primary_answers_only_for_its_own_room() {
    let db = NativePrimary::open_in_memory().unwrap();
    nanotype::outbox::install(&db).unwrap();
    db.execute_batch(Task::PRIMARY_DDL).unwrap();
    let t = Task::insert(
        &db,
        &Task {
            id: 0,
            status: "open".into(),
            slug: "s".into(),
            assignee: None,
            rank: 1,
            title: "alpha/1".into(),
        },
    )
    .unwrap();
    let reads = PrimaryReads {
        db: &db,
        room: "alpha",
    };
    // Its own room: the same answers the replica would give.
    assert_eq!(
        block_on(Task::room_get(&reads, "alpha", t.id)).unwrap(),
        Some(t.clone())
    );
    assert_eq!(block_on(Task::room_count(&reads, "alpha")).unwrap(), 1);
    assert_eq!(
        block_on(Task::room_find_by_status(
            &reads,
            "alpha",
            "open",
            &Page::first(5)
        ))
        .unwrap(),
        std::slice::from_ref(&t)
    );
    assert_eq!(
        block_on(Task::room_find_by_assignee(
            &reads,
            "alpha",
            None,
            &Page::first(5)
        ))
        .unwrap(),
        std::slice::from_ref(&t)
    );
    assert_eq!(
        block_on(Task::room_list(&reads, "alpha", &Page::first(5).desc())).unwrap(),
        [t]
    );
    // Another room: refused, whatever the read.
    let wrong = |e: Error| match e {
        Error::WrongRoom { asked, own } => {
            assert_eq!((asked.as_str(), own.as_str()), ("beta", "alpha"));
        }
        other => panic!("expected WrongRoom, got {other:?}"),
    };
    wrong(block_on(Task::room_get(&reads, "beta", 1)).unwrap_err());
    wrong(block_on(Task::room_count(&reads, "beta")).unwrap_err());
    wrong(block_on(Task::room_list(&reads, "beta", &Page::first(5))).unwrap_err());
    wrong(
        block_on(Task::room_find_by_status(
            &reads,
            "beta",
            "open",
            &Page::first(5),
        ))
        .unwrap_err(),
    );
}
