#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(default = "x")]
    count: i32,
}

fn main() {}
