//! What the read-only SQL route accepts, decided before anything runs, on every backend.
//!
//! A Durable Object offers no way to compile a statement without running it, so the route
//! refuses up front what must never run, and tells the truth about it (a 4xx, never a statement
//! that ran, was rolled back and reported as success):
//!
//! 1. **One statement.** The text is split the way SQLite's own `sqlite3_complete` does (quotes,
//!    bracketed names and comments skipped); anything but comments after the first `;` is
//!    refused, so `DELETE FROM t; SELECT 1` never runs either part.
//! 2. **A query.** The statement must be a `SELECT`, a `VALUES`, or a `WITH` whose main
//!    statement (the first keyword outside the common table expressions' parentheses) is one of
//!    those: DDL, DML and `PRAGMA` never reach SQLite, so nothing can change the room or its
//!    connection's settings for later requests (a `PRAGMA` takes effect while it is compiled).
//! 3. **A budget.** SQLite's plan is read without running the query (`EXPLAIN QUERY PLAN`
//!    and `EXPLAIN`): a recursive common table expression is refused (its depth cannot be known
//!    before it runs, and a Durable Object cannot interrupt a statement), so is
//!    `generate_series`, and the rows the plan loops over in full are estimated (each table's
//!    largest rowid, one index probe each, multiplied across nested loops) and compared with the
//!    budget.
//!
//! The backends then run the statement as before ([`super::ReadOnlySql`]): the native one under
//! SQLite's read-only checks and an authorizer, the Durable Object's inside a `transactionSync`
//! that always rolls back.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::primary::Primary;
use crate::value::Value;
use nanotype_schema::ident::quote;

/// Rows a read-only query may scan when the app sets no budget of its own.
pub const DEFAULT_BUDGET_ROWS: u64 = 1_000_000;

fn refuse(message: impl Into<String>) -> Error {
    Error::Rejected(message.into())
}

/// A word of the statement outside quotes and comments, with its parenthesis depth.
struct Word {
    text: String,
    depth: i32,
}

/// The statement's bare words, and whether anything but comments follows its first `;`.
fn words(sql: &str) -> Result<(Vec<Word>, bool)> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut depth = 0;
    let mut out = Vec::new();
    let mut ended = false;
    let mut more = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
                continue;
            }
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        if ended {
            more = true;
            break;
        }
        match c {
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(refuse("unterminated quote in the statement")),
                        Some(&q) if q == close => {
                            // A doubled quote is an escaped one (not inside brackets).
                            if close != b']' && b.get(i + 1) == Some(&close) {
                                i += 2;
                                continue;
                            }
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b';' => {
                ended = true;
                i += 1;
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                out.push(Word {
                    text: sql[start..i].to_ascii_uppercase(),
                    depth,
                });
            }
            _ => i += 1,
        }
    }
    Ok((out, more))
}

/// Refuse, before anything runs, a text that is not exactly one query (rules 1 and 2).
pub fn check_statement(sql: &str) -> Result<()> {
    let (words, more) = words(sql)?;
    if more {
        return Err(refuse(
            "send exactly one statement: nothing may follow its `;`",
        ));
    }
    let first = words.first().map(|w| w.text.as_str()).unwrap_or("");
    let main = match first {
        "SELECT" | "VALUES" => first,
        "WITH" => words
            .iter()
            .skip(1)
            .filter(|w| w.depth == 0)
            .map(|w| w.text.as_str())
            .find(|w| {
                matches!(
                    *w,
                    "SELECT" | "VALUES" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE"
                )
            })
            .unwrap_or(""),
        _ => "",
    };
    if matches!(main, "SELECT" | "VALUES") {
        Ok(())
    } else {
        Err(refuse(format!(
            "only a query is read-only SQL (SELECT, VALUES, or WITH … SELECT); `{}` is refused before it runs",
            if first.is_empty() { "an empty statement" } else { first }
        )))
    }
}

