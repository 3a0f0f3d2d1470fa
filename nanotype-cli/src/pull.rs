//! `nanotype pull <file>`: the `#[nanotype::table]` structs of an existing SQLite database (a
//! room's, or one another app made), to start a schema from what exists.
//!
//! Each table is read as SQLite describes it (the same introspection `gen-migrations` replays
//! migrations with), turned into a model, and written as a struct: `INTEGER` → `i64`, `REAL` →
//! `f64`, `TEXT` → `String`, `BLOB` → `Vec<u8>`, nullable columns as `Option`, with their
//! defaults, one-column indexes, composite indexes and references. What nanotype cannot declare
//! (a composite key, an expression default, another type) is reported instead of guessed; an
//! index whose name is not the one nanotype would give it is noted, since the first migration
//! would rename it.

use std::fmt::Write;

use nanotype_schema::ident::snake_case;
use nanotype_schema::migration::shape::to_table;
use nanotype_schema::model::{Literal, Table, ValueKind};
use nanotype_schema::Index;
use rusqlite::Connection;

use crate::replay::introspect;

/// The structs of every user table in `conn`, as Rust source; `Err` when none could be read.
pub fn structs(conn: &Connection, source: &str) -> Result<String, String> {
    let shapes = introspect(conn).map_err(|e| format!("cannot read the database: {e}"))?;
    let mut out = format!(
        "//! The tables of `{source}`, written by `nanotype pull`. Review them: field types are\n\
         //! SQLite's storage classes (an `i64` may have been an `i32`, a `String` JSON).\n\n\
         use serde::{{Deserialize, Serialize}};\n"
    );
    let mut skipped = Vec::new();
    let mut written = 0;
    for shape in &shapes {
        let mut table = match to_table(shape) {
            Ok(t) => t,
            Err(why) => {
                skipped.push(why);
                continue;
            }
        };
        // Fields in the table's column order (the shape sorts them by name).
        let order: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .and_then(|mut st| {
                st.query_map([table.name.as_ref()], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap_or_default();
        let key_names = |t: &nanotype_schema::Table| -> Vec<String> {
            t.key_positions()
                .into_iter()
                .map(|i| t.columns[i].name.to_string())
                .collect()
        };
        let key = key_names(&table);
        table
            .columns
            .to_mut()
            .sort_by_key(|c| order.iter().position(|n| n == c.name.as_ref()));
        if key.is_empty() {
            skipped.push(format!(
                "table `{}` has no primary key; nanotype tables have one",
                table.name
            ));
            continue;
        }
        if key_names(&table) != key {
            skipped.push(format!(
                "table `{}` has a composite key in another order than its columns; a nanotype \
                 key follows the order of its fields",
                table.name
            ));
            continue;
        }
        out.push('\n');
        out.push_str(&render(&table));
        written += 1;
    }
    if written == 0 {
        return Err(if skipped.is_empty() {
            "the database has no tables".into()
        } else {
            format!("no table could be read:\n- {}", skipped.join("\n- "))
        });
    }
    for why in &skipped {
        let _ = writeln!(out, "\n// Not pulled: {why}.");
    }
    Ok(out)
}

fn struct_name(table: &str) -> String {
    snake_case(table)
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn field_name(column: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe",
        "use", "where", "while",
    ];
    if KEYWORDS.contains(&column) {
        format!("r#{column}")
    } else {
        column.to_owned()
    }
}

fn rust_type(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::F32 | ValueKind::F64 => "f64",
        ValueKind::String | ValueKind::Json => "String",
        ValueKind::Bytes => "Vec<u8>",
        ValueKind::Bool => "bool",
        // An INTEGER key declared NOT NULL (not the rowid alias): what an `i32` key renders as.
        ValueKind::I32 => "i32",
        _ => "i64",
    }
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::Integer(i) => i.to_string(),
        Literal::Real(f) => format!("{f:?}"),
        Literal::Bool(b) => b.to_string(),
        Literal::Text(t) => format!("{t:?}"),
    }
}

fn render(table: &Table) -> String {
    let mut s = String::new();
    let mut args = vec![format!("name = {:?}", table.name.as_ref())];
    let mut field_indexes: Vec<(String, bool)> = Vec::new();
    let mut notes = Vec::new();
    for index in table.indexes.iter() {
        let cols: Vec<&str> = index
            .columns
            .iter()
            .map(std::convert::AsRef::as_ref)
            .collect();
        let default = Index::default_name(&table.name, &cols, index.unique);
        if index.name != default.as_str() {
            notes.push(format!(
                "index `{}` will be recreated as `{default}` by the first migration",
                index.name
            ));
        }
        if let ([one], None) = (cols.as_slice(), &index.predicate) {
            field_indexes.push(((*one).to_owned(), index.unique));
        } else {
            let mut parts: Vec<String> = cols.iter().map(|c| field_name(c)).collect();
            if let Some(p) = &index.predicate {
                parts.push(format!("where = {:?}", p.as_ref()));
            }
            args.push(format!(
                "{}({})",
                if index.unique { "unique" } else { "index" },
                parts.join(", ")
            ));
        }
    }
    for c in table.checks.iter() {
        args.push(format!("check = {:?}", c.as_ref()));
    }
    for n in &notes {
        let _ = writeln!(s, "// {n}");
    }
    let _ = writeln!(s, "#[nanotype::table({})]", args.join(", "));
    let _ = writeln!(
        s,
        "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\npub struct {} {{",
        struct_name(&table.name)
    );
    for c in table.columns.iter() {
        let mut attrs = Vec::new();
        if c.primary_key {
            attrs.push("primary_key".to_owned());
        }
        for (col, unique) in &field_indexes {
            if col == c.name.as_ref() {
                attrs.push(if *unique { "unique" } else { "index" }.to_owned());
            }
        }
        if let Some(d) = &c.default {
            attrs.push(format!("default = {}", literal(d)));
        }
        if let Some(r) = &c.references {
            attrs.push(format!(
                "references = \"{}.{}\", on_delete = {:?}",
                r.table,
                r.column,
                r.on_delete.keyword()
            ));
        }
        if !attrs.is_empty() {
            let _ = writeln!(s, "    #[nanotype({})]", attrs.join(", "));
        }
        let ty = rust_type(c.kind);
        let ty = if c.nullable {
            format!("Option<{ty}>")
        } else {
            ty.to_owned()
        };
        let _ = writeln!(s, "    pub {}: {ty},", field_name(&c.name));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_names_follow_the_table() {
        assert_eq!(struct_name("tasks"), "Tasks");
        assert_eq!(struct_name("task_lists"), "TaskLists");
        assert_eq!(field_name("type"), "r#type");
    }
}
