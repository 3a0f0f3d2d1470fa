// A reference whose type differs from the referenced key, or that names a column that is not
// the key, fails the build at `schema!`.
#[nanotype::table(name = "tasks")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    pub title: String,
}

#[nanotype::table(name = "comments")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "tasks.id")]
    pub task_id: String,
}

nanotype::schema!(pub App = [Task, Comment]);

#[nanotype::table(name = "notes")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Note {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "tasks.title")]
    pub task_title: String,
}

nanotype::schema!(pub Notes = [Task, Note]);

fn main() {}
