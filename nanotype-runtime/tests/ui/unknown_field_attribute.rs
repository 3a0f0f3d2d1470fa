#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(indexed)]
    title: String,
}

fn main() {}
