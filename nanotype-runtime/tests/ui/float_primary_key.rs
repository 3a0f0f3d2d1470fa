#[nanotype::table]
struct Reading {
    #[nanotype(primary_key)]
    at: f64,
    value: f64,
}

fn main() {}
