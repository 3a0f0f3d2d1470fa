//! Helpers for driving the real `gen-migrations` binary on a temporary project, and for reading
//! SQLite back without going through the CLI's own code (so the tests judge it independently).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nanotype_schema::{ddl, Table};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

pub const BIN: &str = env!("CARGO_BIN_EXE_gen-migrations");

/// A temporary project: `Cargo.toml` with the nanotype section, `schema.rs`, `migrations/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\n\n[workspace.metadata.nanotype]\nsources = [\"schema.rs\"]\nmigrations = \"migrations\"\n",
        )
        .unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_schema(&self, source: &str) {
        std::fs::write(self.path().join("schema.rs"), source).unwrap();
    }

    /// Run the binary in the project's folder.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gen-migrations {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Run and require failure (exit 1); returns stdout + stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "gen-migrations {args:?} should fail:\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    pub fn d1_dir(&self) -> PathBuf {
        self.path().join("migrations")
    }

    pub fn do_dir(&self) -> PathBuf {
        self.path().join("migrations").join("do")
    }

    /// The tables `schema.rs` declares, parsed as the macro parses them.
    pub fn target(&self) -> Vec<Table> {
        tables_in(&self.path().join("schema.rs"))
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn tables_in(path: &Path) -> Vec<Table> {
    let file = syn::parse_file(&std::fs::read_to_string(path).unwrap()).unwrap();
    nanotype_schema::parse::find_tables(&file.items)
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()).unwrap().table)
        .collect()
}

/// The `.sql` files directly in `dir`, by name.
pub fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn file_names(dir: &Path) -> Vec<String> {
    sql_files(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

pub fn apply_files(conn: &Connection, files: &[PathBuf]) {
    for f in files {
        let sql = std::fs::read_to_string(f).unwrap();
        conn.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{} does not apply: {e}\n{sql}", f.display()));
    }
}

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Primary,
    Replica,
}

/// A fresh database holding exactly what the `ddl` module renders for `tables`.
pub fn expected_db(tables: &[Table], side: Side) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    if side == Side::Replica {
        conn.execute_batch(ddl::REPLICA_META).unwrap();
    }
    for t in tables {
        let sql = match side {
            Side::Primary => ddl::primary_ddl(t),
            Side::Replica => ddl::replica_ddl(t),
        };
        conn.execute_batch(&sql).unwrap();
    }
    conn
}

/// Per table: its columns `(name, type, notnull, default, pk)` and its indexes
/// `(name, unique, origin, columns)`, sorted (column order is not part of the schema: `ADD
/// COLUMN` appends, and nanotype names every column). Every table but SQLite's own.
pub type Dump = BTreeMap<String, (Vec<String>, Vec<String>)>;

pub fn dump(conn: &Connection) -> Dump {
    let mut out = Dump::new();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in names {
        let mut cols: Vec<String> = conn
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([&t], |r| {
                Ok(format!(
                    "{} {} notnull={} default={:?} pk={}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        cols.sort();
        let listed: Vec<(String, i64, String)> = conn
            .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
            .unwrap()
            .query_map([&t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut indexes = Vec::new();
        for (name, unique, origin) in listed {
            let cols: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap()
                .query_map([&name], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            // Implicit indexes are named by SQLite after the table; keep only their shape.
            let name = if origin == "c" {
                name
            } else {
                "<implicit>".into()
            };
            indexes.push(format!(
                "{name} unique={unique} origin={origin} ({})",
                cols.join(", ")
            ));
        }
        indexes.sort();
        out.insert(t, (cols, indexes));
    }
    out
}

/// One row: column → value as text (`n`, `i:5`, `r:1.5`, `t:abc`, `b:0102`).
pub type Row = BTreeMap<String, String>;
/// Every user table's rows, sorted.
pub type Rows = BTreeMap<String, Vec<Row>>;

pub fn show(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "n".into(),
        ValueRef::Integer(i) => format!("i:{i}"),
        ValueRef::Real(f) => format!("r:{f}"),
        ValueRef::Text(t) => format!("t:{}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!(
            "b:{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    }
}

/// The rows of every table not starting with `_nt_` or `sqlite_`.
pub fn rows(conn: &Connection) -> Rows {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_nt\\_%' ESCAPE '\\'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Rows::new();
    for t in names {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let cols: Vec<String> = stmt
            .column_names()
            .map(std::string::ToString::to_string)
            .collect();
        let mut rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok(cols
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), show(r.get_ref(i).unwrap())))
                    .collect())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        out.insert(t, rows);
    }
    out
}

/// Insert `n` rows into every table of `tables` (one version of the schema), with keys from
/// `first_key` on. Nullable columns are NULL in even rows, so NOT NULL changes meet NULLs. On
/// the replica, each row goes to two rooms.
pub fn insert_rows(conn: &Connection, tables: &[Table], side: Side, first_key: i64, n: i64) {
    use nanotype_schema::SqlType;
    for t in tables {
        for k in first_key..first_key + n {
            let rooms: &[&str] = match side {
                Side::Primary => &[""],
                Side::Replica => &["room-a", "room-b"],
            };
            for room in rooms {
                let mut names = Vec::new();
                let mut values: Vec<rusqlite::types::Value> = Vec::new();
                if side == Side::Replica {
                    names.push("\"room_id\"".to_owned());
                    values.push(rusqlite::types::Value::Text(room.to_string()));
                }
                for (ci, c) in t.columns.iter().enumerate() {
                    names.push(format!("\"{}\"", c.name));
                    let v = if c.nullable && k % 2 == 0 {
                        rusqlite::types::Value::Null
                    } else {
                        match c.sql_type() {
                            SqlType::Integer if c.primary_key => rusqlite::types::Value::Integer(k),
                            SqlType::Integer => rusqlite::types::Value::Integer(k * 10 + ci as i64),
                            SqlType::Real => rusqlite::types::Value::Real(k as f64 + 0.5),
                            SqlType::Text => {
                                rusqlite::types::Value::Text(format!("{}-{k}", c.name))
                            }
                            SqlType::Blob => rusqlite::types::Value::Blob(vec![k as u8]),
                        }
                    };
                    values.push(v);
                }
                let sql = format!(
                    "INSERT INTO \"{}\" ({}) VALUES ({})",
                    t.name,
                    names.join(", "),
                    vec!["?"; names.len()].join(", ")
                );
                conn.execute(&sql, rusqlite::params_from_iter(values.iter()))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }
}

/// A database with foreign keys on (as D1 and a Durable Object have them).
pub fn fk_db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    c
}

/// Apply each file in its own transaction, as `wrangler d1 migrations apply` does.
pub fn apply_in_transactions(c: &Connection, files: &[PathBuf]) {
    for f in files {
        let sql = std::fs::read_to_string(f).unwrap();
        c.execute_batch(&format!("BEGIN;\n{sql}\nCOMMIT;"))
            .unwrap_or_else(|e| panic!("{} does not apply: {e}\n{sql}", f.display()));
    }
}

/// How many rows `PRAGMA foreign_key_check` reports.
pub fn fk_problems(c: &Connection) -> usize {
    let mut stmt = c.prepare("PRAGMA foreign_key_check").unwrap();
    stmt.query_map([], |_| Ok(())).unwrap().count()
}
