#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(primary_key)]
    slug: String,
}

fn main() {}
