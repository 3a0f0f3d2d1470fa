//! `nanotype doctor`: does `wrangler.toml` agree with the code? Each mismatch is one line with
//! its fix, found before a deploy instead of by a failing request.
//!
//! * the room class the crate declares (`nanotype::room!(Room, ..)`) is bound as `ROOM` and
//!   created as a SQLite class (`new_sqlite_classes`), never as a key-value one;
//! * the D1 database is bound as `DB`, and its `migrations_dir` is the folder gen-migrations
//!   writes;
//! * the crate pins `wasm-bindgen` exactly, to the version of the `wasm-bindgen` CLI that
//!   worker-build will run (when one is found).

use std::path::{Path, PathBuf};

/// The binding names the runtime uses (see `nanotype::worker::{ROOM_BINDING, D1_BINDING}`).
const ROOM_BINDING: &str = "ROOM";
const D1_BINDING: &str = "DB";
/// The variable naming the replica's shards (see `nanotype::shard::SHARDS_VAR`).
const SHARDS_VAR: &str = "NANOTYPE_D1_SHARDS";

/// The replica's shards `w` configures: its `[vars]` `NANOTYPE_D1_SHARDS`, comma-separated (blank
/// and repeated names skipped), or the one default binding, `DB`.
pub fn shards(w: &toml::Table) -> Vec<String> {
    let list = w
        .get("vars")
        .and_then(|v| v.get(SHARDS_VAR))
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    if out.is_empty() {
        out.push(D1_BINDING.to_owned());
    }
    out
}

/// The shards of the wrangler config at `path`.
pub fn shards_of(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let w: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    Ok(shards(&w))
}

/// What to check: the crate (its `Cargo.toml` and `src/`), its `wrangler.toml`, and where
/// gen-migrations writes.
#[derive(Clone, Debug)]
pub struct Project {
    /// The Worker crate's folder.
    pub crate_dir: PathBuf,
    /// Its wrangler config.
    pub wrangler: PathBuf,
    /// The D1 migrations folder gen-migrations writes.
    pub migrations: PathBuf,
    /// The wasm-bindgen CLI's version, when one was found (`wasm-bindgen --version`).
    pub wasm_bindgen_cli: Option<String>,
}

