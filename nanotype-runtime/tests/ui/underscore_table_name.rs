// The runtime's own routes start with `_` (`/rooms/{room}/_sync`): no table may.
#[nanotype::table(name = "_sync")]
pub struct Odd {
    #[nanotype(primary_key)]
    pub id: i64,
}

fn main() {}
