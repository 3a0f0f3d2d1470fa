//! Every supported type through insert/get/list/update/upsert/delete on the native backend, with
//! edge values, and the outbox contract: one record per successful write, none for a failed one.

use nanotype::native::NativePrimary;
use nanotype::{outbox, Error, Page, Primary, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub note: String,
    pub weight: i32,
    #[serde(default)]
    pub score: Option<f64>,
}

#[nanotype::table(name = "tasks")]
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(unique)]
    pub slug: String,
    pub a_i8: i8,
    pub a_i16: i16,
    pub a_i32: i32,
    pub a_i64: i64,
    pub a_u8: u8,
    pub a_u16: u16,
    pub a_u32: u32,
    pub a_f32: f32,
    pub a_f64: f64,
    pub a_bool: bool,
    pub text: String,
    pub bytes: Vec<u8>,
    pub o_i64: Option<i64>,
    pub o_u32: Option<u32>,
    pub o_f64: Option<f64>,
    pub o_bool: Option<bool>,
    pub o_text: Option<String>,
    pub o_bytes: Option<Vec<u8>>,
    #[nanotype(json)]
    pub tags: Vec<String>,
    #[nanotype(json)]
    pub meta: Option<Meta>,
}

/// A table keyed by text: the key comes from the struct.
#[nanotype::table(name = "docs")]
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    #[nanotype(primary_key)]
    pub name: String,
    pub body: String,
}

const MAX_SAFE: i64 = (1 << 53) - 1;

fn db() -> NativePrimary {
    let db = NativePrimary::open_in_memory().unwrap();
    outbox::install(&db).unwrap();
    db.execute_batch(Task::PRIMARY_DDL).unwrap();
    db.execute_batch(Doc::PRIMARY_DDL).unwrap();
    db
}

fn task(slug: &str) -> Task {
    Task {
        id: 0,
        slug: slug.into(),
        a_i8: 0,
        a_i16: 0,
        a_i32: 0,
        a_i64: 0,
        a_u8: 0,
        a_u16: 0,
        a_u32: 0,
        a_f32: 0.0,
        a_f64: 0.0,
        a_bool: false,
        text: String::new(),
        bytes: Vec::new(),
        o_i64: None,
        o_u32: None,
        o_f64: None,
        o_bool: None,
        o_text: None,
        o_bytes: None,
        tags: Vec::new(),
        meta: None,
    }
}

fn depth(db: &NativePrimary) -> i64 {
    outbox::depth(db).unwrap()
}

fn all(db: &NativePrimary) -> Vec<Task> {
    Task::list(db, &Page::first(1000)).unwrap()
}

/// The newest outbox record: (table, key).
fn last_change(db: &NativePrimary) -> (Value, Value) {
    let rows = db
        .query(
            "SELECT \"tbl\", \"pk\" FROM \"_nt_outbox\" ORDER BY \"seq\" DESC LIMIT 1",
            &[],
        )
        .unwrap();
    let mut row = rows
        .into_iter()
        .next()
        .expect("an outbox record")
        .into_iter();
    (row.next().unwrap(), row.next().unwrap())
}

/// Insert, then read back by key and by listing: all three agree with what was written (the
/// key aside, which SQLite assigns). One outbox record.
fn round_trip(db: &NativePrimary, row: &Task) -> Task {
    let before = depth(db);
    let stored = Task::insert(db, row).unwrap();
    assert_eq!(depth(db), before + 1, "one outbox record per insert");
    assert_eq!(
        last_change(db),
        (Value::Text("tasks".into()), Value::Integer(stored.id))
    );
    let expected = Task {
        id: stored.id,
        ..row.clone()
    };
    assert_eq!(stored, expected, "insert returns the row as stored");
    assert_eq!(Task::get(db, stored.id).unwrap(), Some(expected.clone()));
    assert!(all(db).contains(&expected));
    stored
}

