//! One [`Plan`], two files: the room's SQLite (Durable Object) and the D1 replica.
//!
//! Both are rendered from the same changes with [`crate::ddl`]'s `primary_*` and `replica_*`
//! functions, so a table is created by a migration exactly as the macro renders it. A rebuild
//! never turns foreign keys off (`PRAGMA foreign_keys=OFF` is ignored by D1, and inside a
//! transaction by SQLite): nanotype declares no foreign keys, so dropping the old table cascades
//! to nothing.

use super::{Change, Plan, Rebuild};
use crate::ddl;
use crate::ident::quote;
use crate::{RESERVED_PREFIX, ROOM_COLUMN};

/// D1 refuses a statement longer than this (bytes).
pub const D1_MAX_STATEMENT_BYTES: usize = 100_000;
/// D1 refuses a table with more columns than this.
pub const D1_MAX_COLUMNS: usize = 100;

/// Which database a file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The room's SQLite in its Durable Object.
    Primary,
    /// The shared D1 database: every table carries `room_id`.
    Replica,
}

/// The two files of one migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// For `migrations/do/`.
    pub primary: String,
    /// For `migrations/` (D1).
    pub replica: String,
}

/// The name a table has while it is rebuilt. User names cannot start with `_nt_`, so it never
/// clashes.
pub fn rebuild_name(table: &str) -> String {
    format!("{RESERVED_PREFIX}rebuild_{table}")
}

/// The statements of one change for one side, in order.
pub fn statements(change: &Change, side: Side) -> Vec<String> {
    let replica = side == Side::Replica;
    match change {
        Change::CreateReplicaMeta if replica => vec![ddl::REPLICA_META.to_owned()],
        Change::CreateReplicaMeta => Vec::new(),
        Change::CreateTable(t) => {
            let mut out = vec![if replica {
                ddl::replica_table(t)
            } else {
                ddl::primary_table(t)
            }];
            out.extend(t.indexes.iter().map(|i| index(&t.name, i, side)));
            out
        }
        Change::RenameTable { from, to } => {
            vec![format!(
                "ALTER TABLE {} RENAME TO {};",
                quote(from),
                quote(to)
            )]
        }
        Change::RenameColumn { table, from, to } => vec![format!(
            "ALTER TABLE {} RENAME COLUMN {} TO {};",
            quote(table),
            quote(from),
            quote(to)
        )],
        Change::AddColumn { table, column } => vec![format!(
            "ALTER TABLE {} ADD COLUMN {};",
            quote(table),
            if replica {
                ddl::replica_column(column)
            } else {
                ddl::primary_column(column)
            }
        )],
        Change::DropColumn { table, column } => vec![format!(
            "ALTER TABLE {} DROP COLUMN {};",
            quote(table),
            quote(column)
        )],
        Change::DropTable(t) => vec![format!("DROP TABLE {};", quote(t))],
        Change::CreateIndex { table, index: i } => vec![index(table, i, side)],
        Change::DropIndex { index, .. } => vec![format!("DROP INDEX {};", quote(index))],
        Change::RebuildTable(r) => rebuild(r, side),
    }
}

fn index(table: &str, i: &crate::model::Index, side: Side) -> String {
    match side {
        Side::Primary => ddl::primary_index(table, i),
        Side::Replica => ddl::replica_index(table, i),
    }
}

fn rebuild(r: &Rebuild, side: Side) -> Vec<String> {
    // The table and those that reference it, parents first.
    let members: Vec<&Rebuild> = std::iter::once(r).chain(r.with.iter()).collect();
    let temp_of = |name: &str| {
        members
            .iter()
            .find(|m| m.table.name == name)
            .map(|m| rebuild_name(&m.table.name))
    };
    let mut out = Vec::new();
    // New tables, their references pointing at the other new tables (themselves included):
    // renaming a table below rewrites the references to it.
    for m in &members {
        let mut t = m.table.clone();
        for c in t.columns.to_mut().iter_mut() {
            if let Some(reference) = c.references.as_mut() {
                if let Some(temp) = temp_of(&reference.table) {
                    reference.table = std::borrow::Cow::Owned(temp);
                }
            }
        }
        let temp = rebuild_name(&m.table.name);
        t.name = std::borrow::Cow::Owned(temp.clone());
        out.push(match side {
            Side::Primary => ddl::primary_table_named(&t, &temp),
            Side::Replica => ddl::replica_table_named(&t, &temp),
        });
    }
    for m in &members {
        let mut targets = Vec::new();
        let mut sources = Vec::new();
        if side == Side::Replica {
            targets.push(quote(ROOM_COLUMN));
            sources.push(quote(ROOM_COLUMN));
        }
        for (col, expr) in &m.copy {
            targets.push(quote(col));
            sources.push(expr.clone());
        }
        out.push(format!(
            "INSERT INTO {} ({}) SELECT {} FROM {};",
            quote(&rebuild_name(&m.table.name)),
            targets.join(", "),
            sources.join(", "),
            quote(&m.from)
        ));
    }
    // Old tables, children first: nothing references a table when it is dropped.
    for m in members.iter().rev() {
        out.push(format!("DROP TABLE {};", quote(&m.from)));
    }
    for m in &members {
        out.push(format!(
            "ALTER TABLE {} RENAME TO {};",
            quote(&rebuild_name(&m.table.name)),
            quote(&m.table.name)
        ));
    }
    for m in &members {
        out.extend(
            m.table
                .indexes
                .iter()
                .map(|i| index(&m.table.name, i, side)),
        );
    }
    out
}

