//! Planning: the current tables and the target tables in, the [`Plan`] out.
//!
//! Renames come only from `renamed_from` (no guessing, no prompts). Everything SQLite can do in
//! place is done in place (`RENAME`, `ADD COLUMN`, `DROP COLUMN`, indexes); the rest rebuilds the
//! table and copies its rows. What would destroy data is listed in [`Plan::data_loss`] and what
//! cannot be done safely in [`Plan::blocked`]; the caller decides whether to write the plan.

use std::borrow::Cow;

use super::shape::{primary_column_in, ColumnShape};
use super::{Change, Plan, Rebuild};
use crate::ident::quote;
use crate::model::{Column, Index, Name, Table};

/// Plan the changes that turn `current` into `target`. Both are lists of tables; `current` is
/// usually read back from the migrations (see [`super::shape::to_table`]), `target` comes from
/// the structs.
pub fn diff(current: &[Table], target: &[Table]) -> Plan {
    let mut plan = Plan::default();

    // Pair each target table with a current one: by name first, then by `renamed_from`, so a
    // table that kept its name is never taken by another table's rename.
    let mut pairs: Vec<(usize, Option<usize>)> = Vec::new();
    let mut taken = vec![false; current.len()];
    for (ti, t) in target.iter().enumerate() {
        let found = current.iter().position(|c| c.name == t.name);
        if let Some(ci) = found {
            taken[ci] = true;
        }
        pairs.push((ti, found));
    }
    for pair in &mut pairs {
        let t = &target[pair.0];
        if pair.1.is_some() {
            continue;
        }
        if let Some(old) = &t.renamed_from {
            if let Some(ci) = current.iter().position(|c| c.name == *old) {
                if !taken[ci] {
                    taken[ci] = true;
                    pair.1 = Some(ci);
                }
            }
        }
    }

    let mut drop_indexes = Vec::new();
    let mut drop_tables = Vec::new();
    let mut alters = Vec::new();
    let mut creates = Vec::new();
    let mut create_indexes = Vec::new();

    for (ti, ci) in pairs {
        let t = &target[ti];
        let Some(ci) = ci else {
            creates.push(Change::CreateTable(t.clone()));
            continue;
        };
        let c = &current[ci];
        let mut tp = TablePlan::new(c, t);
        tp.plan(&mut plan);
        drop_indexes.extend(tp.drop_indexes);
        alters.extend(tp.alters);
        create_indexes.extend(tp.create_indexes);
    }

    for (ci, c) in current.iter().enumerate() {
        if !taken[ci] {
            drop_tables.push(Change::DropTable(c.name.clone()));
            let hint = if creates.is_empty() {
                String::new()
            } else {
                format!(
                    " (if it was renamed, add `renamed_from = \"{}\"` to the table's attribute)",
                    c.name
                )
            };
            plan.data_loss
                .push(format!("table `{}` and all its rows{hint}", c.name));
        }
    }

    // Dropping first frees names (tables and indexes share one namespace per database) for the
    // renames and creations that follow.
    plan.changes.extend(drop_indexes);
    plan.changes.extend(drop_tables);
    plan.changes.extend(alters);
    plan.changes.extend(creates);
    plan.changes.extend(create_indexes);
    plan
}

/// The plan for one table that exists on both sides.
struct TablePlan<'a> {
    current: &'a Table,
    target: &'a Table,
    /// For each target column, the current column it comes from.
    sources: Vec<Option<&'a Column>>,
    drop_indexes: Vec<Change>,
    alters: Vec<Change>,
    create_indexes: Vec<Change>,
}