#[test]
fn integers_at_their_limits() {
    let db = db();
    let min = Task {
        a_i8: i8::MIN,
        a_i16: i16::MIN,
        a_i32: i32::MIN,
        a_i64: -MAX_SAFE,
        a_u8: u8::MIN,
        a_u16: u16::MIN,
        a_u32: u32::MIN,
        o_i64: Some(-MAX_SAFE),
        o_u32: Some(0),
        ..task("min")
    };
    let max = Task {
        a_i8: i8::MAX,
        a_i16: i16::MAX,
        a_i32: i32::MAX,
        a_i64: MAX_SAFE,
        a_u8: u8::MAX,
        a_u16: u16::MAX,
        a_u32: u32::MAX,
        o_i64: Some(MAX_SAFE),
        o_u32: Some(u32::MAX),
        ..task("max")
    };
    round_trip(&db, &min);
    round_trip(&db, &max);
    // Stored as SQLite integers, not text or reals.
    let types = db
        .query(
            "SELECT typeof(\"a_u32\"), typeof(\"a_i64\"), typeof(\"a_bool\") FROM \"tasks\"",
            &[],
        )
        .unwrap();
    for row in types {
        assert!(
            row.iter().all(|t| *t == Value::Text("integer".into())),
            "{row:?}"
        );
    }
}

#[test]
fn i64_beyond_2_pow_53_is_refused_and_nothing_is_written() {
    let db = db();
    round_trip(&db, &task("ok"));
    let rows_before = all(&db);
    let depth_before = depth(&db);
    for bad in [MAX_SAFE + 1, -MAX_SAFE - 1, i64::MAX, i64::MIN] {
        for row in [
            Task {
                a_i64: bad,
                ..task("bad")
            },
            Task {
                o_i64: Some(bad),
                ..task("bad")
            },
        ] {
            match Task::insert(&db, &row) {
                Err(Error::IntegerOutOfRange { column, value }) => {
                    assert!(column == "a_i64" || column == "o_i64");
                    assert_eq!(value, bad.to_string());
                }
                other => panic!("{bad}: expected IntegerOutOfRange, got {other:?}"),
            }
            assert!(matches!(
                Task::upsert(
                    &db,
                    &Task {
                        id: 1,
                        ..row.clone()
                    }
                ),
                Err(Error::IntegerOutOfRange { .. })
            ));
            assert!(matches!(
                Task::update(&db, &Task { id: 1, ..row }),
                Err(Error::IntegerOutOfRange { .. })
            ));
        }
        // Keys are checked too, on the way in.
        assert!(matches!(
            Task::get(&db, bad),
            Err(Error::IntegerOutOfRange { .. })
        ));
        assert!(matches!(
            Task::delete(&db, bad),
            Err(Error::IntegerOutOfRange { .. })
        ));
    }
    assert_eq!(all(&db), rows_before);
    assert_eq!(depth(&db), depth_before);

    // A value written behind nanotype's back is refused on the way out, not rounded.
    db.execute(
        "UPDATE \"tasks\" SET \"a_i64\" = ?1",
        &[Value::Integer(MAX_SAFE + 1)],
    )
    .unwrap();
    assert!(matches!(
        Task::get(&db, 1),
        Err(Error::IntegerOutOfRange { .. })
    ));
}

#[test]
fn stored_values_that_do_not_fit_the_field_are_decode_errors() {
    let db = db();
    let t = round_trip(&db, &task("x"));
    for (column, value) in [
        ("a_u8", Value::Integer(256)),
        ("a_i8", Value::Integer(-129)),
        ("a_u32", Value::Integer(-1)),
        ("a_bool", Value::Integer(2)),
        ("text", Value::Blob(vec![1])),
        ("bytes", Value::Integer(3)),
        ("tags", Value::Text("not json".into())),
    ] {
        let restore = db
            .query(&format!("SELECT \"{column}\" FROM \"tasks\""), &[])
            .unwrap()[0][0]
            .clone();
        db.execute(&format!("UPDATE \"tasks\" SET \"{column}\" = ?1"), &[value])
            .unwrap();
        match Task::get(&db, t.id) {
            Err(Error::Decode { column: c, .. } | Error::Json { column: c, .. }) => {
                assert_eq!(c, column);
            }
            other => panic!("{column}: expected a decode error, got {other:?}"),
        }
        db.execute(
            &format!("UPDATE \"tasks\" SET \"{column}\" = ?1"),
            &[restore],
        )
        .unwrap();
    }
    assert_eq!(Task::get(&db, t.id).unwrap(), Some(t));
}

