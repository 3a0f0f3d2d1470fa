struct Point {
    x: i32,
}

#[nanotype::table]
struct Shape {
    #[nanotype(primary_key)]
    id: i64,
    #[nanotype(json)]
    origin: Point,
}

fn main() {}
