//! A table as SQLite describes it (`PRAGMA table_info`, `index_list`, `index_info`), and the same
//! description computed from a model.
//!
//! Migrations are compared at this level, not as text: two files that build the same tables are
//! the same schema however they are written, and a hand-edited file is read for what it does.
//! Column order is not part of a shape: `ALTER TABLE … ADD COLUMN` appends, and nanotype names
//! every column in its statements, so the order in the database never matters.

use std::borrow::Cow;
use std::fmt;

use crate::ident::quote_string;
use crate::model::{Column, Index, Literal, SqlType, Table, ValueKind};
use crate::ROOM_COLUMN;

/// One table: its columns and the indexes created with `CREATE INDEX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShape {
    /// The table's name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<ColumnShape>,
    /// Its `CREATE INDEX` indexes.
    pub indexes: Vec<IndexShape>,
    /// `CHECK` constraints, as normalized SQL ([`normalize_sql`]), sorted.
    pub checks: Vec<String>,
}

/// One column, as `PRAGMA table_info` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnShape {
    /// The column's name.
    pub name: String,
    /// The declared type, upper case (`INTEGER`, `TEXT`, …).
    pub declared_type: String,
    /// `NOT NULL` was declared. An `INTEGER PRIMARY KEY` without it still never holds NULL.
    pub not_null: bool,
    /// The default as SQL text, normalised (see [`normalize_default`]).
    pub default: Option<String>,
    /// Position in the primary key, from 1; 0 when not part of it.
    pub key_position: u32,
    /// Its foreign key, `table.column ON DELETE ACTION` (in the replica, the column's half of the
    /// `(room_id, column)` key).
    pub references: Option<String>,
}

/// The text of a reference in a shape.
pub fn reference_text(table: &str, column: &str, on_delete: &str) -> String {
    format!(
        "{table}.{column} ON DELETE {}",
        on_delete.to_ascii_uppercase()
    )
}

/// One index made by `CREATE INDEX` (not the implicit ones of a key or `UNIQUE` constraint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexShape {
    /// The index's name.
    pub name: String,
    /// Its columns, in key order.
    pub columns: Vec<String>,
    /// `UNIQUE`.
    pub unique: bool,
    /// A partial index's condition, normalized ([`normalize_sql`]).
    pub predicate: Option<String>,
}

/// SQL text compared as SQLite keeps it, up to whitespace: runs of spaces collapsed, none next
/// to parentheses or commas.
pub fn normalize_sql(sql: &str) -> String {
    let collapsed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .trim()
        .to_owned()
}