#[test]
fn floats_nan_is_refused_infinities_kept_negative_zero_is_zero() {
    let db = db();
    let edges = Task {
        a_f32: f32::MAX,
        a_f64: f64::MIN_POSITIVE,
        o_f64: Some(-1.5e300),
        ..task("edges")
    };
    round_trip(&db, &edges);
    let third = Task {
        a_f32: 0.1,
        a_f64: 0.1 + 0.2,
        ..task("third")
    };
    round_trip(&db, &third);

    // ±inf are stored and read back as such.
    let inf = Task {
        a_f32: f32::NEG_INFINITY,
        a_f64: f64::INFINITY,
        o_f64: Some(f64::NEG_INFINITY),
        ..task("inf")
    };
    round_trip(&db, &inf);

    // -0.0 is stored as 0.0: SQLite keeps no sign on zero, and writing 0.0 everywhere keeps the
    // returned row, a later read and the replica alike.
    let neg_zero = Task {
        a_f32: -0.0,
        a_f64: -0.0,
        o_f64: Some(-0.0),
        ..task("negzero")
    };
    let stored = Task::insert(&db, &neg_zero).unwrap();
    let read = Task::get(&db, stored.id).unwrap().unwrap();
    for t in [&stored, &read] {
        assert_eq!(t.a_f64, 0.0);
        assert!(t.a_f64.is_sign_positive(), "{t:?}");
        assert!(t.a_f32.is_sign_positive(), "{t:?}");
        assert!(t.o_f64.unwrap().is_sign_positive(), "{t:?}");
    }

    let rows_before = all(&db);
    let depth_before = depth(&db);
    for (row, col) in [
        (
            Task {
                a_f64: f64::NAN,
                ..task("nan")
            },
            "a_f64",
        ),
        (
            Task {
                a_f32: f32::NAN,
                ..task("nan")
            },
            "a_f32",
        ),
        (
            Task {
                o_f64: Some(f64::NAN),
                ..task("nan")
            },
            "o_f64",
        ),
    ] {
        match Task::insert(&db, &row) {
            Err(Error::NaN { column }) => assert_eq!(column, col),
            other => panic!("expected NaN, got {other:?}"),
        }
        assert!(matches!(
            Task::update(
                &db,
                &Task {
                    id: 1,
                    ..row.clone()
                }
            ),
            Err(Error::NaN { .. })
        ));
        assert!(matches!(Task::upsert(&db, &row), Err(Error::NaN { .. })));
    }
    assert_eq!(all(&db), rows_before);
    assert_eq!(depth(&db), depth_before);
}

#[test]
fn strings_empty_unicode_and_hostile() {
    let db = db();
    let values = [
        "",
        " ",
        "plain",
        "emoji 🦀🎉👩‍👩‍👧‍👦",
        "中文 日本語 한국어 العربية עברית हिन्दी",
        "e\u{301} combining, \u{200b}zero width",
        "'); DROP TABLE tasks; --",
        "\"); DROP TABLE \"tasks\"; --",
        "\"",
        "'",
        "`; \\ %_ ?1 :name @x $y",
        "line\nbreak\ttab\r",
    ];
    for (i, s) in values.iter().enumerate() {
        let row = Task {
            text: (*s).to_owned(),
            o_text: Some((*s).to_owned()),
            tags: vec![(*s).to_owned(), "second".into()],
            meta: Some(Meta {
                note: (*s).to_owned(),
                weight: -1,
                score: Some(0.25),
            }),
            ..task(&format!("{s}#{i}"))
        };
        round_trip(&db, &row);
    }
    assert_eq!(all(&db).len(), values.len());
    // The tables are still there.
    let tables = db
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            &[],
        )
        .unwrap();
    assert!(tables.contains(&vec![Value::Text("tasks".into())]));
    assert!(tables.contains(&vec![Value::Text("_nt_outbox".into())]));

    // Text keys may be hostile too.
    for s in values {
        let d = Doc {
            name: s.to_owned(),
            body: s.to_owned(),
        };
        assert_eq!(Doc::insert(&db, &d).unwrap(), d);
        assert_eq!(Doc::get(&db, s).unwrap(), Some(d));
    }
}

