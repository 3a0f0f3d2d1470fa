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
//!    and `EXPLAIN`), and every loop of its bytecode is bounded ([`check_plan`]): a loop over a
//!    table or one of its indexes (whole, or a range) by the table's rowid span (two index
//!    probes), any other loop (a sorter, a materialized subquery or common table expression,
//!    a coroutine, `VALUES`) by the rows the statement can have made before it; nested loops
//!    multiply. A recursive query (a loop that feeds what it walks, wherever it appears) and a
//!    table-valued function (`json_each`, `pragma_…`, `generate_series`: its rows are unknown
//!    before it runs) are refused; so is a bound over the budget.
//! 4. **A result of bounded size**: at most `maxRows` rows and
//!    [`crate::actor::analytics::MAX_RESULT_BYTES`].
//!
//! The backends then run the statement as before ([`super::ReadOnlySql`]): the native one under
//! SQLite's read-only checks and an authorizer, the Durable Object's inside a `transactionSync`
//! that always rolls back.

use std::collections::HashMap;
use std::ops::RangeInclusive;

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
#[doc(hidden)]
pub fn check_statement(sql: &str) -> Result<()> {
    let (words, more) = words(sql)?;
    if more {
        return Err(refuse(
            "send exactly one statement: nothing may follow its `;`",
        ));
    }
    let first = words.first().map_or("", |w| w.text.as_str());
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

/// Refuse, before anything runs, a query whose plan is unbounded or over `budget` rows visited
/// (rule 3). Returns the bound of the rows it visits.
///
/// The plan is read twice, neither time running the query: `EXPLAIN QUERY PLAN` names a
/// recursive step; the bytecode (`EXPLAIN`) gives every loop the statement can run, each
/// bounded as the module says, whatever aliases, subqueries or common table expressions the
/// text uses.
#[doc(hidden)]
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
    let program = db.query(&format!("EXPLAIN {sql}"), params)?;
    let mut tables: HashMap<i64, String> = HashMap::new(); // root page -> table (or its index's)
    for row in db.query("SELECT \"tbl_name\", \"rootpage\" FROM sqlite_master", &[])? {
        if let [Value::Text(t), Value::Integer(root)] = &row[..] {
            tables.insert(*root, t.clone());
        }
    }
    let estimate = Program::read(&program).bound(&tables, |table| table_rows(db, table))?;
    if estimate > budget {
        return Err(refuse(format!(
            "this query would scan about {estimate} rows; the budget is {budget}: filter on an \
             indexed column, or join on one"
        )));
    }
    Ok(estimate)
}

/// The most rows `table` can hold: its rowid span, from two index probes (each end of the rowid
/// b-tree), never a scan (but for a table without a rowid). An upper bound of its row count, since rowids are distinct integers;
/// loose for a table whose keys are far apart, which the budget then refuses, never the reverse.
fn table_rows<P: Primary>(db: &P, table: &str) -> Result<u64> {
    let t = quote(table);
    let span = match db.query(
        &format!("SELECT (SELECT MAX(rowid) FROM {t}) - (SELECT MIN(rowid) FROM {t}) + 1"),
        &[],
    ) {
        Ok(span) => span,
        // A table without a rowid (`WITHOUT ROWID`, none of nanotype's own): counted, which
        // reads its rows once.
        Err(crate::Error::Primary(e)) if e.kind == crate::error::SqlKind::Statement => {
            db.query(&format!("SELECT COUNT(*) FROM {t}"), &[])?
        }
        Err(e) => return Err(e),
    };
    Ok(match span.first().and_then(|r| r.first()) {
        Some(Value::Integer(n)) => (*n).max(0) as u64,
        Some(Value::Null) | None => 0,
        // The subtraction overflowed into a real: a span no budget admits.
        Some(_) => u64::MAX,
    })
}

/// A loop of the bytecode: the instructions it repeats, and what bounds its rounds.
#[derive(Debug)]
struct Loop {
    body: RangeInclusive<i64>,
    /// Rounds are bounded by this table's rows (a scan or range of it or one of its indexes);
    /// `None`: by rows the statement made itself (a sorter, a materialized subquery or common
    /// table expression, a coroutine, `VALUES`).
    table: Option<String>,
}