impl<'a> TablePlan<'a> {
    fn new(current: &'a Table, target: &'a Table) -> TablePlan<'a> {
        let sources = target
            .columns
            .iter()
            .map(|tc| {
                current.column(&tc.name).or_else(|| {
                    let old = tc.renamed_from.as_ref()?;
                    // A column still declared under the old name keeps it.
                    if target.column(old).is_some() {
                        return None;
                    }
                    current.column(old)
                })
            })
            .collect();
        TablePlan {
            current,
            target,
            sources,
            drop_indexes: Vec::new(),
            alters: Vec::new(),
            create_indexes: Vec::new(),
        }
    }

    fn plan(&mut self, plan: &mut Plan) {
        let (c, t) = (self.current, self.target);
        let name = &t.name;

        let dropped: Vec<&Column> = c
            .columns
            .iter()
            .filter(|cc| !self.sources.iter().flatten().any(|s| s.name == cc.name))
            .collect();
        let adds = self.sources.iter().any(Option::is_none);
        for cc in &dropped {
            let hint = if adds {
                format!(
                    " (if it was renamed, mark the field `#[nanotype(renamed_from = \"{}\")]`)",
                    cc.name
                )
            } else {
                String::new()
            };
            plan.data_loss
                .push(format!("column `{name}.{}` and its values{hint}", cc.name));
        }

        let mut reasons = Vec::new();
        for (tc, source) in t.columns.iter().zip(&self.sources) {
            match source {
                Some(cc) => reasons.extend(column_changes((c, cc), (t, tc))),
                None if tc.primary_key => reasons.push(format!("new key column `{}`", tc.name)),
                // A foreign key is part of the table: SQLite adds none in place (and the
                // replica's is a table constraint over `(room_id, column)`).
                None if tc.references.is_some() => {
                    reasons.push(format!("new column `{}` with a reference", tc.name));
                }
                None => {}
            }
        }
        for cc in &dropped {
            if cc.primary_key {
                reasons.push(format!("key column `{}` dropped", cc.name));
            }
        }
        // A composite key whose columns stay but change order (or stop being composite).
        let key_of = |t: &Table, names: &dyn Fn(usize) -> Option<String>| -> Vec<Option<String>> {
            t.key_positions().into_iter().map(names).collect()
        };
        let current_key = key_of(c, &|i| Some(c.columns[i].name.to_string()));
        let target_key = key_of(t, &|i| self.sources[i].map(|s| s.name.to_string()));
        if reasons.is_empty() && current_key != target_key {
            let names: Vec<&str> = t
                .key_positions()
                .into_iter()
                .map(|i| t.columns[i].name.as_ref())
                .collect();
            reasons.push(format!("its key becomes ({})", names.join(", ")));
        }
        let norm = |t: &Table| -> Vec<String> {
            let mut v: Vec<String> = t
                .checks
                .iter()
                .map(|c| crate::migration::shape::normalize_sql(c))
                .collect();
            crate::sort::sort(&mut v);
            v
        };
        if norm(self.current) != norm(t) {
            reasons.push(format!("its checks change to {:?}", norm(t)));
        }

        if reasons.is_empty() {
            self.alter_in_place(plan, &dropped);
        } else {
            self.rebuild(plan, reasons);
        }
    }

    /// Renames, added and dropped columns, changed indexes: all done by `ALTER TABLE`.
    fn alter_in_place(&mut self, plan: &mut Plan, dropped: &[&Column]) {
        let (c, t) = (self.current, self.target);
        let name = &t.name;
        if c.name != t.name {
            self.alters.push(Change::RenameTable {
                from: c.name.clone(),
                to: t.name.clone(),
            });
        }
        for (tc, source) in t.columns.iter().zip(&self.sources) {
            if let Some(cc) = source {
                if cc.name != tc.name {
                    self.alters.push(Change::RenameColumn {
                        table: name.clone(),
                        from: cc.name.clone(),
                        to: tc.name.clone(),
                    });
                }
            }
        }
        for cc in dropped {
            self.alters.push(Change::DropColumn {
                table: name.clone(),
                column: cc.name.clone(),
            });
        }
        for (tc, source) in t.columns.iter().zip(&self.sources) {
            if source.is_some() {
                continue;
            }
            if !tc.nullable && tc.default.is_none() {
                plan.blocked.push(format!(
                    "new column `{name}.{}` is NOT NULL without a default, so the rows already in \
                     `{name}` would have no value: give it `#[nanotype(default = …)]` or make it an \
                     `Option`",
                    tc.name
                ));
            }
            self.alters.push(Change::AddColumn {
                table: name.clone(),
                column: tc.clone(),
            });
        }

        // Indexes, compared after the renames (SQLite rewrites an index when its column or table
        // is renamed).
        let renamed = |col: &str| -> Name {
            t.columns
                .iter()
                .zip(&self.sources)
                .find(|(_, s)| s.is_some_and(|s| s.name == col))
                .map_or_else(|| Cow::Owned(col.to_owned()), |(tc, _)| tc.name.clone())
        };
        let current_indexes: Vec<Index> = c
            .indexes
            .iter()
            .map(|i| Index {
                name: i.name.clone(),
                columns: i.columns.iter().map(|col| renamed(col)).collect(),
                unique: i.unique,
                predicate: i.predicate.clone(),
            })
            .collect();
        for ci in &current_indexes {
            if !t.indexes.contains(ci) {
                self.drop_indexes.push(Change::DropIndex {
                    table: c.name.clone(),
                    index: ci.name.clone(),
                });
            }
        }
        for ti in t.indexes.iter() {
            if !current_indexes.contains(ti) {
                self.create_indexes.push(Change::CreateIndex {
                    table: name.clone(),
                    index: ti.clone(),
                });
            }
        }
    }

    /// Build the target table beside the old one and copy every row across.
    fn rebuild(&mut self, plan: &mut Plan, reasons: Vec<String>) {
        let t = self.target;
        let name = &t.name;
        let mut copy = Vec::new();
        for (tc, source) in t.columns.iter().zip(&self.sources) {
            if let Some(cc) = source {
                let old = quote(&cc.name);
                let may_be_null = !cc.primary_key && cc.nullable;
                let must_not_be_null = tc.primary_key || !tc.nullable;
                let expr = if may_be_null && must_not_be_null {
                    if let (Some(d), false) = (&tc.default, tc.primary_key) {
                        format!("COALESCE({old}, {})", d.to_sql())
                    } else {
                        plan.blocked.push(format!(
                            "column `{name}.{}` becomes {} but existing rows may hold NULL \
                             there: {}",
                            tc.name,
                            if tc.primary_key {
                                "the key"
                            } else {
                                "NOT NULL"
                            },
                            if tc.primary_key {
                                "fill it in a migration of its own first"
                            } else {
                                "give it `#[nanotype(default = …)]` for those rows"
                            }
                        ));
                        old
                    }
                } else {
                    old
                };
                copy.push((tc.name.clone(), expr));
            } else {
                let assigned = tc.primary_key && t.key_is_rowid();
                if !assigned && !tc.nullable && tc.default.is_none() {
                    plan.blocked.push(format!(
                        "new column `{name}.{}` is NOT NULL without a default, so the rows \
                         already in `{name}` would have no value: give it \
                         `#[nanotype(default = …)]` or make it an `Option`",
                        tc.name
                    ));
                }
            }
        }
        self.alters.push(Change::RebuildTable(Rebuild {
            from: self.current.name.clone(),
            table: t.clone(),
            copy,
            reasons,
            with: Vec::new(),
        }));
    }
}

