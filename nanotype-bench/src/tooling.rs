//! Part 4, tooling: `gen-migrations` on a generated schema of 200 tables × 10 columns, and the
//! macro's cost as the build time of a crate of `#[nanotype::table]` structs against the same
//! structs with only serde derives.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{interleave, median, timed, Contender};
use crate::report::{list, Amount, Figure, Outcome, Target};
use crate::{target_dir, workspace_root, Sizes};

const COLUMNS: usize = 10;

pub fn run(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    let mut out = gen_migrations(sizes, dir);
    out.extend(macro_cost(sizes, dir));
    out
}

/// Rust source of `n` structs; `annotated` adds `#[nanotype::table]` and the key attribute.
pub fn structs(n: usize, annotated: bool) -> String {
    let mut s = String::new();
    for t in 0..n {
        if annotated {
            s.push_str(&format!(
                "#[nanotype::table(name = \"table_{t}\", index(c1, c2))]\n"
            ));
        }
        s.push_str("#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]\n");
        s.push_str(&format!("pub struct Table{t} {{\n"));
        if annotated {
            s.push_str("    #[nanotype(primary_key)]\n");
        }
        s.push_str("    pub id: i64,\n");
        // Nine more columns of the common types, 10 in all.
        let kinds = [
            "String",
            "i64",
            "Option<String>",
            "bool",
            "f64",
            "Vec<u8>",
            "i32",
            "Option<i64>",
            "String",
        ];
        for (c, ty) in kinds.iter().enumerate().take(COLUMNS - 1) {
            if annotated && c == 0 {
                s.push_str("    #[nanotype(index)]\n");
            }
            s.push_str(&format!("    pub c{}: {ty},\n", c + 1));
        }
        s.push_str("}\n\n");
    }
    s
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.env("CARGO_TARGET_DIR", target_dir());
    c
}

fn gen_migrations(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    let skip = |reason: String| {
        vec![Outcome::Skipped {
            part: "tooling",
            reason: format!("gen-migrations: {reason}"),
        }]
    };
    let built = cargo()
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "nanotype-cli",
            "--bin",
            "gen-migrations",
        ])
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        return skip("`cargo build -p nanotype-cli` failed".into());
    }
    let bin = target_dir().join("release/gen-migrations");
    let help = Command::new(&bin).arg("--help").output();
    let help = match help {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => return skip(format!("could not run {}: {e}", bin.display())),
    };
    // The flags this bench needs: structs to read, and a folder to write that it throws away.
    if !(help.contains("--source") && help.contains("--out")) {
        return skip(format!(
            "nanotype-cli does not offer --source <FILE> and --out <DIR> yet; `gen-migrations --help` \
             printed {:?}",
            help.lines().next().unwrap_or("nothing")
        ));
    }
    let schema = dir.join("schema.rs");
    std::fs::write(&schema, structs(sizes.schema_tables, true)).expect("write the schema");
    let out_dir = dir.join("migrations");
    let run_once = || {
        let _ = std::fs::remove_dir_all(&out_dir);
        std::fs::create_dir_all(&out_dir).expect("out dir");
        let mut c = Command::new(&bin);
        c.current_dir(dir)
            .arg("--source")
            .arg(&schema)
            .arg("--out")
            .arg(&out_dir);
        let mut ok = true;
        let s = timed(|| ok = c.output().is_ok_and(|o| o.status.success()));
        (s, ok)
    };
    let mut times = Vec::new();
    for _ in 0..sizes.rounds.max(3) {
        let (s, ok) = run_once();
        if !ok {
            return skip(format!(
                "`gen-migrations --source <schema of {} tables> --out <empty dir>` failed",
                sizes.schema_tables
            ));
        }
        times.push(s);
    }
    vec![Outcome::Figure(Figure {
        part: "tooling",
        measure: format!("gen-migrations, {} tables × {COLUMNS} columns", sizes.schema_tables),
        subject: Amount::new(median(&times), "s"),
        baseline: None,
        target: Target::Below(0.5),
        raw: format!(
            "`gen-migrations --source schema.rs --out <empty temp dir>` (release build; replays the \
             empty folder, plans {} tables, writes the D1 and DO files), wall time per run in s: {}",
            sizes.schema_tables,
            list(&times, 1.0)
        ),
    })]
}

/// A crate of `n` structs depending on the workspace's runtime by path.
fn write_crate(dir: &Path, name: &str, n: usize, annotated: bool) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("src")).expect("crate dir");
    let runtime = workspace_root().join("nanotype-runtime");
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nnanotype = {{ package = \"nanotype-runtime\", path = {:?} }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
             # Not part of any workspace.\n[workspace]\n",
            runtime.display().to_string()
        ),
    )
    .expect("Cargo.toml");
    // The workspace's lockfile: the same dependency versions, nothing to resolve or download.
    let _ = std::fs::copy(workspace_root().join("Cargo.lock"), root.join("Cargo.lock"));
    std::fs::write(
        root.join("src/lib.rs"),
        format!("#![allow(dead_code)]\n\n{}", structs(n, annotated)),
    )
    .expect("lib.rs");
    root
}

fn macro_cost(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    if sizes.quick {
        return vec![Outcome::Skipped {
            part: "tooling",
            reason: "macro cost: --quick (building the two generated crates takes minutes)".into(),
        }];
    }
    let n = sizes.macro_structs;
    let annotated = write_crate(dir, "bench_tables_annotated", n, true);
    let serde_only = write_crate(dir, "bench_tables_serde", n, false);
    let target = dir.join("target");
    let build = |root: &Path| {
        cargo()
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "-q"])
            // The runtime's own warnings are not this bench's output.
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // Dependencies first (not timed); both crates share them.
    for root in [&annotated, &serde_only] {
        if !build(root) {
            return vec![Outcome::Skipped {
                part: "tooling",
                reason: format!("macro cost: `cargo build` of {} failed", root.display()),
            }];
        }
    }
    let rebuild = |root: &Path| {
        // A changed source file: cargo rebuilds just this crate.
        let lib = root.join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).expect("lib.rs");
        std::fs::write(&lib, text).expect("touch lib.rs");
        let mut ok = true;
        let s = timed(|| ok = build(root));
        assert!(ok, "rebuild of {} failed", root.display());
        s
    };
    let rounds = interleave(
        sizes.rounds.min(5),
        vec![
            Contender::new("annotated", || rebuild(&annotated)),
            Contender::new("serde", || rebuild(&serde_only)),
        ],
    );
    vec![Outcome::Figure(Figure {
        part: "tooling",
        measure: format!("macro cost: build of {n} #[nanotype::table] structs vs serde-only"),
        subject: Amount::new(rounds.median("annotated"), "s"),
        baseline: Some(("serde derives only".into(), Amount::new(rounds.median("serde"), "s"))),
        target: Target::None,
        raw: format!(
            "Two generated crates of {n} structs × {COLUMNS} fields (String, i64, Option, bool, f64, \
             Vec<u8>, i32), both deriving Debug, Clone, PartialEq, Serialize, Deserialize; one also \
             `#[nanotype::table]` with a key, a field index and a two-column index. Dependencies built \
             first; then `cargo build` (dev profile) after rewriting src/lib.rs, interleaved.\n\n\
             - annotated: s per round: {}\n- serde only: s per round: {}",
            list(rounds.of("annotated"), 1.0),
            list(rounds.of("serde"), 1.0)
        ),
    })]
}
