//! Validation of a [`Table`]: everything that can be said about a model without Rust syntax.
//!
//! Each problem names where it is ([`Location`]) so that the macro can put it on the offending
//! tokens and the CLI can print it with the struct and field names.

use crate::ident::{invalid_column_reason, invalid_reason};
use crate::model::{Literal, SqlType, Table};
use crate::{ValueKind, ROOM_COLUMN};

/// Where in a table definition a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The table as a whole (something missing from it, such as a primary key).
    Table,
    /// The table's name.
    TableName,
    /// The table's `renamed_from`.
    TableRenamedFrom,
    /// A column, by position.
    Column(usize),
    /// A column's Rust type (e.g. a key that may not be of it).
    ColumnType(usize),
    /// A column's `default`.
    ColumnDefault(usize),
    /// A column's `renamed_from`.
    ColumnRenamedFrom(usize),
    /// An index, by position in `Table::indexes`.
    Index(usize),
    /// A column named by an index: (index position, position in the index's column list).
    IndexColumn(usize, usize),
}

/// One thing wrong with a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Which part of the table.
    pub at: Location,
    /// What is wrong, for a person.
    pub message: String,
}

/// Every problem with `table`, in a stable order. Empty when the table is valid.
pub fn check_table(table: &Table) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |at: Location, message: String| out.push(Problem { at, message });

    let table_name_invalid = invalid_reason(&table.name).or_else(|| {
        // The gateway's own routes (`/rooms/{room}/_sync`, …) start with `_`.
        table.name.starts_with('_').then(|| {
            format!(
                "`{}` starts with `_`, which the runtime's own routes use (`/rooms/{{room}}/_sync`)",
                table.name
            )
        })
    });
    if let Some(reason) = &table_name_invalid {
        push(Location::TableName, format!("invalid table name: {reason}"));
    }
    if let Some(old) = &table.renamed_from {
        if let Some(reason) = invalid_reason(old) {
            push(
                Location::TableRenamedFrom,
                format!("invalid `renamed_from`: {reason}"),
            );
        } else if *old == table.name {
            push(
                Location::TableRenamedFrom,
                "`renamed_from` names the table's own name".into(),
            );
        }
    }

    let keys: Vec<usize> = (0..table.columns.len())
        .filter(|&i| table.columns[i].primary_key)
        .collect();
    if keys.is_empty() {
        push(
            Location::Table,
            format!(
                "table `{}` has no primary key: mark a field `#[nanotype(primary_key)]` (several \
                 fields for a composite key)",
                table.rust_name
            ),
        );
    }

    for (i, col) in table.columns.iter().enumerate() {
        if let Some(reason) = invalid_column_reason(&col.name) {
            push(
                Location::Column(i),
                format!("invalid column name: {reason}"),
            );
        }
        if table.columns[..i]
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&col.name))
        {
            push(
                Location::Column(i),
                format!("column `{}` is declared twice", col.name),
            );
        }
        if col.primary_key {
            if col.nullable {
                push(
                    Location::ColumnType(i),
                    "the primary key may not be an `Option`: keys are never NULL".into(),
                );
            }
            if !col.kind.can_be_key() {
                push(
                    Location::ColumnType(i),
                    format!(
                        "a primary key must be an integer or a `String`, not `{}`",
                        col.kind.rust_name()
                    ),
                );
            }
            if col.default.is_some() {
                push(
                    Location::ColumnDefault(i),
                    "the primary key may not have a default".into(),
                );
            }
        }
        if let Some(default) = &col.default {
            if !col.kind.accepts(default) {
                push(
                    Location::ColumnDefault(i),
                    default_mismatch(col.kind, default),
                );
            }
        }
        if let Some(old) = &col.renamed_from {
            if let Some(reason) = invalid_column_reason(old) {
                push(
                    Location::ColumnRenamedFrom(i),
                    format!("invalid `renamed_from`: {reason}"),
                );
            } else if *old == col.name {
                push(
                    Location::ColumnRenamedFrom(i),
                    "`renamed_from` names the column's own name".into(),
                );
            }
        }
    }

    for (i, index) in table.indexes.iter().enumerate() {
        // Index names are derived from the table's name: a bad table name is reported once.
        if let Some(reason) = invalid_reason(&index.name).filter(|_| table_name_invalid.is_none()) {
            push(Location::Index(i), format!("invalid index name: {reason}"));
        }
        if index.columns.is_empty() {
            push(
                Location::Index(i),
                "an index needs at least one column".into(),
            );
        }
        if table.indexes[..i].iter().any(|x| x.name == index.name) {
            push(
                Location::Index(i),
                format!("index `{}` is declared twice", index.name),
            );
        }
        for (j, name) in index.columns.iter().enumerate() {
            if name == ROOM_COLUMN {
                push(
                    Location::IndexColumn(i, j),
                    format!("`{ROOM_COLUMN}` leads every replica index already; leave it out"),
                );
            } else if table.column(name).is_none() {
                push(
                    Location::IndexColumn(i, j),
                    format!("no column named `{name}` in table `{}`", table.name),
                );
            } else if index.columns[..j].contains(name) {
                push(
                    Location::IndexColumn(i, j),
                    format!("column `{name}` appears twice in this index"),
                );
            } else if table
                .column(name)
                .is_some_and(|c| c.kind == ValueKind::Json)
            {
                push(
                    Location::IndexColumn(i, j),
                    format!("column `{name}` holds JSON text; index a plain column"),
                );
            }
        }
    }
    out
}

