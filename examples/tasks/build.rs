// The Worker embeds the generated Durable Object migrations; rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
