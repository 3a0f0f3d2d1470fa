// Every field of a composite key is checked like a lone key: none may be an `Option`.
#[nanotype::table(name = "members")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Member {
    #[nanotype(primary_key)]
    pub team: i64,
    #[nanotype(primary_key)]
    pub user: Option<String>,
}

fn main() {}