/// A statement's bytecode, as `EXPLAIN` gives it, read for its loops.
///
/// Every loop SQLite compiles ends in a jump back to its head: `Next`, `Prev` or `SorterNext` on
/// the cursor it walks, or `Goto` (coroutines, `VALUES`, the queue of a recursive common table
/// expression). The rounds of a loop over a table or index are at most the table's rows; those
/// of any other loop at most the rows the statement produced before, which are at most the
/// instructions it ran. Loops nest by their bodies (and through the subroutines a body calls):
/// the rows of a nested loop multiply, sibling loops add. The bound is computed again with each
/// derived loop's rounds set to the previous total, once more than there are derived loops, so a
/// chain of subqueries each built from the last (self-joins doubling, cross products of `VALUES`)
/// is bounded by its whole product. Virtual tables (`json_each`, `pragma_…`, `generate_series`)
/// and a loop that feeds the cursor it walks (recursion, however it is written) are refused.
struct Program {
    ops: Vec<(i64, String, i64, i64, i64)>,
    /// The functions the statement calls, by name (`P4` of the calling opcodes).
    functions: Vec<String>,
}

/// The functions read-only SQL may call: those whose output is at most about the size of
/// their inputs, so a row costs what its values cost. `printf`, `format`, `replace`, `hex`,
/// `quote`, `zeroblob`, `randomblob`, `group_concat` and the like can make a value far larger
/// than anything the statement holds, and are refused before it runs.
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    "abs",
    "avg",
    "ceil",
    "ceiling",
    "count",
    "date",
    "datetime",
    "exp",
    "floor",
    "glob",
    "instr",
    "json",
    "json_array",
    "json_array_length",
    "json_extract",
    "json_object",
    "json_type",
    "json_valid",
    "julianday",
    "length",
    "like",
    "likelihood",
    "likely",
    "ln",
    "log",
    "log10",
    "log2",
    "lower",
    "ltrim",
    "max",
    "min",
    "mod",
    "nullif",
    "octet_length",
    "pi",
    "pow",
    "power",
    "random",
    "round",
    "rtrim",
    "sign",
    "sqrt",
    "strftime",
    "substr",
    "substring",
    "sum",
    "time",
    "total",
    "trim",
    "trunc",
    "typeof",
    "unixepoch",
    "unlikely",
    "upper",
    "->",
    "->>",
];

impl Program {
    fn read(rows: &[crate::value::Row]) -> Program {
        let int = |v: Option<&Value>| match v {
            Some(Value::Integer(i)) => *i,
            _ => -1,
        };
        let functions = rows
            .iter()
            .filter(|row| {
                matches!(row.get(1), Some(Value::Text(op)) if op.contains("Func") || op.starts_with("Agg"))
            })
            .filter_map(|row| match row.get(5) {
                Some(Value::Text(p4)) => p4.split('(').next().map(str::to_ascii_lowercase),
                _ => None,
            })
            .filter(|name| !name.is_empty())
            .collect();
        let ops = rows
            .iter()
            .filter_map(|row| match row.get(1) {
                Some(Value::Text(op)) => Some((
                    int(row.first()),
                    op.clone(),
                    int(row.get(2)),
                    int(row.get(3)),
                    int(row.get(4)),
                )),
                _ => None,
            })
            .collect();
        Program { ops, functions }
    }

