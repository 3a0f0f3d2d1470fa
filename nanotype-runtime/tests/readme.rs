//! The README's example struct produces exactly the DDL the README shows.

#[nanotype::table(name = "tasks")]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index)]
    pub status: String,
    pub title: String,
}

#[test]
fn readme_shows_the_ddl_the_macro_emits() {
    let readme = include_str!("../../README.md");
    for ddl in [Task::PRIMARY_DDL, Task::REPLICA_DDL] {
        assert!(
            readme.contains(&format!("```sql\n{ddl}\n```")),
            "README.md does not show:\n{ddl}"
        );
    }
}
