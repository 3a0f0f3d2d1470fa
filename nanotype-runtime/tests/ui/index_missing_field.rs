#[nanotype::table(index(status, created_at))]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    status: String,
}

fn main() {}
