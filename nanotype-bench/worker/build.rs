// The Worker embeds the example's Durable Object migrations; rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
