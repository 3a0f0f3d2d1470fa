#[nanotype::table]
enum Status {
    Open,
    Done,
}

fn main() {}
