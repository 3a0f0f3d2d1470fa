#[nanotype::table]
struct Task {
    id: i64,
    title: String,
}

fn main() {}