/// The text of one file: a header naming the migration and its changes, then each change's
/// statements under a comment.
pub fn file(plan: &Plan, title: &str, side: Side) -> String {
    file_with_deploy(plan, title, side, &plan.compatibility().to_string())
}

/// [`file()`] with its own `Deploy:` line (an expand or contract step says when it applies).
pub fn file_with_deploy(plan: &Plan, title: &str, side: Side, deploy: &str) -> String {
    let what = match side {
        Side::Primary => "the room's SQLite (Durable Object)",
        Side::Replica => "the D1 replica (every table carries room_id)",
    };
    let mut s = format!(
        "-- Migration {} for {what}.\n\
         -- Written by gen-migrations from the #[nanotype::table] structs. Its next run replays this\n\
         -- file to learn the schema, so a hand edit is taken into account.\n\
         -- Deploy: {}.\n",
        one_line(title),
        one_line(deploy)
    );
    for change in &plan.changes {
        let stmts = statements(change, side);
        if stmts.is_empty() {
            continue;
        }
        s.push_str("\n-- ");
        s.push_str(&one_line(&change.to_string()));
        s.push('\n');
        if let Change::RebuildTable(r) = change {
            s.push_str(&format!(
                "-- The rows are copied into {} and the tables swapped. Tables that reference it are\n\
                 -- rebuilt with it: every new table is filled before an old one is dropped, children\n\
                 -- first, so no ON DELETE runs and no PRAGMA is needed (D1 ignores\n\
                 -- PRAGMA foreign_keys).\n",
                rebuild_name(&r.table.name)
            ));
        }
        for stmt in stmts {
            s.push_str(&stmt);
            s.push('\n');
        }
    }
    s
}

/// Both files of a plan, or what in it D1 would refuse.
pub fn render(plan: &Plan, title: &str) -> Result<Rendered, Vec<String>> {
    let problems = d1_limits(plan);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Rendered {
        primary: file(plan, title, Side::Primary),
        replica: file(plan, title, Side::Replica),
    })
}

/// What D1 would refuse: statements over [`D1_MAX_STATEMENT_BYTES`], tables over
/// [`D1_MAX_COLUMNS`] (with `room_id`).
pub fn d1_limits(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for change in &plan.changes {
        let table = match change {
            Change::CreateTable(t) => Some(t),
            Change::RebuildTable(r) => Some(&r.table),
            _ => None,
        };
        if let Change::RebuildTable(r) = change {
            out.extend(r.with.iter().filter_map(|w| d1_column_limit(&w.table)));
        }
        if let Some(problem) = table.and_then(d1_column_limit) {
            out.push(problem);
        }
        for stmt in statements(change, Side::Replica) {
            if stmt.len() > D1_MAX_STATEMENT_BYTES {
                out.push(format!(
                    "a statement of `{}` is {} bytes; D1 allows {D1_MAX_STATEMENT_BYTES}",
                    one_line(&change.to_string()),
                    stmt.len()
                ));
            }
        }
    }
    out
}

/// Why D1 would refuse `table` for its number of columns (with `room_id`), if it would. Check the
/// target tables with it too: a plan that only adds columns does not know the table's width.
pub fn d1_column_limit(table: &crate::model::Table) -> Option<String> {
    let n = table.columns.len() + 1;
    (n > D1_MAX_COLUMNS).then(|| {
        format!(
            "table `{}` would have {n} columns in D1 (with `{ROOM_COLUMN}`); D1 allows {D1_MAX_COLUMNS}",
            table.name
        )
    })
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::diff::diff;
    use crate::model::{Column, Index, Literal, Table, ValueKind};

    fn v1() -> Table {
        Table::new(
            "tasks",
            "Task",
            vec![
                Column::new("id", ValueKind::I64).primary_key(),
                Column::new("due", ValueKind::I64).nullable(),
            ],
        )
        .with_index(Index::new("tasks_due_idx", &["due"], false))
    }

    #[test]
    fn rebuild_keeps_room_id_on_d1() {
        let mut v2 = v1();
        v2.columns.to_mut()[1] = Column::new("due", ValueKind::I64).default(Literal::Integer(0));
        let plan = diff(&[v1()], &[v2]);
        let files = render(&plan, "0002_alter_tasks").unwrap();
        assert!(files.replica.contains(
            "INSERT INTO \"_nt_rebuild_tasks\" (\"room_id\", \"id\", \"due\") SELECT \"room_id\", \"id\", COALESCE(\"due\", 0) FROM \"tasks\";"
        ), "{}", files.replica);
        assert!(files.primary.contains(
            "INSERT INTO \"_nt_rebuild_tasks\" (\"id\", \"due\") SELECT \"id\", COALESCE(\"due\", 0) FROM \"tasks\";"
        ));
        assert!(files
            .replica
            .contains("CREATE INDEX \"tasks_due_idx\" ON \"tasks\" (\"room_id\", \"due\");"));
        assert!(!files
            .replica
            .to_ascii_lowercase()
            .contains("pragma foreign_keys ="));
    }

    #[test]
    fn too_many_columns_for_d1() {
        let mut cols = vec![Column::new("id", ValueKind::I64).primary_key()];
        for i in 0..100 {
            cols.push(Column::new(&format!("c{i}"), ValueKind::I64).nullable());
        }
        let plan = diff(&[], &[Table::new("wide", "Wide", cols)]);
        assert_eq!(render(&plan, "x").unwrap_err().len(), 1);
    }
}
