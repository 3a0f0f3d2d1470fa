//! The migration folders: `<dir>/NNNN_<name>.sql` for D1 and `<dir>/do/NNNN_<name>.sql` for the
//! Durable Object.
//!
//! The D1 folder is what `wrangler d1 migrations apply` reads: the `.sql` files directly in it,
//! applied in name order and recorded in its `d1_migrations` table. It does not descend into
//! `do/`. The runtime embeds `do/` with `nanotype::migrations!` and applies it on the Durable
//! Object's first request.

use std::path::{Path, PathBuf};

/// The Durable Object's folder inside the D1 folder.
pub const DO_FOLDER: &str = "do";
/// Digits of the number prefix.
pub const NUMBER_WIDTH: usize = 4;

/// One migration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationFile {
    /// The file name without `.sql`, e.g. `0002_add_tasks_due`.
    pub name: String,
    pub number: u32,
    pub path: PathBuf,
}

/// The two folders of a migrations directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub replica: PathBuf,
    pub primary: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            replica: dir.to_owned(),
            primary: dir.join(DO_FOLDER),
        }
    }
}

/// The `NNNN_name.sql` files of `dir` in order (none when the folder does not exist). Other
/// `.sql` files are an error: wrangler would apply them, so they must be numbered.
pub fn list(dir: &Path) -> Result<Vec<MigrationFile>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        if !path.is_file() || path.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            return Err(format!("{}: file name is not UTF-8", path.display()));
        };
        let number = name
            .split_once('_')
            .map_or(name.as_str(), |(n, _)| n)
            .parse::<u32>()
            .map_err(|_| {
                format!(
                    "{}: a migration's name starts with its number, e.g. 0001_create_tasks.sql",
                    path.display()
                )
            })?;
        out.push(MigrationFile { name, number, path });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The number of the next migration: one more than the highest in either folder.
pub fn next_number(replica: &[MigrationFile], primary: &[MigrationFile]) -> u32 {
    replica
        .iter()
        .chain(primary)
        .map(|m| m.number)
        .max()
        .unwrap_or(0)
        + 1
}

/// `0003_add_tasks_due`.
pub fn file_name(number: u32, name: &str) -> String {
    format!("{number:0NUMBER_WIDTH$}_{name}")
}

/// Names present in one folder but not the other: each migration has both files.
pub fn unpaired(replica: &[MigrationFile], primary: &[MigrationFile]) -> Vec<String> {
    let mut out = Vec::new();
    for r in replica {
        if !primary.iter().any(|p| p.name == r.name) {
            out.push(format!(
                "{}.sql has no Durable Object counterpart in {DO_FOLDER}/",
                r.name
            ));
        }
    }
    for p in primary {
        if !replica.iter().any(|r| r.name == p.name) {
            out.push(format!("{DO_FOLDER}/{}.sql has no D1 counterpart", p.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_order_and_numbers_on() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        std::fs::create_dir_all(&layout.primary).unwrap();
        for n in ["0002_b", "0001_a", "0010_c"] {
            std::fs::write(dir.path().join(format!("{n}.sql")), "").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let files = list(&layout.replica).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["0001_a", "0002_b", "0010_c"]);
        assert_eq!(next_number(&files, &[]), 11);
        assert_eq!(file_name(11, "x"), "0011_x");
        assert_eq!(unpaired(&files, &[]).len(), 3);
        std::fs::write(dir.path().join("init.sql"), "").unwrap();
        assert!(list(&layout.replica).is_err());
    }
}