/// What differs between a current column and its target, for a person; empty when nothing does
/// (a rename alone is not a change of the column).
fn column_changes(
    (current_table, current): (&Table, &Column),
    (target_table, target): (&Table, &Column),
) -> Vec<String> {
    let a = primary_column_in(current_table, current);
    let b = primary_column_in(target_table, target);
    let name = &target.name;
    let mut out = Vec::new();
    if a.declared_type != b.declared_type {
        out.push(format!(
            "`{name}` changes type from {} to {}",
            a.declared_type, b.declared_type
        ));
    }
    if a.key_position != b.key_position {
        out.push(if a.key_position > 0 && b.key_position > 0 {
            format!("`{name}` moves to place {} of the key", b.key_position)
        } else if b.key_position > 0 {
            format!("`{name}` becomes the primary key")
        } else {
            format!("`{name}` is no longer the primary key")
        });
    } else if a.not_null != b.not_null {
        out.push(format!(
            "`{name}` becomes {}",
            if b.not_null { "NOT NULL" } else { "nullable" }
        ));
    }
    if a.default != b.default {
        out.push(format!(
            "`{name}` default changes from {} to {}",
            show_default(&a),
            show_default(&b)
        ));
    }
    if a.references != b.references {
        out.push(match &b.references {
            Some(r) => format!("`{name}` references {r}"),
            None => format!(
                "`{name}` no longer references {}",
                a.references.as_deref().unwrap_or("")
            ),
        });
    }
    out
}

