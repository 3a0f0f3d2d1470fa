#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    room_id: String,
}

fn main() {}
