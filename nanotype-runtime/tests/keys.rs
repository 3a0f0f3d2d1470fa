//! Keys are never reused in a room: a key the database assigned is not handed out again after
//! its row is deleted, so a retried or stale request can never reach a newer row.

mod support;

use nanotype::native::NativePrimary;
use nanotype::Primary;
use support::*;

fn db() -> NativePrimary {
    let db = NativePrimary::open_in_memory().unwrap();
    db.execute_batch(Item::PRIMARY_DDL).unwrap();
    nanotype::outbox::install(&db).unwrap();
    db
}

fn create(db: &NativePrimary, rng: &mut Rng) -> i64 {
    Item::insert(db, &random_item(rng, "k")).unwrap().id
}

#[test]
fn deleted_keys_are_never_handed_out_again() {
    let db = db();
    let mut rng = Rng::new(3);
    assert_eq!((create(&db, &mut rng), create(&db, &mut rng)), (1, 2));
    assert!(Item::delete(&db, 2).unwrap());
    assert_eq!(
        create(&db, &mut rng),
        3,
        "2 was the largest key when deleted"
    );
    assert!(Item::delete(&db, 1).unwrap());
    assert_eq!(create(&db, &mut rng), 4);
    for id in [3, 4] {
        assert!(Item::delete(&db, id).unwrap());
    }
    assert_eq!(
        create(&db, &mut rng),
        5,
        "an emptied table goes on from its high-water mark"
    );
    // A key given by the caller (upsert) above the mark moves it on too.
    let mut big = random_item(&mut rng, "k");
    big.id = 100;
    Item::upsert(&db, &big).unwrap();
    assert!(Item::delete(&db, 100).unwrap());
    assert_eq!(create(&db, &mut rng), 101);
}

#[test]
fn the_mark_is_written_only_when_the_largest_row_goes() {
    let db = db();
    let mut rng = Rng::new(4);
    for _ in 0..5 {
        create(&db, &mut rng);
    }
    let marks = |db: &NativePrimary| {
        db.query("SELECT \"tbl\", \"hwm\" FROM \"_nt_keys\"", &[])
            .unwrap()
    };
    assert!(Item::delete(&db, 2).unwrap());
    assert!(
        marks(&db).is_empty(),
        "deleting a key below the largest writes nothing"
    );
    assert!(Item::delete(&db, 5).unwrap());
    assert_eq!(
        marks(&db),
        vec![vec![
            nanotype::Value::Text("items".into()),
            nanotype::Value::Integer(5)
        ]]
    );
    // A failed delete (no such row) records nothing and changes nothing.
    assert!(!Item::delete(&db, 42).unwrap());
    assert_eq!(marks(&db).len(), 1);
    assert_eq!(create(&db, &mut rng), 6);
}
