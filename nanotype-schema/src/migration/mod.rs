//! Migrations: the difference between the schema the migrations build and the schema the structs
//! declare, as a list of [`Change`]s, rendered once for each database.
//!
//! * [`shape`] describes a table as SQLite reports it, from a model or from a database;
//! * [`diff`] compares the current tables with the target tables and plans the changes;
//! * [`render`] turns one plan into two files: the room's SQLite (Durable Object) and the D1
//!   replica, so the two always change together.
//!
//! ```
//! use nanotype_schema::migration::{diff, render};
//! use nanotype_schema::{Column, Literal, Table, ValueKind};
//!
//! let v1 = Table::new("tasks", "Task", vec![Column::new("id", ValueKind::I64).primary_key()]);
//! let mut v2 = v1.clone();
//! v2.columns.to_mut().push(Column::new("done", ValueKind::Bool).default(Literal::Bool(false)));
//!
//! let plan = diff::diff(&[v1], &[v2]);
//! assert_eq!(plan.default_name(), "add_tasks_done");
//! let files = render::render(&plan, "0002_add_tasks_done").unwrap();
//! assert!(files.primary.contains("ALTER TABLE \"tasks\" ADD COLUMN \"done\" INTEGER NOT NULL DEFAULT 0;"));
//! ```

pub mod diff;
pub mod expand;
pub mod introspect;
pub mod render;
pub mod shape;

use std::fmt;

use crate::model::{Column, Index, Name, Table};

/// One step of a migration. Table and column names are SQL names.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The replica's per-room replication state ([`crate::ddl::REPLICA_META`]); D1 only.
    CreateReplicaMeta,
    /// A new table with its indexes.
    CreateTable(Table),
    /// A table renamed (`renamed_from`).
    RenameTable {
        /// The old name.
        from: Name,
        /// The new name.
        to: Name,
    },
    /// A column renamed (`renamed_from` on the field).
    RenameColumn {
        /// The table.
        table: Name,
        /// The old name.
        from: Name,
        /// The new name.
        to: Name,
    },
    /// A column SQLite can add in place: nullable, or NOT NULL with a default.
    AddColumn {
        /// The table.
        table: Name,
        /// The new column.
        column: Column,
    },
    /// Loses the column's data: planned only with permission.
    DropColumn {
        /// The table.
        table: Name,
        /// The column dropped.
        column: Name,
    },
    /// Loses the table's rows: planned only with permission.
    DropTable(Name),
    /// A new index (`room_id` first in the replica).
    CreateIndex {
        /// The table.
        table: Name,
        /// The index.
        index: Index,
    },
    /// An index dropped.
    DropIndex {
        /// The table.
        table: Name,
        /// The index's name.
        index: Name,
    },
    /// A change SQLite cannot make in place (type, nullability, default or key): build the target
    /// table beside the old one, copy the rows, swap, recreate the indexes.
    RebuildTable(Rebuild),
}

/// A table rebuild: the target table, and where each of its columns comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Rebuild {
    /// The table's current name (it may also be renamed by the rebuild).
    pub from: Name,
    /// The target table.
    pub table: Table,
    /// `(target column, SQL expression over the old table's columns)`. Target columns not listed
    /// take their default (or NULL, or an assigned rowid).
    pub copy: Vec<(Name, String)>,
    /// Why the table is rebuilt, for the migration's comment and the CLI's summary.
    pub reasons: Vec<String>,
    /// The tables that reference this one, rebuilt with it in dependency order (parents first):
    /// every new table is built and filled before any old one is dropped, and the old ones are
    /// dropped children first, so no `ON DELETE` ever runs (D1 ignores `PRAGMA foreign_keys`).
    pub with: Vec<Rebuild>,
}

impl Rebuild {
    /// An identical copy of `table` (every column by name): how a table that references a
    /// rebuilt one is carried along.
    pub fn carry(table: &Table, reason: String) -> Rebuild {
        Rebuild {
            from: table.name.clone(),
            table: table.clone(),
            copy: table
                .columns
                .iter()
                .map(|c| (c.name.clone(), crate::ident::quote(&c.name)))
                .collect(),
            reasons: vec![reason],
            with: Vec::new(),
        }
    }
}

/// Everything needed to bring the current schema to the target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// In the order they run.
    pub changes: Vec<Change>,
    /// What the plan would destroy (dropped tables and columns): refused without permission.
    pub data_loss: Vec<String>,
    /// Changes that cannot be made safely at all, with what to do instead.
    pub blocked: Vec<String>,
}

/// Why a plan may not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Data the plan would destroy, when permission was not given.
    pub data_loss: Vec<String>,
    /// Changes that cannot be planned as asked (a key change, a type no rebuild can convert), with why.
    pub blocked: Vec<String>,
}

