#[nanotype::table]
struct Task {
    #[nanotype(primary_key = true)]
    id: i64,
    #[nanotype(index(title), unique)]
    title: String,
}

fn main() {}
