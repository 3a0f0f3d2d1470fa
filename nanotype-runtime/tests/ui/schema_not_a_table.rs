// Only `#[nanotype::table]` structs can be listed in a schema.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct NotATable {
    pub id: i64,
}

nanotype::schema!(App = [NotATable]);

fn main() {}
