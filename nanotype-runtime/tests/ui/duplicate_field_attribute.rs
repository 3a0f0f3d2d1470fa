#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(rename = "name", rename = "label")]
    title: String,
}

fn main() {}
