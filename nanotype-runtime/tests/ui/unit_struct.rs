#[nanotype::table]
struct Task;

fn main() {}