/// Every mismatch, one line each with its fix; empty when the configuration agrees.
pub fn check(p: &Project) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let text = std::fs::read_to_string(&p.wrangler)
        .map_err(|e| format!("cannot read {}: {e}", p.wrangler.display()))?;
    let w: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", p.wrangler.display()))?;
    let shown = p.wrangler.display();

    // The room class.
    let classes = room_classes(&p.crate_dir.join("src"));
    let room = match classes.as_slice() {
        [] => {
            out.push(format!(
                "no `nanotype::room!(Room, App)` in {}: declare the room's Durable Object class",
                p.crate_dir.join("src").display()
            ));
            None
        }
        [one] => Some(one.clone()),
        many => {
            out.push(format!(
                "several room classes declared ({}): declare one",
                many.join(", ")
            ));
            None
        }
    };
    let bindings = array(&w, &["durable_objects", "bindings"]);
    let bound = bindings
        .iter()
        .find(|b| str_of(b, "name") == Some(ROOM_BINDING));
    if let Some(room) = &room {
        match bound {
            None => out.push(format!(
                "{shown}: no Durable Object binding `{ROOM_BINDING}`; add [[durable_objects.bindings]] name = \"{ROOM_BINDING}\", class_name = \"{room}\""
            )),
            Some(b) if str_of(b, "class_name") != Some(room.as_str()) => out.push(format!(
                "{shown}: binding `{ROOM_BINDING}` names class `{}`, but the crate declares `{room}`; set class_name = \"{room}\"",
                str_of(b, "class_name").unwrap_or("")
            )),
            Some(_) => {}
        }
        let migrations = array(&w, &["migrations"]);
        let listed = |key: &str| {
            migrations.iter().any(|m| {
                m.get(key)
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| a.iter().any(|c| c.as_str() == Some(room.as_str())))
            })
        };
        if listed("new_classes") {
            out.push(format!(
                "{shown}: `{room}` is in new_classes (key-value storage); nanotype needs SQLite: move it to new_sqlite_classes"
            ));
        } else if !listed("new_sqlite_classes") {
            out.push(format!(
                "{shown}: `{room}` is not created as a SQLite class; add [[migrations]] tag = \"v1\", new_sqlite_classes = [\"{room}\"]"
            ));
        }
    }

    // The D1 replica: every shard bound, each with the one set of migrations (so every shard
    // is at the same version once `nanotype migrate-d1` applied them).
    let dbs = array(&w, &["d1_databases"]);
    for shard in shards(&w) {
        match dbs.iter().find(|d| str_of(d, "binding") == Some(shard.as_str())) {
            None => out.push(format!(
                "{shown}: no D1 binding `{shard}`{}; add [[d1_databases]] binding = \"{shard}\" with database_name, database_id and migrations_dir",
                if shard == D1_BINDING { String::new() } else { format!(" (a shard in {SHARDS_VAR})") }
            )),
            Some(db) => {
                let base = p.wrangler.parent().unwrap_or(Path::new("."));
                match str_of(db, "migrations_dir") {
                    None => out.push(format!(
                        "{shown}: D1 `{shard}` has no migrations_dir; set it to {:?}",
                        relative(&p.migrations, base)
                    )),
                    Some(dir) if !same_dir(&base.join(dir), &p.migrations) => out.push(format!(
                        "{shown}: D1 `{shard}` migrations_dir is {dir:?}, but gen-migrations writes {}; set migrations_dir = {:?}",
                        p.migrations.display(),
                        relative(&p.migrations, base)
                    )),
                    Some(_) => {}
                }
            }
        }
    }

    // wasm-bindgen: the crate's pin and the CLI worker-build runs.
    let cargo = std::fs::read_to_string(p.crate_dir.join("Cargo.toml")).unwrap_or_default();
    let pinned = wasm_bindgen_pin(&cargo);
    match (&pinned, &p.wasm_bindgen_cli) {
        (None, _) => out.push(
            "Cargo.toml: pin wasm-bindgen exactly (wasm-bindgen = \"=X.Y.Z\") to the wasm-bindgen CLI worker-build runs"
                .into(),
        ),
        // The runtime is built and tested with one wasm-bindgen (worker's): a pin to another
        // one is the mistake, whatever CLI is installed.
        (Some(pin), cli) if pin != crate::scaffold::WASM_BINDGEN => out.push(format!(
            "Cargo.toml pins wasm-bindgen ={pin}, but nanotype (with worker {worker}) is built with {want}; pin wasm-bindgen = \"={want}\"{install}",
            worker = crate::scaffold::WORKER,
            want = crate::scaffold::WASM_BINDGEN,
            install = if cli.as_deref() == Some(crate::scaffold::WASM_BINDGEN) {
                String::new()
            } else {
                format!(
                    " and install that CLI: `cargo install wasm-bindgen-cli --version {} --locked`",
                    crate::scaffold::WASM_BINDGEN
                )
            }
        )),
        (Some(pin), Some(cli)) if pin != cli => out.push(format!(
            "Cargo.toml pins wasm-bindgen ={pin}, but the wasm-bindgen CLI worker-build runs is {cli}; install `cargo install wasm-bindgen-cli --version {pin} --locked`"
        )),
        _ => {}
    }
    Ok(out)
}

/// `X` of every `nanotype::room!(X, ..)` in the crate's sources.
fn room_classes(src: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for part in text.split("room!(").skip(1) {
                    let class: String = part
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !class.is_empty() && !out.contains(&class) {
                        out.push(class);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

fn array<'a>(t: &'a toml::Table, path: &[&str]) -> Vec<&'a toml::Table> {
    let mut v: Option<&toml::Value> = None;
    let mut table = t;
    for (i, k) in path.iter().enumerate() {
        let Some(next) = table.get(*k) else {
            return Vec::new();
        };
        if i + 1 == path.len() {
            v = Some(next);
        } else if let Some(inner) = next.as_table() {
            table = inner;
        } else {
            return Vec::new();
        }
    }
    v.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_table()).collect())
        .unwrap_or_default()
}

fn str_of<'a>(t: &'a toml::Table, key: &str) -> Option<&'a str> {
    t.get(key).and_then(|v| v.as_str())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn relative(target: &Path, base: &Path) -> String {
    let (Ok(t), Ok(b)) = (target.canonicalize(), base.canonicalize()) else {
        return target.display().to_string();
    };
    let common = t
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    let mut rel = PathBuf::new();
    for _ in b.components().skip(common) {
        rel.push("..");
    }
    for c in t.components().skip(common) {
        rel.push(c);
    }
    rel.display().to_string()
}

/// The version in `wasm-bindgen = "=X.Y.Z"` (or `{ version = "=X.Y.Z" }`), if pinned exactly.
fn wasm_bindgen_pin(cargo_toml: &str) -> Option<String> {
    cargo_toml.lines().find_map(|l| {
        let l = l.trim();
        let rest = l
            .strip_prefix("wasm-bindgen")?
            .trim_start()
            .strip_prefix('=')?;
        let start = rest.find("\"=")? + 2;
        let end = rest[start..].find('"')? + start;
        Some(rest[start..end].to_owned())
    })
}