    /// The most rows the statement can visit, with `rows_of(table)` a table's most rows.
    fn bound(
        &self,
        tables: &HashMap<i64, String>,
        mut rows_of: impl FnMut(&str) -> Result<u64>,
    ) -> Result<u64> {
        if let Some((_, op, ..)) = self.ops.iter().find(|(_, op, ..)| {
            matches!(
                op.as_str(),
                "VOpen" | "VFilter" | "VNext" | "VColumn" | "VInitIn"
            )
        }) {
            return Err(refuse(format!(
                "table-valued functions (json_each, pragma_…, generate_series) are refused \
                 before they run: the rows they produce cannot be bounded (`{op}`)"
            )));
        }
        if let Some(f) = self
            .functions
            .iter()
            .find(|f| !ALLOWED_FUNCTIONS.contains(&f.as_str()))
        {
            return Err(refuse(format!(
                "the function `{f}` is refused before it runs: its result can grow far past its \
                 inputs; read-only SQL calls {}",
                ALLOWED_FUNCTIONS.join(", ")
            )));
        }
        // The instructions after `Init`'s jump set the statement up and jump back once.
        let setup = self
            .ops
            .iter()
            .find(|(_, op, ..)| op == "Init")
            .map_or(i64::MAX, |(_, _, _, p2, _)| *p2);
        // What each cursor walks: a table of the main database (by root page), or rows the
        // statement makes.
        let mut roots: HashMap<i64, i64> = HashMap::new();
        for (_, op, p1, p2, p3) in &self.ops {
            if matches!(op.as_str(), "OpenRead" | "ReopenIdx") && *p3 == 0 {
                roots.insert(*p1, *p2);
            }
        }
        let mut loops: Vec<Loop> = Vec::new();
        for (addr, op, p1, p2, _) in &self.ops {
            let walks = match op.as_str() {
                "Next" | "Prev" | "SorterNext" => Some(*p1),
                "Goto" if *p2 <= *addr && *addr < setup => None,
                "Count" => Some(*p1),
                _ => continue,
            };
            let body = if op == "Count" {
                *addr..=*addr
            } else {
                *p2..=*addr
            };
            // A cursor on a root page that is no table of the schema counts as derived rows.
            let table = walks
                .and_then(|c| roots.get(&c))
                .and_then(|root| tables.get(root))
                .cloned();
            if let Some(cursor) = walks {
                self.refuse_recursion(&body, cursor)?;
            } else {
                // A `Goto` loop: recursion walks a queue it feeds with `Rewind`, not `Next`.
                for (a, op, p1, ..) in &self.ops {
                    if body.contains(a) && op == "Rewind" {
                        self.refuse_recursion(&body, *p1)?;
                    }
                }
            }
            loops.push(Loop { body, table });
        }
        // Resolve the tables the loops walk, and their sizes.
        let mut size: HashMap<String, u64> = HashMap::new();
        for l in &loops {
            if let Some(t) = &l.table {
                if !size.contains_key(t) {
                    size.insert(t.clone(), rows_of(t)?);
                }
            }
        }
        let derived = loops.iter().filter(|l| l.table.is_none()).count();
        let straight = self.ops.len() as u64;
        let mut made = straight;
        let mut total = 0;
        for _ in 0..=derived {
            total = (0..loops.len())
                .filter(|&i| self.parent(&loops, i).is_none())
                .fold(0u64, |acc, i| {
                    acc.saturating_add(self.work(&loops, i, &size, made, 0))
                });
            made = total.saturating_add(straight);
        }
        Ok(total)
    }

    /// The rows loop `i` visits, with what it nests (directly, or in a subroutine it calls).
    fn work(
        &self,
        loops: &[Loop],
        i: usize,
        size: &HashMap<String, u64>,
        made: u64,
        depth: u32,
    ) -> u64 {
        let rounds = match &loops[i].table {
            Some(t) => size.get(t).copied().unwrap_or(u64::MAX),
            None => made,
        };
        if depth > 64 {
            return u64::MAX;
        }
        let inner = self.children(loops, i).into_iter().fold(0u64, |acc, c| {
            acc.saturating_add(self.work(loops, c, size, made, depth + 1))
        });
        rounds.saturating_mul(inner.saturating_add(1))
    }

    /// The innermost loop whose body holds loop `i`'s body, if any.
    fn parent(&self, loops: &[Loop], i: usize) -> Option<usize> {
        let b = &loops[i].body;
        (0..loops.len())
            .filter(|&j| j != i)
            .filter(|&j| {
                let o = &loops[j].body;
                o.start() <= b.start() && b.end() <= o.end() && o != b
            })
            .min_by_key(|&j| loops[j].body.end() - loops[j].body.start())
    }

    /// The loops nested in loop `i`: directly, or inside a subroutine its body calls.
    fn children(&self, loops: &[Loop], i: usize) -> Vec<usize> {
        let body = &loops[i].body;
        let mut out: Vec<usize> = (0..loops.len())
            .filter(|&j| self.parent(loops, j) == Some(i))
            .collect();
        for (addr, op, p1, p2, _) in &self.ops {
            if op != "Gosub" || !body.contains(addr) || body.contains(p2) {
                continue;
            }
            // The subroutine runs from its entry to the last `Return` through its register.
            let end = self
                .ops
                .iter()
                .filter(|(a, o, r, ..)| o == "Return" && r == p1 && a >= p2)
                .map(|(a, ..)| *a)
                .max()
                .unwrap_or(*p2);
            for (j, l) in loops.iter().enumerate() {
                if j != i && l.body.start() >= p2 && *l.body.end() <= end && !out.contains(&j) {
                    out.push(j);
                }
            }
        }
        out
    }

    /// Refuse a loop whose body feeds the cursor it walks: its rounds grow as it runs.
    fn refuse_recursion(&self, body: &RangeInclusive<i64>, cursor: i64) -> Result<()> {
        let feeds = self.ops.iter().any(|(a, op, p1, ..)| {
            body.contains(a)
                && *p1 == cursor
                && matches!(op.as_str(), "Insert" | "IdxInsert" | "SorterInsert")
        });
        if feeds {
            return Err(refuse(
                "a recursive query is refused before it runs: its depth cannot be bounded, \
                 and a running statement stalls the whole room",
            ));
        }
        Ok(())
    }
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
