// A reference to a table the schema does not list fails the build at `schema!`, naming it.
#[nanotype::table(name = "tasks")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
}

#[nanotype::table(name = "comments")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "taks.id", on_delete = "cascade")]
    pub task_id: i64,
}

nanotype::schema!(pub App = [Task, Comment]);

fn main() {}
