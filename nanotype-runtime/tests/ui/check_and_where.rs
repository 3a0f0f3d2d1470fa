// `check` and an index's `where` take one SQL condition each, checked on their own tokens.
#[nanotype::table(name = "tasks", check = "", index(status, where = "done = 0; DROP TABLE x"), check = "(a > 0")]
pub struct Task {
    #[nanotype(primary_key)]
    pub id: i64,
    pub status: String,
    pub done: bool,
    pub a: i64,
}

fn main() {}
