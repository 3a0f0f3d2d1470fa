// `references` and `on_delete` are checked on their own tokens.
#[nanotype::table(name = "comments")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Comment {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "tasks")]
    pub a: i64,
    #[nanotype(references = "tasks.id", on_delete = "explode")]
    pub b: i64,
    #[nanotype(references = "tasks.id", on_delete = "set_null")]
    pub c: i64,
    #[nanotype(on_delete = "cascade")]
    pub d: i64,
}

fn main() {}
