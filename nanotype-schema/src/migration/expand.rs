//! Expand and contract: a breaking change to D1 written as two steps, so that the Worker running
//! before a deploy and the one after it both work in between (the way pgroll does it for
//! Postgres).
//!
//! A room's SQLite changes together with the code that uses it: each Durable Object applies its
//! migrations when the new Worker version starts it. D1 is shared, is migrated before the deploy,
//! and during a rollout is read and written by both versions. So only D1 needs two steps, and only
//! for the changes that break the old version there: a column renamed or dropped.
//!
//! * **Expand** (applied to D1 before the deploy): each changed table is rebuilt to hold both
//!   versions' columns — the old ones, made nullable (the new Worker does not write them), the new
//!   ones (nullable until the contract) — copied from the old; triggers keep a renamed column and
//!   its old name equal whichever version writes (`AFTER INSERT` fills the one left NULL, `AFTER
//!   UPDATE OF` copies a change across). The room's own migration makes the real change.
//! * **Contract** (applied once no old Worker runs): each table is rebuilt to exactly the target,
//!   which drops the old columns and the triggers with the old table. The room has nothing to do.
//!
//! While an expand waits for its contract, the D1 migrations hold the expanded tables; the files
//! say so in a marker line that gen-migrations reads back ([`TableExpansion::marker`]).

use std::borrow::Cow;

use super::{Change, Plan, Rebuild};
use crate::ident::quote;
use crate::model::Table;
use crate::{RESERVED_PREFIX, ROOM_COLUMN};

/// The start of the marker line of an expand file (D1), one line per table.
pub const EXPAND_MARKER: &str = "-- nanotype-expand:";
/// The marker line of a contract file (D1), naming the expand it completes.
pub const CONTRACT_MARKER: &str = "-- nanotype-contract:";

/// One table's part of an expand step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableExpansion {
    /// The table (its name in the target schema).
    pub table: String,
    /// `(old, new)` names of renamed columns.
    pub renamed: Vec<(String, String)>,
    /// Dropped columns, which D1 keeps until the contract.
    pub dropped: Vec<String>,
}

impl TableExpansion {
    /// The marker line: `-- nanotype-expand: table=tasks rename=title:name drop=legacy`.
    pub fn marker(&self) -> String {
        let mut s = format!("{EXPAND_MARKER} table={}", self.table);
        for (old, new) in &self.renamed {
            s.push_str(&format!(" rename={old}:{new}"));
        }
        for d in &self.dropped {
            s.push_str(&format!(" drop={d}"));
        }
        s
    }

    /// The expansions of a file's marker lines.
    pub fn parse_all(text: &str) -> Vec<TableExpansion> {
        text.lines()
            .filter_map(|l| l.strip_prefix(EXPAND_MARKER))
            .map(|rest| {
                let mut t = TableExpansion::default();
                for word in rest.split_whitespace() {
                    if let Some(name) = word.strip_prefix("table=") {
                        t.table = name.to_owned();
                    } else if let Some(pair) = word.strip_prefix("rename=") {
                        if let Some((old, new)) = pair.split_once(':') {
                            t.renamed.push((old.to_owned(), new.to_owned()));
                        }
                    } else if let Some(name) = word.strip_prefix("drop=") {
                        t.dropped.push(name.to_owned());
                    }
                }
                t
            })
            .collect()
    }

    /// The table as D1 holds it between expand and contract: `target`, its new columns
    /// nullable, plus the renamed and dropped columns of `old` (the table before the change)
    /// nullable, and the indexes of both.
    pub fn expanded(&self, target: &Table, old: &Table) -> Table {
        let mut t = target.clone();
        let cols = t.columns.to_mut();
        for c in cols.iter_mut() {
            if self.renamed.iter().any(|(_, new)| *new == c.name) {
                c.nullable = true;
            }
        }
        for name in self.renamed.iter().map(|(old, _)| old).chain(&self.dropped) {
            if let Some(c) = old.columns.iter().find(|c| c.name == name.as_str()) {
                let mut c = c.clone();
                c.nullable = true;
                c.renamed_from = None;
                cols.push(c);
            }
        }
        let indexes = t.indexes.to_mut();
        for i in old.indexes.iter() {
            if !indexes.iter().any(|j| j.name == i.name) {
                indexes.push(i.clone());
            }
        }
        t.renamed_from = None;
        t
    }

