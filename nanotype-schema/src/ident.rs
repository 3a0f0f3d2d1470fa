//! SQL identifiers: what a user may name a table, column or index, and how names are quoted.
//!
//! Names are validated at compile time (by the macro) and always double-quoted in generated SQL,
//! so no user input is ever spliced into a statement unquoted.

use crate::{RESERVED_PREFIX, ROOM_COLUMN};

/// Longest identifier accepted (D1 and SQLite allow more; this keeps index names readable).
pub const MAX_LEN: usize = 64;

/// Why a name is not a valid identifier, or `None` when it is.
pub fn invalid_reason(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name may not be empty".into());
    }
    if name.len() > MAX_LEN {
        return Some(format!("`{name}` is longer than {MAX_LEN} characters"));
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Some(format!(
            "`{name}` is not a valid SQL name: use ASCII letters, digits and `_`, not starting with a digit"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with(RESERVED_PREFIX) {
        return Some(format!("`{name}` starts with `{RESERVED_PREFIX}`, which is reserved for nanotype's own tables and columns"));
    }
    if lower.starts_with("sqlite_") {
        return Some(format!(
            "`{name}` starts with `sqlite_`, which SQLite reserves"
        ));
    }
    if lower == "_cf_kv" || lower.starts_with("_cf_") {
        return Some(format!(
            "`{name}` starts with `_cf_`, which Cloudflare reserves"
        ));
    }
    None
}

/// Why a name may not be a column, or `None`.
pub fn invalid_column_reason(name: &str) -> Option<String> {
    if let Some(reason) = invalid_reason(name) {
        return Some(reason);
    }
    let lower = name.to_ascii_lowercase();
    if lower == ROOM_COLUMN {
        return Some(format!(
            "`{ROOM_COLUMN}` is reserved: every replica table carries it as the room's id"
        ));
    }
    if matches!(lower.as_str(), "rowid" | "oid" | "_rowid_") {
        return Some(format!("`{name}` is SQLite's rowid alias"));
    }
    None
}

/// `name` as a quoted SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `s` as a SQL string literal.
pub fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Snake-case table name derived from a struct name: `TaskList` → `task_list`.
pub fn snake_case(rust_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in rust_name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(invalid_reason("tasks").is_none());
        assert!(invalid_reason("_private").is_none());
        assert!(invalid_reason("1abc").is_some());
        assert!(invalid_reason("a-b").is_some());
        assert!(invalid_reason("tasks; DROP").is_some());
        assert!(invalid_reason("_nt_outbox").is_some());
        assert!(invalid_reason("sqlite_master").is_some());
        assert!(invalid_column_reason("room_id").is_some());
        assert!(invalid_column_reason("ROWID").is_some());
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_string("it's"), "'it''s'");
        assert_eq!(snake_case("TaskList"), "task_list");
        assert_eq!(snake_case("Task"), "task");
    }
}
