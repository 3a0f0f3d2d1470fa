#[nanotype::table(name = "bad name")]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
}

fn main() {}