/// The `CHECK (…)` constraints of a `CREATE TABLE` statement, normalized: the parenthesized text
/// after each `CHECK` outside string literals and quoted names.
pub fn checks_of(create_table: &str) -> Vec<String> {
    let b = create_table.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' || c == b'`' => quote = Some(c),
            None if b.len() - i >= 5
                && b[i..i + 5].eq_ignore_ascii_case(b"CHECK")
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 5;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < b.len() && b[j] == b'(' {
                    let (start, mut depth, mut q2) = (j + 1, 0i32, None::<u8>);
                    while j < b.len() {
                        let d = b[j];
                        match q2 {
                            Some(q) if d == q => q2 = None,
                            Some(_) => {}
                            None if d == b'\'' || d == b'"' => q2 = Some(d),
                            None if d == b'(' => depth += 1,
                            None if d == b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    out.push(normalize_sql(&create_table[start..j]));
                                    break;
                                }
                            }
                            None => {}
                        }
                        j += 1;
                    }
                    i = j;
                }
            }
            None => {}
        }
        i += 1;
    }
    crate::sort::sort(&mut out);
    out
}

impl TableShape {
    /// Columns and indexes sorted by name, so that equal schemas compare equal.
    pub fn normalized(mut self) -> TableShape {
        crate::sort::sort_by(&mut self.columns, |a, b| a.name.cmp(&b.name));
        crate::sort::sort_by(&mut self.indexes, |a, b| a.name.cmp(&b.name));
        crate::sort::sort(&mut self.checks);
        self
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnShape> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The index named `name`.
    pub fn index(&self, name: &str) -> Option<&IndexShape> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

/// The shape of a model column in the room's SQLite (what [`crate::ddl::primary_column`] makes),
/// for a table with a one-column key.
pub fn primary_column(col: &Column) -> ColumnShape {
    primary_column_at(col, u32::from(col.primary_key), true)
}

/// [`primary_column`] of a column of `table`, which may have a composite key.
pub fn primary_column_in(table: &Table, col: &Column) -> ColumnShape {
    let single = !table.has_composite_key();
    let position = table
        .key_positions()
        .iter()
        .position(|&i| table.columns[i].name == col.name)
        .map_or(0, |p| p as u32 + 1);
    primary_column_at(col, position, single)
}

fn primary_column_at(col: &Column, key_position: u32, single_key: bool) -> ColumnShape {
    ColumnShape {
        name: col.name.to_string(),
        declared_type: col.sql_type().as_sql().to_owned(),
        // A one-column `i64` key is the rowid alias and declared without NOT NULL.
        not_null: if col.primary_key {
            !(single_key && col.kind == ValueKind::I64)
        } else {
            !col.nullable
        },
        default: col.default.as_ref().map(Literal::to_sql),
        key_position,
        references: col
            .references
            .as_ref()
            .map(|r| reference_text(&r.table, &r.column, r.on_delete.sql())),
    }
}

/// The shape of a model table in the room's SQLite (what [`crate::ddl::primary_ddl`] makes).
pub fn primary(table: &Table) -> TableShape {
    TableShape {
        name: table.name.to_string(),
        columns: table
            .columns
            .iter()
            .map(|c| primary_column_in(table, c))
            .collect(),
        indexes: table
            .indexes
            .iter()
            .map(|i| index_shape(i, false))
            .collect(),
        checks: table.checks.iter().map(|c| normalize_sql(c)).collect(),
    }
    .normalized()
}

/// The shape of a model table in the D1 replica (what [`crate::ddl::replica_ddl`] makes).
pub fn replica(table: &Table) -> TableShape {
    let mut columns = vec![ColumnShape {
        name: ROOM_COLUMN.to_owned(),
        declared_type: "TEXT".to_owned(),
        not_null: true,
        default: None,
        key_position: 1,
        references: None,
    }];
    let name = table.name.to_string();
    let keys = table.key_positions();
    columns.extend(table.columns.iter().enumerate().map(|(i, col)| {
        ColumnShape {
            name: col.name.to_string(),
            declared_type: col.sql_type().as_sql().to_owned(),
            not_null: !col.nullable || col.primary_key,
            default: col.default.as_ref().map(Literal::to_sql),
            key_position: keys
                .iter()
                .position(|&k| k == i)
                .map_or(0, |p| p as u32 + 2),
            // The replica's foreign keys always cascade (see `ddl::replica_foreign_key`).
            references: col
                .references
                .as_ref()
                .filter(|r| r.table != name)
                .map(|r| reference_text(&r.table, &r.column, "CASCADE")),
        }
    }));
    TableShape {
        name: table.name.to_string(),
        columns,
        indexes: table.indexes.iter().map(|i| index_shape(i, true)).collect(),
        checks: table.checks.iter().map(|c| normalize_sql(c)).collect(),
    }
    .normalized()
}

fn index_shape(index: &Index, with_room: bool) -> IndexShape {
    let mut columns = Vec::new();
    if with_room {
        columns.push(ROOM_COLUMN.to_owned());
    }
    columns.extend(index.columns.iter().map(std::string::ToString::to_string));
    IndexShape {
        name: index.name.to_string(),
        columns,
        unique: index.unique,
        predicate: index.predicate.as_deref().map(normalize_sql),
    }
}

/// The model of a table in the room's SQLite, from its shape.
///
/// The SQL type does not say which Rust type a column had (`i32` and `i64` are both `INTEGER`), so
/// each column gets a representative kind with the same shape: the diff compares shapes, and a
/// rebuild renders the *target* model, so the choice never reaches a migration.
pub fn to_table(shape: &TableShape) -> Result<Table, String> {
    let t = &shape.name;
    let keys = shape.columns.iter().filter(|c| c.key_position > 0).count();
    let mut columns = Vec::new();
    for c in &shape.columns {
        let Some(ty) = SqlType::from_declared(&c.declared_type) else {
            return Err(format!(
                "column `{t}.{}` has type `{}`; nanotype declares only INTEGER, REAL, TEXT and BLOB",
                c.name, c.declared_type
            ));
        };
        let key = c.key_position > 0;
        let kind = match ty {
            // An INTEGER key declared NOT NULL is what a non-i64 integer key renders as.
            // So is every INTEGER column of a composite key.
            SqlType::Integer if key && (c.not_null || keys > 1) => ValueKind::I32,
            SqlType::Integer => ValueKind::I64,
            SqlType::Real => ValueKind::F64,
            SqlType::Text => ValueKind::String,
            SqlType::Blob => ValueKind::Bytes,
        };
        let default = match &c.default {
            None => None,
            Some(sql) => Some(parse_default(sql).ok_or_else(|| {
                format!(
                    "column `{t}.{}` has DEFAULT {sql}; nanotype declares only literal defaults",
                    c.name
                )
            })?),
        };
        let references = match &c.references {
            None => None,
            Some(text) => {
                let parsed = text.split_once(" ON DELETE ").and_then(|(target, action)| {
                    let (table, column) = target.split_once('.')?;
                    Some((table, column, crate::model::OnDelete::from_keyword(action)?))
                });
                let Some((table, column, on_delete)) = parsed else {
                    return Err(format!(
                        "column `{t}.{}` has a foreign key nanotype does not declare ({text})",
                        c.name
                    ));
                };
                Some(crate::model::Reference::new(
                    t, &c.name, table, column, on_delete,
                ))
            }
        };
        columns.push(Column {
            name: Cow::Owned(c.name.clone()),
            field: Cow::Owned(c.name.clone()),
            kind,
            nullable: !key && !c.not_null,
            primary_key: key,
            default,
            renamed_from: None,
            references,
            serde_default: false,
        });
    }
    // A model's key follows its columns' order: the key's columns come first, in key order.
    crate::sort::sort_by_key(&mut columns, |c| {
        shape
            .columns
            .iter()
            .find(|s| s.name == c.name.as_ref())
            .map_or(u32::MAX, |s| {
                if s.key_position > 0 {
                    s.key_position
                } else {
                    u32::MAX
                }
            })
    });
    let indexes = shape
        .indexes
        .iter()
        .map(|i| Index {
            name: Cow::Owned(i.name.clone()),
            columns: Cow::Owned(i.columns.iter().cloned().map(Cow::Owned).collect()),
            unique: i.unique,
            predicate: i.predicate.clone().map(Cow::Owned),
        })
        .collect();
    Ok(Table {
        name: Cow::Owned(t.clone()),
        rust_name: Cow::Owned(t.clone()),
        renamed_from: None,
        columns: Cow::Owned(columns),
        indexes: Cow::Owned(indexes),
        checks: Cow::Owned(shape.checks.iter().cloned().map(Cow::Owned).collect()),
    })
}

/// A literal default from its SQL text (`'open'`, `0`, `-1.5`, `(1)`), or `None` for an
/// expression nanotype does not generate.
pub fn parse_default(sql: &str) -> Option<Literal> {
    let s = sql.trim();
    if let Some(inner) = s.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        return parse_default(inner);
    }
    if let Some(body) = s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        // Every quote inside must be doubled.
        if body.replace("''", "").contains('\'') {
            return None;
        }
        return Some(Literal::Text(Cow::Owned(body.replace("''", "'"))));
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Literal::Integer(i));
    }
    match s.to_ascii_uppercase().as_str() {
        "TRUE" => return Some(Literal::Integer(1)),
        "FALSE" => return Some(Literal::Integer(0)),
        "NULL" => return None,
        _ => {}
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Literal::Real)
}

/// A default's SQL text in the form the model renders, so that `DEFAULT ('a')` and
/// `DEFAULT 'a'` compare equal. Expressions are kept as written.
pub fn normalize_default(sql: &str) -> String {
    match parse_default(sql) {
        Some(Literal::Text(s)) => quote_string(&s),
        Some(l) => l.to_sql(),
        None => sql.trim().to_owned(),
    }
}

/// Every difference between two shapes of one table, for a person to read. Empty when equal.
pub fn differences(expected: &TableShape, actual: &TableShape) -> Vec<String> {
    let t = &expected.name;
    let mut out = Vec::new();
    for e in &expected.columns {
        match actual.column(&e.name) {
            None => out.push(format!("column `{t}.{}` is missing", e.name)),
            Some(a) if a != e => {
                out.push(format!("column `{t}.{}` is {a} but should be {e}", e.name));
            }
            Some(_) => {}
        }
    }
    for a in &actual.columns {
        if expected.column(&a.name).is_none() {
            out.push(format!("column `{t}.{}` is not in the model", a.name));
        }
    }
    for e in &expected.indexes {
        match actual.index(&e.name) {
            None => out.push(format!("index `{}` on `{t}` is missing", e.name)),
            Some(a) if a != e => out.push(format!(
                "index `{}` on `{t}` is {a} but should be {e}",
                e.name
            )),
            Some(_) => {}
        }
    }
    for a in &actual.indexes {
        if expected.index(&a.name).is_none() {
            out.push(format!("index `{}` on `{t}` is not in the model", a.name));
        }
    }
    if expected.checks != actual.checks {
        out.push(format!(
            "the checks of `{t}` are {:?} but should be {:?}",
            actual.checks, expected.checks
        ));
    }
    out
}

/// The differences between a table as the model says (`expected`) and as it is (`actual`) that
/// break nanotype's reads or writes of it: a column missing, of another type, nullability or key
/// position, or one the model does not know that refuses a row without it (`NOT NULL`, no
/// default). Indexes, defaults, references, checks and extra nullable columns are left out: a
/// database migrated by a newer build (a rollback) or still to be contracted differs there and
/// works. Empty when nothing breaks.
pub fn breaking_differences(expected: &TableShape, actual: &TableShape) -> Vec<String> {
    let t = &expected.name;
    let mut out = Vec::new();
    for e in &expected.columns {
        match actual.column(&e.name) {
            None => out.push(format!("column `{t}.{}` is missing", e.name)),
            Some(a)
                if a.declared_type != e.declared_type
                    || a.not_null != e.not_null
                    || a.key_position != e.key_position =>
            {
                out.push(format!(
                    "column `{t}.{}` is {a} but the struct says {e}",
                    e.name
                ));
            }
            Some(_) => {}
        }
    }
    for a in &actual.columns {
        if expected.column(&a.name).is_none()
            && a.not_null
            && a.default.is_none()
            && a.key_position == 0
        {
            out.push(format!(
                "column `{t}.{}` ({a}) is not in the struct, and refuses a row without it",
                a.name
            ));
        }
    }
    out
}

impl fmt::Display for ColumnShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.declared_type)?;
        if self.key_position > 0 {
            write!(f, " (key #{})", self.key_position)?;
        }
        if self.not_null {
            f.write_str(" NOT NULL")?;
        }
        if let Some(d) = &self.default {
            write!(f, " DEFAULT {d}")?;
        }
        if let Some(r) = &self.references {
            write!(f, " REFERENCES {r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for IndexShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({})",
            if self.unique { "UNIQUE " } else { "" },
            self.columns.join(", ")
        )?;
        if let Some(p) = &self.predicate {
            write!(f, " WHERE {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        for l in [
            Literal::Integer(-3),
            Literal::Real(1.5),
            Literal::Real(1e20),
            Literal::Text("it's".into()),
            Literal::Text("".into()),
        ] {
            assert_eq!(parse_default(&l.to_sql()), Some(l.clone()), "{l:?}");
        }
        assert_eq!(parse_default("('a')"), Some(Literal::Text("a".into())));
        assert_eq!(parse_default("CURRENT_TIMESTAMP"), None);
        assert_eq!(normalize_default("( 'x' )"), "'x'");
    }

    #[test]
    fn a_model_survives_its_shape() {
        let t = Table::new(
            "tasks",
            "Task",
            vec![
                Column::new("id", ValueKind::I32).primary_key(),
                Column::new("done", ValueKind::Bool).default(Literal::Bool(false)),
                Column::new("due", ValueKind::I64).nullable(),
            ],
        )
        .with_index(Index::new("tasks_done_idx", &["done"], false));
        let back = to_table(&primary(&t)).unwrap();
        assert_eq!(primary(&back), primary(&t));
        assert_eq!(replica(&back), replica(&t));
    }
}