/// The version the `wasm-bindgen` CLI at `bin` reports, if it runs.
pub fn wasm_bindgen_version(bin: &Path) -> Option<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaffold::{create, NewProject};

    #[test]
    fn every_shard_is_bound_with_the_one_set_of_migrations() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        create(&NewProject {
            dir: dir.clone(),
            name: None,
            nanotype_path: None,
        })
        .unwrap();
        let project = Project {
            crate_dir: dir.clone(),
            wrangler: dir.join("wrangler.toml"),
            migrations: dir.join("migrations"),
            wasm_bindgen_cli: Some(crate::scaffold::WASM_BINDGEN.into()),
        };
        let one = std::fs::read_to_string(&project.wrangler).unwrap();
        assert_eq!(shards(&one.parse().unwrap()), ["DB"]);
        let shard = |name: &str, dir: &str| {
            format!("\n[[d1_databases]]\nbinding = \"{name}\"\ndatabase_name = \"{name}\"\ndatabase_id = \"x\"\nmigrations_dir = \"{dir}\"\n")
        };
        // `[vars]` comes first: a table header ends the array of tables before it.
        let three = format!(
            "[vars]\nNANOTYPE_D1_SHARDS = \"DB, DB_1,DB_2\"\n{one}{}{}",
            shard("DB_1", "migrations"),
            shard("DB_2", "elsewhere")
        );
        std::fs::write(&project.wrangler, &three).unwrap();
        assert_eq!(shards(&three.parse().unwrap()), ["DB", "DB_1", "DB_2"]);
        let problems = check(&project).unwrap();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].contains("D1 `DB_2` migrations_dir is \"elsewhere\""),
            "{}",
            problems[0]
        );
        let missing = format!(
            "[vars]\nNANOTYPE_D1_SHARDS = \"DB,DB_1,DB_3\"\n{one}{}",
            shard("DB_1", "migrations")
        );
        std::fs::write(&project.wrangler, missing).unwrap();
        let problems = check(&project).unwrap();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].contains("no D1 binding `DB_3` (a shard in NANOTYPE_D1_SHARDS)"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_new_project_agrees_and_each_mismatch_is_one_line_with_its_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        create(&NewProject {
            dir: dir.clone(),
            name: None,
            nanotype_path: None,
        })
        .unwrap();
        let project = Project {
            crate_dir: dir.clone(),
            wrangler: dir.join("wrangler.toml"),
            migrations: dir.join("migrations"),
            wasm_bindgen_cli: Some(crate::scaffold::WASM_BINDGEN.into()),
        };
        assert_eq!(check(&project).unwrap(), Vec::<String>::new());

        let wrangler = std::fs::read_to_string(&project.wrangler).unwrap();
        let broken = wrangler
            .replace("new_sqlite_classes", "new_classes")
            .replace("binding = \"DB\"", "binding = \"REPLICA\"")
            .replace("class_name = \"Room\"", "class_name = \"Rooms\"");
        std::fs::write(&project.wrangler, broken).unwrap();
        let old = Project {
            wasm_bindgen_cli: Some("0.2.100".into()),
            ..project.clone()
        };
        let problems = check(&old).unwrap();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].contains("set class_name = \"Room\""),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("move it to new_sqlite_classes"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].contains("no D1 binding `DB`"),
            "{}",
            problems[2]
        );
        assert!(
            problems[3].contains("cargo install wasm-bindgen-cli --version 0.2.130"),
            "{}",
            problems[3]
        );
        // A pin to a wasm-bindgen the runtime is not built with: the advice is the right pin,
        // never a CLI to match the wrong one.
        let cargo_toml = project.crate_dir.join("Cargo.toml");
        let pinned = std::fs::read_to_string(&cargo_toml).unwrap();
        std::fs::write(
            &cargo_toml,
            pinned.replace(
                &format!("\"={}\"", crate::scaffold::WASM_BINDGEN),
                "\"=0.2.100\"",
            ),
        )
        .unwrap();
        let problems = check(&old).unwrap();
        let pin = problems.iter().find(|p| p.contains("=0.2.100")).unwrap();
        assert!(pin.contains("pin wasm-bindgen = \"=0.2.130\""), "{pin}");
        assert!(pin.contains("--version 0.2.130 --locked"), "{pin}");
        assert!(!pin.contains("--version 0.2.100"), "{pin}");
        std::fs::write(&cargo_toml, pinned).unwrap();

        std::fs::write(
            &project.wrangler,
            wrangler.replace("migrations_dir = \"migrations\"", "migrations_dir = \"db\""),
        )
        .unwrap();
        let problems = check(&project).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("set migrations_dir = \"migrations\""),
            "{}",
            problems[0]
        );
    }
}