fn show_default(c: &ColumnShape) -> &str {
    c.default.as_deref().unwrap_or("none")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Literal, ValueKind};

    fn tasks() -> Table {
        Table::new(
            "tasks",
            "Task",
            vec![
                Column::new("id", ValueKind::I64).primary_key(),
                Column::new("title", ValueKind::String),
                Column::new("due", ValueKind::I64).nullable(),
            ],
        )
    }

    fn with(t: &Table, f: impl FnOnce(&mut Vec<Column>)) -> Table {
        let mut t = t.clone();
        f(t.columns.to_mut());
        t
    }

    #[test]
    fn nothing_to_do() {
        assert!(diff(&[tasks()], &[tasks()]).is_empty());
    }

    #[test]
    fn create_and_drop() {
        let plan = diff(&[], &[tasks()]);
        assert_eq!(plan.changes, vec![Change::CreateTable(tasks())]);
        assert_eq!(plan.default_name(), "create_tasks");
        let plan = diff(&[tasks()], &[]);
        assert_eq!(plan.changes, vec![Change::DropTable("tasks".into())]);
        assert_eq!(plan.data_loss.len(), 1);
        assert!(plan.refusal(false).is_some());
        assert!(plan.refusal(true).is_none());
    }

    #[test]
    fn rename_column_is_in_place() {
        let target = with(&tasks(), |cols| {
            cols[1] = Column::new("name", ValueKind::String).renamed_from("title");
        });
        let plan = diff(&[tasks()], std::slice::from_ref(&target));
        assert_eq!(
            plan.changes,
            vec![Change::RenameColumn {
                table: "tasks".into(),
                from: "title".into(),
                to: "name".into()
            }]
        );
        assert!(plan.data_loss.is_empty());
        // Once applied, `renamed_from` left on the field changes nothing.
        let mut applied = target.clone();
        applied.columns.to_mut()[1].renamed_from = None;
        assert!(diff(&[applied], &[target]).is_empty());
    }

    #[test]
    fn not_null_needs_a_default() {
        let target = with(&tasks(), |cols| {
            cols[2] = Column::new("due", ValueKind::I64);
        });
        let plan = diff(&[tasks()], &[target]);
        assert_eq!(plan.blocked.len(), 1, "{plan:#?}");
        let target = with(&tasks(), |cols| {
            cols[2] = Column::new("due", ValueKind::I64).default(Literal::Integer(0));
        });
        let plan = diff(&[tasks()], &[target]);
        assert!(plan.blocked.is_empty());
        let Change::RebuildTable(r) = &plan.changes[0] else {
            panic!("{plan:#?}")
        };
        assert_eq!(r.copy[2].1, "COALESCE(\"due\", 0)");
    }

    #[test]
    fn add_not_null_without_default_is_blocked() {
        let target = with(&tasks(), |cols| {
            cols.push(Column::new("owner", ValueKind::String));
        });
        assert_eq!(diff(&[tasks()], &[target]).blocked.len(), 1);
    }

    #[test]
    fn same_sql_type_is_no_change() {
        let target = with(&tasks(), |cols| {
            cols[2] = Column::new("due", ValueKind::I32).nullable();
        });
        assert!(diff(&[tasks()], &[target]).is_empty());
    }
}
