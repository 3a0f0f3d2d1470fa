// `validate` is a flag: a value is refused on the flag.
#[nanotype::table(name = "notes", validate = "check_note")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Note {
    #[nanotype(primary_key)]
    pub id: i64,
    pub text: String,
}

fn main() {}
