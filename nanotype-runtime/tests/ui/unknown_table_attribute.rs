#[nanotype::table(table = "tasks")]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
}

fn main() {}
