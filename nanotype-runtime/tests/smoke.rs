use nanotype::native::NativePrimary;
use nanotype::{outbox, Page};

#[nanotype::table(name = "tasks", index(status, title))]
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index)]
    pub status: String,
    #[nanotype(default = "untitled")]
    pub title: String,
    pub due: Option<i64>,
    #[nanotype(json)]
    pub tags: Vec<String>,
}

#[test]
fn insert_get_list() {
    let db = NativePrimary::open_in_memory().unwrap();
    outbox::install(&db).unwrap();
    db.execute_batch_for_test(Task::PRIMARY_DDL);
    let t = Task::insert(
        &db,
        &Task {
            id: 0,
            status: "open".into(),
            title: "a".into(),
            due: None,
            tags: vec!["x".into()],
        },
    )
    .unwrap();
    assert_eq!(t.id, 1);
    let got = Task::get(&db, 1).unwrap().unwrap();
    assert_eq!(got, t);
    assert_eq!(Task::list(&db, &Page::first(10)).unwrap().len(), 1);
    assert_eq!(outbox::depth(&db).unwrap(), 1);
    println!("{}\n{}", Task::PRIMARY_DDL, Task::REPLICA_DDL);
}

trait T {
    fn execute_batch_for_test(&self, s: &str);
}
impl T for NativePrimary {
    fn execute_batch_for_test(&self, s: &str) {
        nanotype::Primary::execute_batch(self, s).unwrap()
    }
}