/// Why `literal` cannot be the default of a `kind` column, saying what would fit.
fn default_mismatch(kind: ValueKind, literal: &Literal) -> String {
    let ty = kind.rust_name();
    let wanted = match kind.sql_type() {
        _ if kind == ValueKind::Bool => "`true` or `false`".to_owned(),
        _ if kind == ValueKind::Json => {
            return format!("a `json` column takes no `default` (the column is `{ty}`)")
        }
        SqlType::Integer => match kind.int_range() {
            Some((lo, hi)) => format!("an integer in {lo}..={hi}"),
            None => "an integer".to_owned(),
        },
        SqlType::Real => "a finite number".to_owned(),
        SqlType::Text => "a string literal".to_owned(),
        SqlType::Blob => return format!("a `{ty}` column takes no `default`"),
    };
    let got = match literal {
        Literal::Integer(v) if kind.int_range().is_some() => {
            return format!("default {v} is out of range for `{ty}`: give {wanted}")
        }
        Literal::Integer(v) => format!("{v} is an integer"),
        Literal::Real(v) if kind.sql_type() == SqlType::Real => {
            return format!("default {v} is not finite: give {wanted}")
        }
        Literal::Real(v) => format!("{v:?} is a float"),
        Literal::Bool(b) => format!("`{b}` is a bool"),
        Literal::Text(t) => format!("{t:?} is a string"),
    };
    format!("default {got}, but the column is `{ty}`: give {wanted}")
}

/// Problems across tables: two structs declaring the same table name, and references to a
/// table that is not there, to a column that is not its key, or of another type.
pub fn check_schema(tables: &[Table]) -> Vec<(usize, Problem)> {
    let mut out = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        for p in check_table(t) {
            out.push((i, p));
        }
        for (j, c) in t.columns.iter().enumerate() {
            let Some(r) = &c.references else { continue };
            let problem = match tables.iter().find(|p| p.name == r.table) {
                None => Some(0),
                Some(parent) => match parent.primary_key() {
                    Some(key) if key.name == r.column => (key.kind != c.kind).then_some(2),
                    _ => Some(1),
                },
            };
            if let Some(k) = problem {
                out.push((
                    i,
                    Problem {
                        at: Location::Column(j),
                        message: r.problems[k].to_string(),
                    },
                ));
            }
        }
        if tables[..i]
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&t.name))
        {
            out.push((
                i,
                Problem {
                    at: Location::TableName,
                    message: format!("table `{}` is declared by two structs", t.name),
                },
            ));
        }
        let index_clash = tables[..i]
            .iter()
            .flat_map(|o| o.indexes.iter())
            .find(|x| t.indexes.iter().any(|y| y.name == x.name));
        if let Some(x) = index_clash {
            out.push((
                i,
                Problem {
                    at: Location::Table,
                    message: format!("index `{}` is declared by two tables", x.name),
                },
            ));
        }
    }
    out
}

