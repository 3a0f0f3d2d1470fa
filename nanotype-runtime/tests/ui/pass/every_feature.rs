//! Every attribute and every supported type in one table; it must compile, and the generated
//! functions must have the documented signatures.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub source: String,
}

#[nanotype::table(
    name = "items",
    renamed_from = "things",
    index(status, score),
    unique(owner, r#type)
)]
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(index, default = "open")]
    pub status: String,
    #[nanotype(unique, rename = "handle", renamed_from = "nick")]
    pub slug: String,
    pub owner: String,
    pub r#type: i32,
    #[nanotype(default = -3)]
    pub tiny: i8,
    #[nanotype(default = -1.5)]
    pub score: f64,
    pub ratio: f32,
    pub small: i16,
    pub byte: u8,
    pub word: u16,
    #[nanotype(default = 4000000000)]
    pub dword: u32,
    #[nanotype(default = false)]
    pub done: bool,
    pub data: Vec<u8>,
    pub due: Option<i64>,
    #[nanotype(index)]
    pub assignee: Option<String>,
    pub attachment: Option<Vec<u8>>,
    #[nanotype(json)]
    pub tags: Vec<String>,
    #[nanotype(json)]
    pub meta: Option<Meta>,
}

#[nanotype::table]
pub struct KeyedByText {
    #[nanotype(primary_key)]
    pub name: String,
    pub value: i64,
}

fn main() {
    use nanotype::native::NativePrimary;
    use nanotype::native::NativeReplica;
    use nanotype::read::ReplicaReads;
    use nanotype::Page;

    let _: &'static str = Item::PRIMARY_DDL;
    let _: &'static str = Item::REPLICA_DDL;
    let _: &'static nanotype::schema::Table = Item::table_def();
    assert_eq!(KeyedByText::table_def().name, "keyed_by_text");

    let _ = |db: &NativePrimary, row: &Item| -> nanotype::Result<()> {
        let _: Item = Item::insert(db, row)?;
        let _: Item = Item::upsert(db, row)?;
        let _: Item = Item::update(db, row)?;
        let _: Option<Item> = Item::get(db, 1)?;
        let _: Vec<Item> = Item::list(db, &Page::first(10))?;
        let _: bool = Item::delete(db, 1)?;
        let _: Option<KeyedByText> = KeyedByText::get(db, "a")?;
        let _: bool = KeyedByText::delete(db, "a")?;
        Ok(())
    };
    let _ = async |r: &ReplicaReads<NativeReplica>| -> nanotype::Result<()> {
        let page = Page::first(10);
        let _: Option<Item> = Item::room_get(r, "room", 1).await?;
        let _: Vec<Item> = Item::room_list(r, "room", &page).await?;
        let _: i64 = Item::room_count(r, "room").await?;
        let _: Vec<Item> = Item::room_find_by_status(r, "room", "open", &page).await?;
        let _: Vec<Item> = Item::room_find_by_slug(r, "room", "a", &page).await?;
        let _: Vec<Item> = Item::room_find_by_owner(r, "room", "me", &page).await?;
        let _: Vec<Item> = Item::room_find_by_assignee(r, "room", None, &page).await?;
        let _: Option<KeyedByText> = KeyedByText::room_get(r, "room", "a").await?;
        Ok(())
    };
}

/// References to another table and to its own: a schema that lists both compiles.
#[nanotype::table(name = "parts")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    #[nanotype(primary_key)]
    pub id: i64,
    #[nanotype(references = "parts.id", on_delete = "set_null")]
    pub parent_id: Option<i64>,
    #[nanotype(references = "owners.name", on_delete = "cascade")]
    pub owner: String,
}

#[nanotype::table(name = "owners")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    #[nanotype(primary_key)]
    pub name: String,
}

nanotype::schema!(pub Parts = [Owner, Part]);

/// A partial unique index and check constraints.
#[nanotype::table(
    name = "slots",
    unique(owner, starts_at, where = "cancelled = 0"),
    check = "starts_at < ends_at",
    check = "length(owner) > 0"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    #[nanotype(primary_key)]
    pub id: i64,
    pub owner: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub cancelled: bool,
}
