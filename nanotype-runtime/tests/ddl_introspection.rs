//! The DDL of a table using every supported type and index kind, executed on real SQLite: what
//! SQLite reports (`PRAGMA table_info`, `index_list`, `index_info`) must be what the model says,
//! in the room's database and in the replica. And the macro's DDL must be byte-identical to what
//! the schema crate renders from the same source text, as `gen-migrations` does.

use nanotype::schema::{ddl, Column, SqlType, Table, ValueKind, ROOM_COLUMN};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

/// Emits the items and keeps their source text, so the test can parse exactly what the macro saw.
macro_rules! with_source {
    ($($item:tt)*) => {
        $($item)*
        const SOURCE: &str = stringify!($($item)*);
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub source: String,
    pub weight: u32,
}

with_source! {
    #[nanotype::table(name = "tasks", index(status, created_at), unique(owner, slug))]
    #[derive(Debug, Clone, PartialEq)]
    pub struct Task {
        #[nanotype(primary_key)]
        pub id: i64,
        pub tiny: i8,
        pub small: i16,
        #[nanotype(default = -7)]
        pub medium: i32,
        pub created_at: i64,
        #[nanotype(default = 255)]
        pub byte: u8,
        pub word: u16,
        #[nanotype(default = 4294967295)]
        pub dword: u32,
        pub ratio: f32,
        #[nanotype(default = 0.5)]
        pub score: f64,
        #[nanotype(default = false)]
        pub done: bool,
        #[nanotype(index, default = "it's open")]
        pub status: String,
        #[nanotype(unique, rename = "handle")]
        pub slug: String,
        pub owner: String,
        pub data: Vec<u8>,
        pub due: Option<i64>,
        #[nanotype(index)]
        pub assignee: Option<String>,
        pub weight: Option<f64>,
        pub attachment: Option<Vec<u8>>,
        pub flag: Option<bool>,
        pub level: Option<u16>,
        #[nanotype(json)]
        pub tags: Vec<String>,
        #[nanotype(json)]
        pub meta: Option<Meta>,
    }

    /// A table keyed by text: the key is a plain `PRIMARY KEY NOT NULL` with its own index.
    #[nanotype::table(renamed_from = "labels")]
    #[derive(Debug, Clone, PartialEq)]
    pub struct Tag {
        #[nanotype(primary_key)]
        pub name: String,
        #[nanotype(rename = "uses", renamed_from = "count", default = 0)]
        pub use_count: i32,
    }
}

/// The type mapping (the README's table): field → (kind, nullable, SQL type).
#[test]
fn the_model_maps_every_type() {
    use ValueKind::*;
    let expected: &[(&str, ValueKind, bool, SqlType)] = &[
        ("id", I64, false, SqlType::Integer),
        ("tiny", I8, false, SqlType::Integer),
        ("small", I16, false, SqlType::Integer),
        ("medium", I32, false, SqlType::Integer),
        ("created_at", I64, false, SqlType::Integer),
        ("byte", U8, false, SqlType::Integer),
        ("word", U16, false, SqlType::Integer),
        ("dword", U32, false, SqlType::Integer),
        ("ratio", F32, false, SqlType::Real),
        ("score", F64, false, SqlType::Real),
        ("done", Bool, false, SqlType::Integer),
        ("status", String, false, SqlType::Text),
        ("slug", String, false, SqlType::Text),
        ("owner", String, false, SqlType::Text),
        ("data", Bytes, false, SqlType::Blob),
        ("due", I64, true, SqlType::Integer),
        ("assignee", String, true, SqlType::Text),
        ("weight", F64, true, SqlType::Real),
        ("attachment", Bytes, true, SqlType::Blob),
        ("flag", Bool, true, SqlType::Integer),
        ("level", U16, true, SqlType::Integer),
        ("tags", Json, false, SqlType::Text),
        ("meta", Json, true, SqlType::Text),
    ];
    let def = Task::table_def();
    let got: Vec<_> = def
        .columns
        .iter()
        .map(|c| (c.field.as_ref(), c.kind, c.nullable, c.sql_type()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(def.column("handle").map(|c| c.field.as_ref()), Some("slug"));
    assert!(def.column("slug").is_none(), "the column is renamed");
    assert_eq!(def.primary_key().map(|c| c.name.as_ref()), Some("id"));
    assert!(def.key_is_rowid());
    assert!(!Tag::table_def().key_is_rowid());
    assert_eq!(Tag::table_def().name, "tag");
    assert_eq!(Tag::table_def().renamed_from.as_deref(), Some("labels"));
    assert_eq!(
        Tag::table_def()
            .column("uses")
            .and_then(|c| c.renamed_from.as_deref()),
        Some("count")
    );
    let index_names: Vec<_> = def
        .indexes
        .iter()
        .map(|i| (i.name.as_ref(), i.unique))
        .collect();
    assert_eq!(
        index_names,
        [
            ("tasks_status_idx", false),
            ("tasks_handle_key", true),
            ("tasks_assignee_idx", false),
            ("tasks_status_created_at_idx", false),
            ("tasks_owner_handle_key", true),
        ]
    );
}

#[derive(Debug, PartialEq)]
struct ColumnInfo {
    name: String,
    declared: String,
    notnull: bool,
    default: Option<String>,
    pk: i64,
}

fn table_info(conn: &Connection, table: &str) -> Vec<ColumnInfo> {
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap();
    stmt.query_map([table], |r| {
        Ok(ColumnInfo {
            name: r.get(0)?,
            declared: r.get(1)?,
            notnull: r.get::<_, i64>(2)? != 0,
            default: r.get(3)?,
            pk: r.get(4)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// (name, unique, origin) of every index of `table`, sorted by name.
fn index_list(conn: &Connection, table: &str) -> Vec<(String, bool, String)> {
    let mut stmt = conn
        .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1) ORDER BY name")
        .unwrap();
    stmt.query_map([table], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn index_columns(conn: &Connection, index: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
        .unwrap();
    stmt.query_map([index], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// What `PRAGMA table_info` must say about `col` in the room's database.
fn expected_primary_column(table: &Table, col: &Column) -> ColumnInfo {
    let rowid_key = col.primary_key && table.key_is_rowid();
    ColumnInfo {
        name: col.name.to_string(),
        declared: col.sql_type().as_sql().to_owned(),
        // The i64 key is the rowid alias, declared `INTEGER PRIMARY KEY`: never NULL in fact
        // (SQLite assigns it), but not declared NOT NULL.
        notnull: !(col.nullable || rowid_key),
        default: col.default.as_ref().map(nanotype_schema::Literal::to_sql),
        pk: i64::from(col.primary_key),
    }
}

fn check_primary(table: &Table, primary_ddl: &str) {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(primary_ddl).unwrap();
    assert!(
        !primary_ddl.contains(ROOM_COLUMN),
        "one DO is one room: no room_id"
    );

    let expected: Vec<ColumnInfo> = table
        .columns
        .iter()
        .map(|c| expected_primary_column(table, c))
        .collect();
    assert_eq!(table_info(&conn, &table.name), expected);

    let mut expected_indexes: Vec<(String, bool, String)> = table
        .indexes
        .iter()
        .map(|i| (i.name.to_string(), i.unique, "c".to_owned()))
        .collect();
    let key = table.primary_key().unwrap();
    if !table.key_is_rowid() {
        // A non-rowid key gets SQLite's own unique index.
        expected_indexes.push((
            format!("sqlite_autoindex_{}_1", table.name),
            true,
            "pk".into(),
        ));
    }
    expected_indexes.sort();
    assert_eq!(index_list(&conn, &table.name), expected_indexes);
    for index in table.indexes.iter() {
        let cols: Vec<String> = index
            .columns
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(index_columns(&conn, &index.name), cols, "{}", index.name);
    }
    if !table.key_is_rowid() {
        assert_eq!(
            index_columns(&conn, &format!("sqlite_autoindex_{}_1", table.name)),
            [key.name.to_string()]
        );
    }
}

fn check_replica(table: &Table, replica_ddl: &str) {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(ddl::REPLICA_META).unwrap();
    conn.execute_batch(replica_ddl).unwrap();

    let mut expected = vec![ColumnInfo {
        name: ROOM_COLUMN.into(),
        declared: "TEXT".into(),
        notnull: true,
        default: None,
        pk: 1,
    }];
    expected.extend(table.columns.iter().map(|c| ColumnInfo {
        name: c.name.to_string(),
        declared: c.sql_type().as_sql().to_owned(),
        notnull: !c.nullable,
        default: c.default.as_ref().map(nanotype_schema::Literal::to_sql),
        // The replica's key is (room_id, key).
        pk: if c.primary_key { 2 } else { 0 },
    }));
    assert_eq!(table_info(&conn, &table.name), expected);

    let key_index = format!("sqlite_autoindex_{}_1", table.name);
    let mut expected_indexes: Vec<(String, bool, String)> = table
        .indexes
        .iter()
        .map(|i| (i.name.to_string(), i.unique, "c".to_owned()))
        .collect();
    expected_indexes.push((key_index.clone(), true, "pk".into()));
    expected_indexes.sort();
    assert_eq!(index_list(&conn, &table.name), expected_indexes);

    let key = table.primary_key().unwrap();
    assert_eq!(
        index_columns(&conn, &key_index),
        [ROOM_COLUMN.to_owned(), key.name.to_string()]
    );
    for index in table.indexes.iter() {
        let mut cols = vec![ROOM_COLUMN.to_owned()];
        cols.extend(index.columns.iter().map(std::string::ToString::to_string));
        assert_eq!(index_columns(&conn, &index.name), cols, "{}", index.name);
    }
}

#[test]
fn primary_ddl_matches_the_model() {
    check_primary(Task::table_def(), Task::PRIMARY_DDL);
    check_primary(Tag::table_def(), Tag::PRIMARY_DDL);
}

#[test]
fn replica_ddl_matches_the_model() {
    check_replica(Task::table_def(), Task::REPLICA_DDL);
    check_replica(Tag::table_def(), Tag::REPLICA_DDL);
}

/// The trait's constants and the inherent ones are the same text.
#[test]
fn trait_and_inherent_constants_agree() {
    assert_eq!(<Task as nanotype::Table>::PRIMARY_DDL, Task::PRIMARY_DDL);
    assert_eq!(<Task as nanotype::Table>::REPLICA_DDL, Task::REPLICA_DDL);
    assert!(std::ptr::eq(
        <Task as nanotype::Table>::DEF,
        Task::table_def()
    ));
}

/// gen-migrations parses source files with the schema crate; it must get the same model and
/// byte-identical DDL as the macro.
#[test]
fn macro_and_schema_crate_render_identical_ddl() {
    let file = syn::parse_file(SOURCE).expect("the test's source parses");
    let parsed: Vec<_> = nanotype_schema::parse::find_tables(&file.items)
        .into_iter()
        .map(|r| r.expect("the table is valid"))
        .collect();
    assert_eq!(parsed.len(), 2);
    let by_macro: [(&Table, &str, &str); 2] = [
        (Task::table_def(), Task::PRIMARY_DDL, Task::REPLICA_DDL),
        (Tag::table_def(), Tag::PRIMARY_DDL, Tag::REPLICA_DDL),
    ];
    for (p, (def, primary, replica)) in parsed.iter().zip(by_macro) {
        assert_eq!(&p.table, def);
        assert_eq!(nanotype_schema::ddl::primary_ddl(&p.table), primary);
        assert_eq!(nanotype_schema::ddl::replica_ddl(&p.table), replica);
        assert!(nanotype_schema::check::check_table(&p.table).is_empty());
    }

    // Parsing one struct with `parse_table`, as the macro does, gives the same again.
    let item = file
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Struct(s) if s.ident == "Task" => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    let attr = item
        .attrs
        .iter()
        .find(|a| nanotype_schema::parse::is_table_attr(a))
        .unwrap();
    let args = match &attr.meta {
        syn::Meta::List(l) => l.tokens.clone(),
        _ => proc_macro2::TokenStream::new(),
    };
    let mut input: syn::DeriveInput = item.clone().into();
    input
        .attrs
        .retain(|a| !nanotype_schema::parse::is_table_attr(a));
    let one = nanotype_schema::parse::parse_table(args, &input).unwrap();
    assert_eq!(
        nanotype_schema::ddl::primary_ddl(&one.table),
        Task::PRIMARY_DDL
    );
    assert_eq!(
        nanotype_schema::ddl::replica_ddl(&one.table),
        Task::REPLICA_DDL
    );
}

/// The exact text, so a change to the rendering is a visible diff (and a new migration).
#[test]
fn rendered_text_of_a_small_table() {
    assert_eq!(
        Tag::PRIMARY_DDL,
        "CREATE TABLE \"tag\" (\n    \"name\" TEXT PRIMARY KEY NOT NULL,\n    \"uses\" INTEGER NOT NULL DEFAULT 0\n);"
    );
    assert_eq!(
        Tag::REPLICA_DDL,
        "CREATE TABLE \"tag\" (\n    \"room_id\" TEXT NOT NULL,\n    \"name\" TEXT NOT NULL,\n    \"uses\" INTEGER NOT NULL DEFAULT 0,\n    PRIMARY KEY (\"room_id\", \"name\")\n);"
    );
}