#[test]
fn nulls_blobs_and_json() {
    let db = db();
    // Every Option as None.
    round_trip(&db, &task("nulls"));
    // Every Option as Some, with the empty values that are not NULL.
    let somes = Task {
        o_i64: Some(0),
        o_u32: Some(0),
        o_f64: Some(0.0),
        o_bool: Some(false),
        o_text: Some(String::new()),
        o_bytes: Some(Vec::new()),
        meta: Some(Meta {
            note: String::new(),
            weight: 0,
            score: None,
        }),
        ..task("somes")
    };
    let stored = round_trip(&db, &somes);
    let kinds = db
        .query(
            "SELECT typeof(\"o_text\"), typeof(\"o_bytes\"), typeof(\"meta\") FROM \"tasks\" WHERE \"id\" = ?1",
            &[Value::Integer(stored.id)],
        )
        .unwrap();
    assert_eq!(
        kinds[0],
        [
            Value::Text("text".into()),
            Value::Text("blob".into()),
            Value::Text("text".into())
        ]
    );

    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    round_trip(
        &db,
        &Task {
            bytes: binary.clone(),
            o_bytes: Some(vec![0, 0, 0]),
            a_bool: true,
            o_bool: Some(true),
            tags: vec!["a\"b".into(), "[]".into(), "{}".into(), "null".into()],
            ..task("binary")
        },
    );
    // JSON columns hold JSON text.
    let json = db
        .query(
            "SELECT \"tags\", \"meta\" FROM \"tasks\" WHERE \"slug\" = 'somes'",
            &[],
        )
        .unwrap();
    assert_eq!(
        json[0],
        [
            Value::Text("[]".into()),
            Value::Text("{\"note\":\"\",\"weight\":0,\"score\":null}".into())
        ]
    );
}

#[test]
fn keys_assigned_and_taken() {
    let db = db();
    // An i64 key is assigned by SQLite; the struct's is ignored on insert.
    let a = Task::insert(
        &db,
        &Task {
            id: 999,
            ..task("a")
        },
    )
    .unwrap();
    let b = Task::insert(&db, &task("b")).unwrap();
    assert_eq!((a.id, b.id), (1, 2));
    assert_eq!(Task::get(&db, 999).unwrap(), None);

    // Upsert takes the struct's key: a new row, then a replacement in place.
    let depth0 = depth(&db);
    let c = Task::upsert(
        &db,
        &Task {
            id: 10,
            ..task("c")
        },
    )
    .unwrap();
    assert_eq!(c.id, 10);
    let c2 = Task::upsert(
        &db,
        &Task {
            id: 10,
            text: "changed".into(),
            ..task("c")
        },
    )
    .unwrap();
    assert_eq!(c2.text, "changed");
    assert_eq!(Task::get(&db, 10).unwrap(), Some(c2));
    assert_eq!(depth(&db), depth0 + 2);
    assert_eq!(all(&db).len(), 3);

    // A String key comes from the struct.
    let d = Doc::insert(
        &db,
        &Doc {
            name: "readme".into(),
            body: "hi".into(),
        },
    )
    .unwrap();
    assert_eq!(d.name, "readme");
    assert_eq!(
        last_change(&db),
        (Value::Text("docs".into()), Value::Text("readme".into()))
    );
    let depth1 = depth(&db);
    assert!(matches!(Doc::insert(&db, &d), Err(Error::Primary(_))));
    assert_eq!(depth(&db), depth1, "a refused insert records nothing");
}