/// Whether the Worker version running before a migration still works after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compatibility {
    /// Only adds (tables, columns with a default or nullable, indexes) or drops an index: apply
    /// it to D1, then deploy; the old and the new Worker both work in between.
    Additive,
    /// Renames, drops or rebuilds something the old Worker uses: it breaks between the D1
    /// migration and the deploy. The reasons say what.
    Breaking(Vec<String>),
}

impl std::fmt::Display for Compatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compatibility::Additive => write!(
                f,
                "additive: apply D1 first, then deploy; the old and the new Worker both work in between"
            ),
            Compatibility::Breaking(why) => write!(
                f,
                "breaking ({}): the Worker running now fails on it between the D1 migration and the \
                 deploy; deploy in a quiet moment, or split it into expand (add the new, write both, \
                 backfill) and contract (drop the old) migrations",
                why.join("; ")
            ),
        }
    }
}

impl Plan {
    /// Whether the Worker running now survives this migration ([`Compatibility`]).
    pub fn compatibility(&self) -> Compatibility {
        let mut why = Vec::new();
        for change in &self.changes {
            match change {
                Change::CreateReplicaMeta
                | Change::CreateTable(_)
                | Change::AddColumn { .. }
                | Change::CreateIndex { .. }
                | Change::DropIndex { .. } => {}
                Change::RenameTable { from, to } => {
                    why.push(format!("table `{from}` renamed to `{to}`"));
                }
                Change::RenameColumn { table, from, to } => {
                    why.push(format!("column `{table}.{from}` renamed to `{to}`"));
                }
                Change::DropColumn { table, column } => {
                    why.push(format!("column `{table}.{column}` dropped"));
                }
                Change::DropTable(t) => why.push(format!("table `{t}` dropped")),
                Change::RebuildTable(r) => {
                    why.push(format!(
                        "table `{}` rebuilt: {}",
                        r.table.name,
                        r.reasons.join(", ")
                    ));
                    // A table carried along names its own changes, past the reference.
                    for w in &r.with {
                        if w.reasons.len() > 1 {
                            why.push(format!(
                                "table `{}` rebuilt with it: {}",
                                w.table.name,
                                w.reasons[1..].join(", ")
                            ));
                        }
                    }
                }
            }
        }
        if why.is_empty() {
            Compatibility::Additive
        } else {
            Compatibility::Breaking(why)
        }
    }

    /// No change at all.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Add the replica's metadata table, first (the D1 migrations do not create it yet).
    pub fn create_replica_meta(&mut self) {
        if !self.changes.contains(&Change::CreateReplicaMeta) {
            self.changes.insert(0, Change::CreateReplicaMeta);
        }
    }

    /// `None` when the plan may be written; otherwise what stands in the way.
    pub fn refusal(&self, allow_data_loss: bool) -> Option<Refusal> {
        let data_loss = if allow_data_loss {
            Vec::new()
        } else {
            self.data_loss.clone()
        };
        if data_loss.is_empty() && self.blocked.is_empty() {
            None
        } else {
            Some(Refusal {
                data_loss,
                blocked: self.blocked.clone(),
            })
        }
    }

    /// A file name for the plan, from what it changes: `create_tasks`, `add_tasks_due_owner`,
    /// `rename_todo_to_tasks`. At most 60 characters, `[a-z0-9_]`.
    pub fn default_name(&self) -> String {
        let slugs: Vec<Slug> = self.changes.iter().filter_map(Change::slug).collect();
        // Index changes that come with other changes (e.g. a renamed table's indexes) go unnamed.
        let main: Vec<&Slug> = slugs
            .iter()
            .filter(|s| !s.verb.ends_with("index"))
            .collect();
        let chosen: Vec<&Slug> = if main.is_empty() {
            slugs.iter().collect()
        } else {
            main
        };
        // One group per verb, in order of first appearance; the table is said once per run.
        let mut groups: Vec<(&str, Vec<&Slug>)> = Vec::new();
        for s in chosen {
            match groups.iter_mut().find(|(v, _)| *v == s.verb) {
                Some((_, members)) => members.push(s),
                None => groups.push((s.verb, vec![s])),
            }
        }
        let mut parts: Vec<String> = groups
            .iter()
            .take(2)
            .map(|(verb, members)| {
                let mut words = vec![verb.to_string()];
                let mut last_table: Option<&str> = None;
                for m in members {
                    if last_table != Some(m.table.as_str()) {
                        words.push(m.table.clone());
                        last_table = Some(&m.table);
                    }
                    words.extend(m.detail.clone());
                }
                words.dedup();
                words.join("_")
            })
            .collect();
        if groups.len() > 2 {
            parts.push("more".into());
        }
        let name = if parts.is_empty() {
            "replica_meta".to_owned()
        } else {
            parts.join("_and_")
        };
        slug(&name, 60)
    }
}

