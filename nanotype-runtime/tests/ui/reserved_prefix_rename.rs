#[nanotype::table]
struct Task {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(rename = "_nt_seq")]
    seq: i64,
}

fn main() {}
