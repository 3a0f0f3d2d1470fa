// One mistake, one error: code that uses the struct's generated functions adds none.
#[nanotype::table(name = "notes")]
pub struct Note {
    pub id: i64,
    pub text: String,
}

fn use_it<P: nanotype::Primary>(db: &P) -> nanotype::Result<()> {
    let note = Note::insert(db, &Note { id: 0, text: "x".into() })?;
    let _ = Note::get(db, note.id)?;
    let _ = Note::list(db, &nanotype::Page::first(10))?;
    let _ = Note::PRIMARY_DDL;
    Ok(())
}

fn main() {
    let _ = use_it::<nanotype::native::NativePrimary>;
}
