use std::collections::HashMap;

#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    labels: HashMap<String, String>,
}

fn main() {}
