#[nanotype::table]
struct Task(i64, String);

fn main() {}