/// Refuse, before anything runs, a query whose plan is unbounded or over `budget` rows scanned
/// (rule 3). Returns the estimate of the rows it scans in full.
///
/// The plan is read twice, neither time running the query: `EXPLAIN QUERY PLAN` names a
/// recursive step; the bytecode (`EXPLAIN`) names every cursor opened on a table or index and
/// every loop over a whole one (`Rewind`, `Last`, `Count`), whatever aliases the query uses.
pub fn check_plan<P: Primary>(db: &P, sql: &str, params: &[Value], budget: u64) -> Result<u64> {
    // Syntax errors and unknown tables surface here, as the statement's own errors.
    let plan = db.query(&format!("EXPLAIN QUERY PLAN {sql}"), params)?;
    let recursive = plan
        .iter()
        .any(|row| matches!(row.last(), Some(Value::Text(d)) if d.starts_with("RECURSIVE STEP")));
    if recursive {
        return Err(refuse(
            "a recursive common table expression is refused before it runs: its depth cannot \
             be bounded, and a running statement stalls the whole room",
        ));
    }
    let (words, _) = words(sql)?;
    if words.iter().any(|w| w.text == "GENERATE_SERIES") {
        return Err(refuse(
            "generate_series has no bound: it is refused before it runs",
        ));
    }

    let program = db.query(&format!("EXPLAIN {sql}"), params)?;
    let int = |v: Option<&Value>| match v {
        Some(Value::Integer(i)) => *i,
        _ => -1,
    };
    let mut opened: HashMap<i64, i64> = HashMap::new(); // cursor -> root page (main database)
    let mut whole: Vec<i64> = Vec::new(); // cursors looped over in full
    for row in &program {
        let Some(Value::Text(op)) = row.get(1) else {
            continue;
        };
        let (p1, p2, p3) = (int(row.get(2)), int(row.get(3)), int(row.get(4)));
        match op.as_str() {
            "OpenRead" if p3 == 0 => {
                opened.insert(p1, p2);
            }
            "Rewind" | "Last" | "Count" if !whole.contains(&p1) => whole.push(p1),
            _ => {}
        }
    }
    let mut tables: HashMap<i64, String> = HashMap::new(); // root page -> table
    for row in db.query("SELECT \"tbl_name\", \"rootpage\" FROM sqlite_master", &[])? {
        if let [Value::Text(t), Value::Integer(root)] = &row[..] {
            tables.insert(*root, t.clone());
        }
    }
    let mut rows_of: HashMap<String, u64> = HashMap::new();
    let mut estimate: u64 = 0;
    for cursor in whole {
        let Some(table) = opened.get(&cursor).and_then(|root| tables.get(root)) else {
            continue; // a temporary b-tree: its rows come from the scans counted here
        };
        let n = match rows_of.get(table) {
            Some(n) => *n,
            None => {
                let n = match db.query(&format!("SELECT MAX(rowid) FROM {}", quote(table)), &[]) {
                    Ok(r) => match r.first().and_then(|r| r.first()) {
                        Some(Value::Integer(n)) => (*n).max(0) as u64,
                        _ => 0,
                    },
                    Err(_) => 0,
                };
                rows_of.insert(table.clone(), n);
                n
            }
        };
        // Loops nest: the rows scanned multiply (an upper bound when they do not).
        estimate = if estimate == 0 {
            n
        } else {
            estimate.saturating_mul(n.max(1))
        };
    }
    if estimate > budget {
        return Err(refuse(format!(
            "this query would scan about {estimate} rows; the budget is {budget}: filter on an \
             indexed column, or join on one"
        )));
    }
    Ok(estimate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_only() {
        for ok in [
            "SELECT 1",
            "  select id from tasks where title = 'a;b' -- ; DROP\n",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "WITH x(n) AS (VALUES (1)), y AS (SELECT n FROM x) SELECT * FROM y;",
            "VALUES (1), (2)",
            "SELECT \"weird;name\" FROM [t;1] /* ; */ ;  -- trailing comment",
            "SELECT 'it''s'",
        ] {
            assert!(check_statement(ok).is_ok(), "{ok}");
        }
        for bad in [
            "DROP TABLE tasks",
            "DELETE FROM tasks; SELECT 1",
            "SELECT 1; DELETE FROM tasks",
            "SELECT 1; SELECT 2",
            "PRAGMA reverse_unordered_selects = 1",
            "WITH x AS (SELECT 1) DELETE FROM tasks",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "ATTACH 'x' AS y",
            "EXPLAIN SELECT 1",
            "",
            "  -- only a comment",
            "SELECT 'unterminated",
        ] {
            assert!(check_statement(bad).is_err(), "{bad}");
        }
    }
}
