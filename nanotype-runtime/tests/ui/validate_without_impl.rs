// `validate` without the `Validate` impl: one error, on the flag.
#[nanotype::table(name = "notes", validate)]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Note {
    #[nanotype(primary_key)]
    pub id: i64,
    pub text: String,
}

fn main() {}
