#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: Option<i64>,
    title: String,
}

fn main() {}