#[test]
fn update_upsert_delete_and_the_outbox() {
    let db = db();
    let a = round_trip(&db, &task("a"));
    let b = round_trip(&db, &task("b"));
    assert_eq!(depth(&db), 2);

    // Update changes every non-key column, one record.
    let changed = Task {
        a_i32: 7,
        text: "new".into(),
        o_bytes: Some(vec![1]),
        tags: vec!["t".into()],
        ..a.clone()
    };
    assert_eq!(Task::update(&db, &changed).unwrap(), changed);
    assert_eq!(Task::get(&db, a.id).unwrap(), Some(changed.clone()));
    assert_eq!(depth(&db), 3);
    assert_eq!(
        last_change(&db),
        (Value::Text("tasks".into()), Value::Integer(a.id))
    );

    // A unique violation: refused, nothing changed, nothing recorded.
    let before = all(&db);
    let clash = Task {
        slug: "a".into(),
        ..b.clone()
    };
    assert!(matches!(Task::update(&db, &clash), Err(Error::Primary(_))));
    assert!(matches!(Task::insert(&db, &clash), Err(Error::Primary(_))));
    assert!(matches!(
        Task::upsert(&db, &Task { id: 50, ..clash }),
        Err(Error::Primary(_))
    ));
    assert_eq!(all(&db), before);
    assert_eq!(depth(&db), 3);

    // Update of a missing row.
    match Task::update(
        &db,
        &Task {
            id: 404,
            ..task("z")
        },
    ) {
        Err(Error::NotFound { table }) => assert_eq!(table, "tasks"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(depth(&db), 3);

    // Delete: a missing row is `false` and records nothing; an existing one `true`, one record.
    assert!(!Task::delete(&db, 404).unwrap());
    assert_eq!(depth(&db), 3);
    assert!(Task::delete(&db, b.id).unwrap());
    assert_eq!(depth(&db), 4);
    assert_eq!(
        last_change(&db),
        (Value::Text("tasks".into()), Value::Integer(b.id))
    );
    assert_eq!(Task::get(&db, b.id).unwrap(), None);
    assert!(!Task::delete(&db, b.id).unwrap());
    assert_eq!(depth(&db), 4);
    assert_eq!(all(&db), [changed]);

    assert!(!Doc::delete(&db, "nope").unwrap());
    assert_eq!(depth(&db), 4);
}

#[test]
fn listing_pages_by_key() {
    let db = db();
    let ids: Vec<i64> = (0..25)
        .map(|i| Task::insert(&db, &task(&format!("s{i}"))).unwrap().id)
        .collect();
    let mut seen = Vec::new();
    let mut page = Page::first(10);
    loop {
        let rows = Task::list(&db, &page).unwrap();
        assert!(rows.len() <= 10);
        let Some(last) = rows.last() else { break };
        page = Page::after(last.id, 10);
        seen.extend(rows.iter().map(|r| r.id));
    }
    assert_eq!(seen, ids);

    let desc: Vec<i64> = Task::list(&db, &Page::first(5).desc())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(desc, [25, 24, 23, 22, 21]);
    let after: Vec<i64> = Task::list(&db, &Page::after(21, 3).desc())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(after, [20, 19, 18]);
    assert!(Task::list(&db, &Page::first(0)).unwrap().is_empty());
}

/// JSON has no NaN or infinity: serde_json would write `null`, and the row would come back with
/// `None` in its place (or not decode at all). Such a value is refused, and nothing is written.
#[test]
fn json_values_with_non_finite_floats_are_refused() {
    let db = db();
    let depth0 = depth(&db);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let row = Task {
            meta: Some(Meta {
                note: "n".into(),
                weight: 1,
                score: Some(bad),
            }),
            ..task("json")
        };
        match Task::insert(&db, &row) {
            Err(Error::Json { column, .. }) => assert_eq!(column, "meta"),
            other => panic!("{bad}: expected a JSON error, got {other:?}"),
        }
    }
    assert!(all(&db).is_empty());
    assert_eq!(depth(&db), depth0);
    // Finite floats, nested, are fine.
    round_trip(
        &db,
        &Task {
            meta: Some(Meta {
                note: "n".into(),
                weight: 1,
                score: Some(-1e-300),
            }),
            ..task("json")
        },
    );
}
