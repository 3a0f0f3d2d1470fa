#[nanotype::table]
struct Flag {
    #[nanotype(primary_key)]
    on: bool,
}

fn main() {}
