#[nanotype::table]
struct Counter {
    #[nanotype(primary_key)]
    id: i64,
    hits: u64,
}

fn main() {}
