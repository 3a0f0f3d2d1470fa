//! The repo's committed `migrations/`: current with the example's structs, and applied in order
//! by the `sqlite3` command-line tool (a different SQLite build than the bundled one, as D1 and
//! the Durable Object's are). CI installs `sqlite3` with apt when it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use rusqlite::Connection;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn gen_migrations_check_passes_on_the_repo() {
    let out = Command::new(BIN)
        .args(["--check", "--manifest"])
        .arg(root().join("Cargo.toml"))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the committed migrations are not current; run `cargo run --bin gen-migrations` and commit:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn committed_migrations_apply_in_order_with_sqlite3() {
    let sqlite3 = Command::new("sqlite3").arg("--version").output();
    assert!(
        sqlite3.is_ok_and(|o| o.status.success()),
        "the sqlite3 command-line tool is needed: apt-get install sqlite3"
    );
    let d1 = root().join("migrations");
    let targets = tables_in(&root().join("examples/tasks/src/schema.rs"));
    for (side, dir) in [(Side::Replica, d1.clone()), (Side::Primary, d1.join("do"))] {
        let files = sql_files(&dir);
        assert!(!files.is_empty(), "no migrations in {}", dir.display());
        let db_dir = tempfile::tempdir().unwrap();
        let db = db_dir.path().join("db.sqlite");
        for f in &files {
            // One sqlite3 run per file, as `wrangler d1 migrations apply` applies them one by one.
            let out = Command::new("sqlite3")
                .arg("-bail")
                .arg(&db)
                .stdin(Stdio::from(std::fs::File::open(f).unwrap()))
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "sqlite3 refused {}:\n{}",
                f.display(),
                text(&out.stderr)
            );
        }
        let conn = Connection::open(&db).unwrap();
        assert_eq!(
            dump(&conn),
            dump(&expected_db(&targets, side)),
            "{side:?}: the migrations do not build the example's schema"
        );
    }
}

#[test]
fn readme_deploy_section_is_what_nanotype_new_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let steps = format!(
        "```sh\n{}\n```",
        nanotype_cli::scaffold::deploy_steps("my-app")
    );
    assert!(
        readme.contains(&steps),
        "README.md's deploy section differs from `nanotype new my-app`; paste this in:\n{steps}"
    );
}