    /// The triggers that keep each renamed column equal to its old name in D1, whichever Worker
    /// version writes (`CREATE TRIGGER` statements).
    pub fn triggers(&self, target: &Table) -> Vec<String> {
        let table = quote(&self.table);
        let mut key = vec![quote(ROOM_COLUMN)];
        key.extend(
            target
                .key_positions()
                .into_iter()
                .map(|i| quote(&target.columns[i].name)),
        );
        let row = key
            .iter()
            .map(|k| format!("{k} = NEW.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut out = Vec::new();
        for (old, new) in &self.renamed {
            let name = |what: &str| {
                quote(&format!(
                    "{RESERVED_PREFIX}expand_{}_{old}_{new}_{what}",
                    self.table
                ))
            };
            let (o, n) = (quote(old), quote(new));
            out.push(format!(
                "CREATE TRIGGER {} AFTER INSERT ON {table} WHEN NEW.{n} IS NULL OR NEW.{o} IS NULL \
                 BEGIN UPDATE {table} SET {n} = COALESCE(NEW.{n}, NEW.{o}), {o} = COALESCE(NEW.{o}, NEW.{n}) \
                 WHERE {row}; END;",
                name("ins")
            ));
            for (from, to, what) in [(&o, &n, "old"), (&n, &o, "new")] {
                out.push(format!(
                    "CREATE TRIGGER {} AFTER UPDATE OF {from} ON {table} \
                     WHEN NEW.{from} IS NOT OLD.{from} AND NEW.{from} IS NOT NEW.{to} \
                     BEGIN UPDATE {table} SET {to} = NEW.{from} WHERE {row}; END;",
                    name(what)
                ));
            }
        }
        out
    }
}

/// Why `plan` cannot be written as expand and contract steps, if it cannot: only column renames
/// and drops (beside additive changes) can, and not of a key column nor of a column in a
/// foreign key.
pub fn unsupported(plan: &Plan, current: &[Table]) -> Vec<String> {
    let mut out = Vec::new();
    let column = |table: &str, name: &str| {
        current
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| t.column(name))
            .cloned()
    };
    let referenced = |table: &str, name: &str| {
        current.iter().any(|t| {
            t.columns.iter().any(|c| {
                c.references
                    .as_ref()
                    .is_some_and(|r| r.table == table && r.column == name)
            })
        })
    };
    for change in &plan.changes {
        match change {
            Change::RenameColumn {
                table, from: name, ..
            }
            | Change::DropColumn {
                table,
                column: name,
            } => {
                let Some(c) = column(table, name) else {
                    continue;
                };
                if c.primary_key || c.references.is_some() || referenced(table, name) {
                    out.push(format!(
                        "`{table}.{name}` is part of a key or a foreign key: write it as one step"
                    ));
                }
            }
            Change::RenameTable { from, to } => out.push(format!(
                "table `{from}` renamed to `{to}`: only column renames and drops have expand and contract steps"
            )),
            Change::DropTable(t) => out.push(format!(
                "table `{t}` dropped: only column renames and drops have expand and contract steps"
            )),
            Change::RebuildTable(r) => out.push(format!(
                "table `{}` rebuilt ({}): only column renames and drops have expand and contract steps",
                r.table.name,
                r.reasons.join(", ")
            )),
            _ => {}
        }
    }
    out
}

/// The expansions of `plan`'s renamed and dropped columns, per table (target names).
pub fn expansions(plan: &Plan) -> Vec<TableExpansion> {
    let mut out: Vec<TableExpansion> = Vec::new();
    for change in &plan.changes {
        let (table, entry) = match change {
            Change::RenameColumn { table, from, to } => {
                (table, (Some((from.to_string(), to.to_string())), None))
            }
            Change::DropColumn { table, column } => (table, (None, Some(column.to_string()))),
            _ => continue,
        };
        let i = if let Some(i) = out.iter().position(|t| t.table == table.as_ref()) {
            i
        } else {
            out.push(TableExpansion {
                table: table.to_string(),
                ..TableExpansion::default()
            });
            out.len() - 1
        };
        if let Some(pair) = entry.0 {
            out[i].renamed.push(pair);
        }
        if let Some(d) = entry.1 {
            out[i].dropped.push(d);
        }
    }
    out
}

/// The D1 plan of an expand step: `plan`'s changes to other tables, and each expanded table
/// rebuilt from `current` (its old columns copied by name, a renamed column from its old name).
pub fn expand_plan(
    plan: &Plan,
    expansions: &[TableExpansion],
    current: &[Table],
    target: &[Table],
) -> Plan {
    let affected = |t: &str| expansions.iter().any(|e| e.table == t);
    let mut out = Plan {
        changes: plan
            .changes
            .iter()
            .filter(|c| match c {
                Change::AddColumn { table, .. }
                | Change::CreateIndex { table, .. }
                | Change::DropIndex { table, .. }
                | Change::RenameColumn { table, .. }
                | Change::DropColumn { table, .. } => !affected(table),
                _ => true,
            })
            .cloned()
            .collect(),
        data_loss: Vec::new(),
        blocked: Vec::new(),
    };
    for e in expansions {
        let (Some(new), Some(old)) = (
            target.iter().find(|t| t.name == e.table.as_str()),
            current.iter().find(|t| t.name == e.table.as_str()),
        ) else {
            continue;
        };
        let table = e.expanded(new, old);
        let copy = table
            .columns
            .iter()
            .map(|c| {
                let source = e
                    .renamed
                    .iter()
                    .find(|(_, n)| *n == c.name)
                    .map_or(c.name.as_ref(), |(o, _)| o.as_str());
                (c.name.clone(), quote(source))
            })
            .collect();
        out.changes.push(Change::RebuildTable(Rebuild {
            from: Cow::Owned(e.table.clone()),
            table,
            copy,
            reasons: vec![format!("expand: {}", describe(e))],
            with: Vec::new(),
        }));
    }
    out
}

/// The D1 plan of a contract step: each expanded table rebuilt to its target.
pub fn contract_plan(expansions: &[TableExpansion], target: &[Table]) -> Plan {
    let mut out = Plan::default();
    for e in expansions {
        let Some(to) = target.iter().find(|t| t.name == e.table.as_str()) else {
            continue;
        };
        out.changes.push(Change::RebuildTable(Rebuild {
            from: Cow::Owned(e.table.clone()),
            table: to.clone(),
            copy: to
                .columns
                .iter()
                .map(|c| (c.name.clone(), quote(&c.name)))
                .collect(),
            reasons: vec![format!("contract: {}", describe(e))],
            with: Vec::new(),
        }));
    }
    out
}

/// [`describe`] of each, joined with `; `.
pub fn describe_all(expansions: &[TableExpansion]) -> String {
    expansions
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `title renamed to name, legacy dropped`.
pub fn describe(e: &TableExpansion) -> String {
    let mut parts: Vec<String> = e
        .renamed
        .iter()
        .map(|(o, n)| format!("`{o}` renamed to `{n}`"))
        .collect();
    parts.extend(e.dropped.iter().map(|d| format!("`{d}` dropped")));
    format!("`{}`: {}", e.table, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_read_back() {
        let e = TableExpansion {
            table: "tasks".into(),
            renamed: vec![("title".into(), "name".into())],
            dropped: vec!["legacy".into()],
        };
        let text = format!("-- x\n{}\nCREATE TABLE t (a);\n", e.marker());
        assert_eq!(TableExpansion::parse_all(&text), vec![e]);
    }
}
