#[nanotype::table]
struct Task<T> {
    #[nanotype(primary_key)]
    id: i64,
    payload: T,
}

fn main() {}
