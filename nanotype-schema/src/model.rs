//! The plain data of a schema: tables, columns, types, indexes.
//!
//! Every string and list is a `Cow<'static, _>` so that the macro can emit a model as a `const`
//! (borrowed) while the CLI and tests build the same model at run time (owned).

use std::borrow::Cow;

/// A list in the model: borrowed when the macro emitted it as a constant, owned otherwise.
pub type List<T> = Cow<'static, [T]>;
/// A name in the model.
pub type Name = Cow<'static, str>;

/// One table, as declared by one `#[nanotype::table]` struct.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// SQL table name.
    pub name: Name,
    /// The Rust struct the table was declared by (for messages).
    pub rust_name: Name,
    /// The table's previous name, for a rename migration.
    pub renamed_from: Option<Name>,
    /// Columns in declaration order.
    pub columns: List<Column>,
    /// Secondary indexes (field `index`/`unique` and table-level `index(..)`/`unique(..)`).
    pub indexes: List<Index>,
    /// `CHECK` constraints: SQL expressions every row must satisfy (table-level `check = "…"`).
    pub checks: List<Name>,
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// SQL column name.
    pub name: Name,
    /// The Rust field it comes from.
    pub field: Name,
    /// What the Rust value is; decides the SQL type.
    pub kind: ValueKind,
    /// `Option<T>`: NULL allowed. Anything else is NOT NULL.
    pub nullable: bool,
    /// Part of the table's primary key. Several columns have it in a composite key, which is
    /// then made of them in declaration order.
    pub primary_key: bool,
    /// `DEFAULT` for the column, used for new rows without a value and to fill old rows when a
    /// column is added.
    pub default: Option<Literal>,
    /// The column's previous name, for a rename migration.
    pub renamed_from: Option<Name>,
    /// `references = "table.column"`: the column holds a key of another table of the room.
    pub references: Option<Reference>,
    /// The struct's serde fills the field when JSON leaves it out (`#[serde(default)]` on the
    /// field or the struct): a request body may omit it. Not part of the table's SQL.
    pub serde_default: bool,
}

/// A foreign key: a column that holds the primary key of a row of another table (or its own) in
/// the same room. In the room's SQLite it references `table(column)`; in the replica
/// `(room_id, column)` references `table(room_id, key)`, so a reference never crosses rooms.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// The referenced table (SQL name).
    pub table: Name,
    /// The referenced column: the table's primary key (SQL name).
    pub column: Name,
    /// What deleting the referenced row does to the rows that reference it.
    pub on_delete: OnDelete,
    /// The messages a schema check gives when the referenced table is missing, when the column
    /// is not its key, and when the types differ (built with the model, so that a compile-time
    /// check can print them).
    pub problems: [Name; 3],
}

/// `on_delete = "…"` of a reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    /// Deleting a referenced row fails while rows reference it (the default; checked at the end
    /// of the statement).
    NoAction,
    /// Deleting a referenced row fails while rows reference it (checked at once).
    Restrict,
    /// Deleting a referenced row deletes the rows that reference it.
    Cascade,
    /// Deleting a referenced row sets the reference to NULL (an `Option` field only).
    SetNull,
}

impl OnDelete {
    /// The keyword in the attribute (`cascade`, …).
    pub fn keyword(self) -> &'static str {
        match self {
            OnDelete::NoAction => "no_action",
            OnDelete::Restrict => "restrict",
            OnDelete::Cascade => "cascade",
            OnDelete::SetNull => "set_null",
        }
    }

    /// The SQL action.
    pub fn sql(self) -> &'static str {
        match self {
            OnDelete::NoAction => "NO ACTION",
            OnDelete::Restrict => "RESTRICT",
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
        }
    }

    /// The action of a keyword.
    pub fn from_keyword(k: &str) -> Option<OnDelete> {
        [
            OnDelete::NoAction,
            OnDelete::Restrict,
            OnDelete::Cascade,
            OnDelete::SetNull,
        ]
        .into_iter()
        .find(|o| o.keyword() == k || o.sql().eq_ignore_ascii_case(k))
    }
}

impl Reference {
    /// The reference of `child_table.child_column` to `table.column`.
    pub fn new(
        child_table: &str,
        child_column: &str,
        table: &str,
        column: &str,
        on_delete: OnDelete,
    ) -> Reference {
        let what = format!("`{child_table}.{child_column}` references `{table}.{column}`");
        Reference {
            table: Cow::Owned(table.to_owned()),
            column: Cow::Owned(column.to_owned()),
            on_delete,
            problems: [
                Cow::Owned(format!("{what}, but no table `{table}` is in the schema")),
                Cow::Owned(format!(
                    "{what}, but `{column}` is not the primary key of `{table}`: a reference names a one-column key"
                )),
                Cow::Owned(format!("{what}, but their types differ")),
            ],
        }
    }
}
/// A secondary index (field `index`/`unique`, or table-level `index(..)`/`unique(..)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Index {
    /// SQL index name; the same in the room's SQLite and in the replica.
    pub name: Name,
    /// Column names (SQL names), in key order. The replica's index puts `room_id` first.
    pub columns: List<Name>,
    /// `UNIQUE`.
    pub unique: bool,
    /// A partial index's `WHERE` condition (SQL), if any.
    pub predicate: Option<Name>,
}

