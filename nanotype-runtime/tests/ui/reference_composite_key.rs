// A reference names a one-column key: a table keyed by two fields cannot be referenced, and the
// build fails at `schema!`, saying so.
#[nanotype::table(name = "members")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Member {
    #[nanotype(primary_key)]
    pub team: i64,
    #[nanotype(primary_key)]
    pub user: String,
}

#[nanotype::table(name = "badges")]
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Badge {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "members.team")]
    pub team: i64,
}

nanotype::schema!(pub App = [Member, Badge]);

fn main() {}
