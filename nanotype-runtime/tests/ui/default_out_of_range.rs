#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(default = 300)]
    priority: u8,
}

fn main() {}
