// One mistake, one error: a table struct with an error, listed in the schema, adds none there.
#[nanotype::table(name = "notes")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Note {
    pub id: i64,
    pub text: String,
}

nanotype::schema!(App = [Note]);

fn main() {}