/// The Rust-level kind of a column's value. The SQL type follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `bool`.
    Bool,
    /// `String`.
    String,
    /// `Vec<u8>`.
    Bytes,
    /// Any serde type, stored as JSON text (`#[nanotype(json)]`).
    Json,
}

/// SQLite storage class of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// `INTEGER`.
    Integer,
    /// `REAL`.
    Real,
    /// `TEXT`.
    Text,
    /// `BLOB`.
    Blob,
}

/// A literal default value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// `true` or `false` (stored as 1 or 0).
    Bool(bool),
    /// A string.
    Text(Name),
}

impl ValueKind {
    /// The SQLite storage class of the kind.
    pub fn sql_type(self) -> SqlType {
        match self {
            ValueKind::I8
            | ValueKind::I16
            | ValueKind::I32
            | ValueKind::I64
            | ValueKind::U8
            | ValueKind::U16
            | ValueKind::U32
            | ValueKind::Bool => SqlType::Integer,
            ValueKind::F32 | ValueKind::F64 => SqlType::Real,
            ValueKind::String | ValueKind::Json => SqlType::Text,
            ValueKind::Bytes => SqlType::Blob,
        }
    }

    /// Whether a column of this kind may be the primary key (keys are compared and paged on,
    /// so only integers and text).
    pub fn can_be_key(self) -> bool {
        matches!(
            self,
            ValueKind::I8
                | ValueKind::I16
                | ValueKind::I32
                | ValueKind::I64
                | ValueKind::U8
                | ValueKind::U16
                | ValueKind::U32
                | ValueKind::String
        )
    }

    /// The inclusive range of an integer kind.
    pub fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            ValueKind::I8 => (i8::MIN.into(), i8::MAX.into()),
            ValueKind::I16 => (i16::MIN.into(), i16::MAX.into()),
            ValueKind::I32 => (i32::MIN.into(), i32::MAX.into()),
            ValueKind::I64 => (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
            ValueKind::U8 => (0, u8::MAX.into()),
            ValueKind::U16 => (0, u16::MAX.into()),
            ValueKind::U32 => (0, u32::MAX.into()),
            _ => return None,
        })
    }

    /// Does a default literal fit this kind?
    pub fn accepts(self, literal: &Literal) -> bool {
        match (self.sql_type(), literal) {
            (_, Literal::Bool(_)) => self == ValueKind::Bool,
            (SqlType::Integer, Literal::Integer(v)) => {
                self != ValueKind::Bool
                    && self
                        .int_range()
                        .is_some_and(|(lo, hi)| (lo..=hi).contains(v))
            }
            (SqlType::Real, Literal::Real(v)) => v.is_finite(),
            (SqlType::Real, Literal::Integer(_)) => true,
            (SqlType::Text, Literal::Text(_)) => self == ValueKind::String,
            _ => false,
        }
    }

    /// The name used in messages and in the README's type table.
    pub fn rust_name(self) -> &'static str {
        match self {
            ValueKind::I8 => "i8",
            ValueKind::I16 => "i16",
            ValueKind::I32 => "i32",
            ValueKind::I64 => "i64",
            ValueKind::U8 => "u8",
            ValueKind::U16 => "u16",
            ValueKind::U32 => "u32",
            ValueKind::F32 => "f32",
            ValueKind::F64 => "f64",
            ValueKind::Bool => "bool",
            ValueKind::String => "String",
            ValueKind::Bytes => "Vec<u8>",
            ValueKind::Json => "#[nanotype(json)] T",
        }
    }
}

/// Largest integer a JavaScript number holds exactly (2^53 − 1). Integers travel through
/// JavaScript in the Durable Object and D1 APIs, so `i64` values beyond ±this are refused at run
/// time on every backend (see the runtime's `Error::IntegerOutOfRange`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

