//! The target schema: every `#[nanotype::table]` struct in the source files, parsed by the same
//! code as the macro ([`nanotype_schema::parse::find_tables`]), so the migrations create what
//! the macro's DDL says.

use std::path::{Path, PathBuf};

use nanotype_schema::check::{check_schema, check_table};
use nanotype_schema::Table;

/// The tables declared in `files`, in file order, or every problem found (all files are read).
///
/// When the files declare the app's schema (`nanotype::schema!(App = [..])`), a table struct
/// left out of every list is a problem: it would get a migration but no routes and no
/// replication.
pub fn read_tables(files: &[PathBuf]) -> Result<Vec<Table>, Vec<String>> {
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    let mut found = Found::default();
    for file in files {
        match read_file(file, &mut found) {
            Ok(read) => tables.extend(read),
            Err(mut e) => problems.append(&mut e),
        }
    }
    for (i, p) in check_schema(&tables) {
        // Per-table problems were reported by the parser already; keep the cross-table ones.
        if !check_table(&tables[i]).contains(&p) {
            problems.push(format!("struct `{}`: {}", tables[i].rust_name, p.message));
        }
    }
    if let Some(list) = found.lists.first() {
        for (name, at) in &found.structs {
            if !found.lists.iter().any(|l| l.structs.contains(name)) {
                problems.push(format!(
                    "{at}: struct `{name}` is a `#[nanotype::table]` but not in \
                     `nanotype::schema!({} = [{}])` ({}): add it to the list, or remove its \
                     `#[nanotype::table]`; a table outside the schema has no routes and is \
                     never replicated",
                    list.name,
                    list.structs.join(", "),
                    list.at
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(problems)
    }
}

/// What the files declare besides the tables: each table struct's place, each schema list.
#[derive(Default)]
struct Found {
    /// Each `#[nanotype::table]` struct's name and `path:line:column`.
    structs: Vec<(String, String)>,
    /// Each `schema!(..)` invocation.
    lists: Vec<SchemaList>,
}

/// One `nanotype::schema!(Name = [A, B, ..])`.
struct SchemaList {
    name: String,
    structs: Vec<String>,
    at: String,
}

fn read_file(path: &Path, found: &mut Found) -> Result<Vec<Table>, Vec<String>> {
    let shown = crate::command::shown(path);
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {shown}: {e}")])?;
    let file = syn::parse_file(&text).map_err(|e| vec![located(path, &e)])?;
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for parsed in nanotype_schema::parse::find_tables(&file.items) {
        match parsed {
            Ok(p) => tables.push(p.table),
            Err(e) => problems.extend(e.into_iter().map(|e| located(path, &e))),
        }
    }
    walk(path, &file.items, &tables, found);
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(problems)
    }
}

/// Record the table structs' places and the schema lists among `items` (inline modules too).
fn walk(path: &Path, items: &[syn::Item], tables: &[Table], found: &mut Found) {
    let at = |span: proc_macro2::Span| {
        let start = span.start();
        format!(
            "{}:{}:{}",
            crate::command::shown(path),
            start.line,
            start.column + 1
        )
    };
    for item in items {
        match item {
            syn::Item::Struct(s) => {
                let name = s.ident.to_string();
                if tables.iter().any(|t| t.rust_name == name) {
                    found.structs.push((name, at(s.ident.span())));
                }
            }
            syn::Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|seg| seg.ident == "schema") =>
            {
                if let Some((name, structs)) = schema_list(m.mac.tokens.clone()) {
                    found.lists.push(SchemaList {
                        name,
                        structs,
                        at: at(m.mac.path.segments[0].ident.span()),
                    });
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    walk(path, items, tables, found);
                }
            }
            _ => {}
        }
    }
}

/// `pub App = [Task, crate::Comment], migrations = ".."`: `App` and the last segment of each
/// listed type.
fn schema_list(tokens: proc_macro2::TokenStream) -> Option<(String, Vec<String>)> {
    use proc_macro2::{Delimiter, TokenTree};
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let eq = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == '='))?;
    let name = match tokens.get(eq.checked_sub(1)?)? {
        TokenTree::Ident(i) => i.to_string(),
        _ => return None,
    };
    let TokenTree::Group(list) = tokens.get(eq + 1)? else {
        return None;
    };
    if list.delimiter() != Delimiter::Bracket {
        return None;
    }
    let mut structs = Vec::new();
    let mut last = None;
    for t in list.stream() {
        match t {
            TokenTree::Ident(i) => last = Some(i.to_string()),
            TokenTree::Punct(p) if p.as_char() == ',' => structs.extend(last.take()),
            _ => {}
        }
    }
    structs.extend(last);
    Some((name, structs))
}

/// `path:line:column: message`, the form editors and terminals link.
fn located(path: &Path, e: &syn::Error) -> String {
    let start = e.span().start();
    format!(
        "{}:{}:{}: {}",
        crate::command::shown(path),
        start.line,
        start.column + 1,
        e
    )
}