/// The first reference problem of a schema, as [`check_schema`] finds them, for a constant: the
/// runtime's `schema!` evaluates it at compile time and fails the build with the message.
pub const fn reference_problem(tables: &[&Table]) -> Option<&'static str> {
    let mut i = 0;
    while i < tables.len() {
        let columns = columns_of(tables[i]);
        let mut j = 0;
        while j < columns.len() {
            if let Some(r) = &columns[j].references {
                let problem = match find_table(tables, name_of(&r.table)) {
                    None => Some(0),
                    Some(parent) => match key_of(parent) {
                        Some(key) if str_eq(name_of(&key.name), name_of(&r.column)) => {
                            if key.kind as u8 == columns[j].kind as u8 {
                                None
                            } else {
                                Some(2)
                            }
                        }
                        _ => Some(1),
                    },
                };
                if let Some(k) = problem {
                    return Some(match &r.problems[k] {
                        std::borrow::Cow::Borrowed(m) => m,
                        std::borrow::Cow::Owned(_) => "a reference of the schema is invalid",
                    });
                }
            }
            j += 1;
        }
        i += 1;
    }
    None
}

const fn columns_of(t: &Table) -> &[crate::model::Column] {
    match &t.columns {
        std::borrow::Cow::Borrowed(c) => c,
        std::borrow::Cow::Owned(_) => &[],
    }
}

const fn name_of(n: &crate::model::Name) -> &str {
    match n {
        std::borrow::Cow::Borrowed(s) => s,
        std::borrow::Cow::Owned(_) => "",
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn find_table<'a>(tables: &[&'a Table], name: &str) -> Option<&'a Table> {
    let mut i = 0;
    while i < tables.len() {
        if str_eq(name_of(&tables[i].name), name) {
            return Some(tables[i]);
        }
        i += 1;
    }
    None
}

/// The key column of a table with a one-column key (a composite key cannot be referenced).
const fn key_of(t: &Table) -> Option<&crate::model::Column> {
    let columns = columns_of(t);
    let mut found = None;
    let mut i = 0;
    while i < columns.len() {
        if columns[i].primary_key {
            if found.is_some() {
                return None;
            }
            found = Some(&columns[i]);
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, Index, Literal};

    fn valid() -> Table {
        Table::new(
            "tasks",
            "Task",
            vec![
                Column::new("id", ValueKind::I64).primary_key(),
                Column::new("title", ValueKind::String),
            ],
        )
    }

    #[test]
    fn a_valid_table_has_no_problems() {
        assert!(check_table(&valid()).is_empty());
    }

    #[test]
    fn problems_are_collected() {
        let t = Table::new(
            "tasks",
            "Task",
            vec![
                Column::new("room_id", ValueKind::String),
                Column::new("n", ValueKind::I32).default(Literal::Text("x".into())),
            ],
        )
        .with_index(Index::new("tasks_missing_idx", &["missing"], false));
        let problems = check_table(&t);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert_eq!(problems[0].at, Location::Table);
        assert!(
            problems[2].message.contains("give an integer in"),
            "{problems:#?}"
        );
        assert_eq!(problems[1].at, Location::Column(0));
        assert_eq!(problems[2].at, Location::ColumnDefault(1));
        assert_eq!(problems[3].at, Location::IndexColumn(0, 0));
    }

    #[test]
    fn defaults_must_fit() {
        assert!(ValueKind::U8.accepts(&Literal::Integer(255)));
        assert!(!ValueKind::U8.accepts(&Literal::Integer(256)));
        assert!(!ValueKind::U8.accepts(&Literal::Integer(-1)));
        assert!(ValueKind::Bool.accepts(&Literal::Bool(true)));
        assert!(!ValueKind::Bool.accepts(&Literal::Integer(1)));
        assert!(ValueKind::F64.accepts(&Literal::Integer(1)));
        assert!(!ValueKind::String.accepts(&Literal::Integer(1)));
    }
}