impl SqlType {
    /// The type's SQL keyword.
    pub fn as_sql(self) -> &'static str {
        match self {
            SqlType::Integer => "INTEGER",
            SqlType::Real => "REAL",
            SqlType::Text => "TEXT",
            SqlType::Blob => "BLOB",
        }
    }

    /// Parse a declared type as SQLite reports it in `PRAGMA table_info`.
    pub fn from_declared(declared: &str) -> Option<SqlType> {
        match declared.to_ascii_uppercase().as_str() {
            "INTEGER" | "INT" => Some(SqlType::Integer),
            "REAL" => Some(SqlType::Real),
            "TEXT" => Some(SqlType::Text),
            "BLOB" => Some(SqlType::Blob),
            _ => None,
        }
    }
}

impl Table {
    /// A table with no indexes; see the builder methods for the rest.
    pub fn new(name: &str, rust_name: &str, columns: Vec<Column>) -> Table {
        Table {
            name: Cow::Owned(name.to_owned()),
            rust_name: Cow::Owned(rust_name.to_owned()),
            renamed_from: None,
            columns: Cow::Owned(columns),
            indexes: Cow::Owned(Vec::new()),
            checks: Cow::Owned(Vec::new()),
        }
    }

    /// The same table with `index` added.
    pub fn with_index(mut self, index: Index) -> Table {
        self.indexes.to_mut().push(index);
        self
    }

    /// The same table, renamed from `old`.
    pub fn renamed_from(mut self, old: &str) -> Table {
        self.renamed_from = Some(Cow::Owned(old.to_owned()));
        self
    }

    /// The primary key column of a single-column key (`None` for a composite key).
    pub fn primary_key(&self) -> Option<&Column> {
        match self.key_positions().as_slice() {
            [i] => Some(&self.columns[*i]),
            _ => None,
        }
    }

    /// Positions of the key's columns, in key order (declaration order). A checked table has
    /// at least one.
    pub fn key_positions(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| self.columns[i].primary_key)
            .collect()
    }

    /// Whether the key is made of several columns.
    pub fn has_composite_key(&self) -> bool {
        self.columns.iter().filter(|c| c.primary_key).count() > 1
    }

    /// Whether SQLite assigns the key on insert: a single `i64` primary key is
    /// `INTEGER PRIMARY KEY`, the rowid.
    pub fn key_is_rowid(&self) -> bool {
        self.primary_key().is_some_and(|c| c.kind == ValueKind::I64)
    }

    /// The column named `name` (its SQL name).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl Column {
    /// A NOT NULL column named like its field.
    pub fn new(name: &str, kind: ValueKind) -> Column {
        Column {
            name: Cow::Owned(name.to_owned()),
            field: Cow::Owned(name.to_owned()),
            kind,
            nullable: false,
            primary_key: false,
            default: None,
            renamed_from: None,
            references: None,
            serde_default: false,
        }
    }

    /// The same column, part of the primary key.
    pub fn primary_key(mut self) -> Column {
        self.primary_key = true;
        self
    }

    /// The same column, nullable (`Option<T>`).
    pub fn nullable(mut self) -> Column {
        self.nullable = true;
        self
    }

    /// The same column with a `DEFAULT`.
    pub fn default(mut self, literal: Literal) -> Column {
        self.default = Some(literal);
        self
    }

    /// The same column, renamed from `old`.
    pub fn renamed_from(mut self, old: &str) -> Column {
        self.renamed_from = Some(Cow::Owned(old.to_owned()));
        self
    }

    /// This column of `child_table` references `table.column`.
    pub fn references(
        mut self,
        child_table: &str,
        table: &str,
        column: &str,
        on_delete: OnDelete,
    ) -> Column {
        self.references = Some(Reference::new(
            child_table,
            &self.name,
            table,
            column,
            on_delete,
        ));
        self
    }

    /// The column's SQLite storage class.
    pub fn sql_type(&self) -> SqlType {
        self.kind.sql_type()
    }
}

impl Index {
    /// An index on `columns` (SQL names, in key order).
    pub fn new(name: &str, columns: &[&str], unique: bool) -> Index {
        Index {
            name: Cow::Owned(name.to_owned()),
            columns: Cow::Owned(
                columns
                    .iter()
                    .map(|c| Cow::Owned((*c).to_owned()))
                    .collect(),
            ),
            unique,
            predicate: None,
        }
    }

    /// The conventional name of an index over `columns` of `table`.
    pub fn default_name(table: &str, columns: &[&str], unique: bool) -> String {
        let suffix = if unique { "key" } else { "idx" };
        format!("{table}_{}_{suffix}", columns.join("_"))
    }
}

impl Literal {
    /// The literal as SQL text (strings quoted, booleans as 0/1).
    pub fn to_sql(&self) -> String {
        match self {
            Literal::Integer(v) => v.to_string(),
            Literal::Real(v) => {
                let s = format!("{v:?}");
                s
            }
            Literal::Bool(b) => (if *b { "1" } else { "0" }).to_owned(),
            Literal::Text(s) => crate::ident::quote_string(s),
        }
    }
}
