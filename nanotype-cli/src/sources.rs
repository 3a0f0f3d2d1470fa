//! The target schema: every `#[nanotype::table]` struct in the source files, parsed by the same
//! code as the macro ([`nanotype_schema::parse::find_tables`]), so the migrations create what
//! the macro's DDL says.

use std::path::{Path, PathBuf};

use nanotype_schema::check::{check_schema, check_table};
use nanotype_schema::Table;

/// The tables declared in `files`, in file order, or every problem found (all files are read).
pub fn read_tables(files: &[PathBuf]) -> Result<Vec<Table>, Vec<String>> {
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match read_file(file) {
            Ok(found) => tables.extend(found),
            Err(mut e) => problems.append(&mut e),
        }
    }
    for (i, p) in check_schema(&tables) {
        // Per-table problems were reported by the parser already; keep the cross-table ones.
        if !check_table(&tables[i]).contains(&p) {
            problems.push(format!("struct `{}`: {}", tables[i].rust_name, p.message));
        }
    }
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(problems)
    }
}

fn read_file(path: &Path) -> Result<Vec<Table>, Vec<String>> {
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
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(problems)
    }
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
