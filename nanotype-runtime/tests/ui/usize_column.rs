#[nanotype::table]
struct Counter {
    #[nanotype(primary_key)]
    id: i64,
    hits: Option<usize>,
}

fn main() {}
