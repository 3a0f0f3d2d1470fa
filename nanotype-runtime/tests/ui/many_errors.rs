#[nanotype::table(name = "bad name", index(missing))]
struct Task {
    id: i64,
    #[nanotype(default = "x", colour)]
    count: i32,
    room_id: String,
    hits: u64,
}

fn main() {}