/// The words a change contributes to a migration's name.
struct Slug {
    verb: &'static str,
    table: String,
    detail: Option<String>,
}

/// `text` as a file-name part: lower case ASCII letters, digits and single `_`, at most `max`
/// characters, cut at a `_`.
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.len() > max {
        let cut = out[..max].rfind('_').unwrap_or(max);
        out.truncate(cut);
    }
    if out.is_empty() {
        out.push_str("migration");
    }
    out
}

impl Change {
    fn slug(&self) -> Option<Slug> {
        let slug = |verb, table: &str, detail: Option<String>| Slug {
            verb,
            table: table.to_owned(),
            detail,
        };
        // Default index names start with their table's name; say it once.
        let index_detail = |table: &str, index: &str| {
            Some(
                index
                    .strip_prefix(&format!("{table}_"))
                    .unwrap_or(index)
                    .to_owned(),
            )
        };
        Some(match self {
            Change::CreateReplicaMeta => return None,
            Change::CreateTable(t) => slug("create", &t.name, None),
            Change::RenameTable { from, to } => slug("rename", from, Some(format!("to_{to}"))),
            Change::RenameColumn { table, from, to } => {
                slug("rename", table, Some(format!("{from}_to_{to}")))
            }
            Change::AddColumn { table, column } => {
                slug("add", table, Some(column.name.to_string()))
            }
            Change::DropColumn { table, column } => slug("drop", table, Some(column.to_string())),
            Change::DropTable(t) => slug("drop", t, None),
            Change::CreateIndex { table, index } => {
                slug("index", table, index_detail(table, &index.name))
            }
            Change::DropIndex { table, index } => {
                slug("drop_index", table, index_detail(table, index))
            }
            Change::RebuildTable(r) => slug("alter", &r.table.name, None),
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateReplicaMeta => write!(
                f,
                "create table `{}` (D1 only: the replica's per-room sync state)",
                crate::ddl::ROOMS_TABLE
            ),
            Change::CreateTable(t) => {
                write!(f, "create table `{}`", t.name)?;
                if !t.indexes.is_empty() {
                    let names: Vec<&str> = t.indexes.iter().map(|i| i.name.as_ref()).collect();
                    write!(f, " with index {}", names.join(", "))?;
                }
                Ok(())
            }
            Change::RenameTable { from, to } => write!(f, "rename table `{from}` to `{to}`"),
            Change::RenameColumn { table, from, to } => {
                write!(f, "rename column `{table}.{from}` to `{to}`")
            }
            Change::AddColumn { table, column } => write!(
                f,
                "add column `{table}.{}` {}",
                column.name,
                shape::primary_column(column)
            ),
            Change::DropColumn { table, column } => {
                write!(f, "drop column `{table}.{column}` (its data is lost)")
            }
            Change::DropTable(t) => write!(f, "drop table `{t}` (its rows are lost)"),
            Change::CreateIndex { table, index } => {
                write!(
                    f,
                    "create {}index `{}` on `{table}` ({})",
                    if index.unique { "unique " } else { "" },
                    index.name,
                    index.columns.join(", ")
                )?;
                match &index.predicate {
                    Some(p) => write!(f, " WHERE {p}"),
                    None => Ok(()),
                }
            }
            Change::DropIndex { table, index } => write!(f, "drop index `{index}` on `{table}`"),
            Change::RebuildTable(r) => {
                write!(f, "rebuild table `{}`", r.table.name)?;
                if r.from != r.table.name {
                    write!(f, " (was `{}`)", r.from)?;
                }
                write!(f, ", keeping its rows: {}", r.reasons.join("; "))?;
                if !r.with.is_empty() {
                    // Each table carried along, with what changes in it: its own rebuild's
                    // reasons, or only that it references this one.
                    let names: Vec<String> = r
                        .with
                        .iter()
                        .map(|w| format!("`{}` ({})", w.table.name, w.reasons.join("; ")))
                        .collect();
                    write!(f, "; with {}", names.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.data_loss.is_empty() {
            writeln!(
                f,
                "this migration would destroy data; run again with --allow-data-loss to accept:"
            )?;
            for d in &self.data_loss {
                writeln!(f, "  - {d}")?;
            }
        }
        if !self.blocked.is_empty() {
            writeln!(f, "these changes cannot be made safely:")?;
            for b in &self.blocked {
                writeln!(f, "  - {b}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Index;

    #[test]
    fn a_partial_index_is_described_with_its_where() {
        let index = Index {
            name: "tasks_open_idx".into(),
            columns: vec!["status".into()].into(),
            unique: false,
            predicate: Some("\"status\" = 'open'".into()),
        };
        let change = Change::CreateIndex {
            table: "tasks".into(),
            index,
        };
        assert_eq!(
            change.to_string(),
            "create index `tasks_open_idx` on `tasks` (status) WHERE \"status\" = 'open'"
        );
    }
}
