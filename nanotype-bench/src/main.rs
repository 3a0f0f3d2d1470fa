//! `cargo run --release -p nanotype-bench -- [--quick] [--only write,replication,...] [--out PATH]`
//!
//! nanotype's costs, each as a ratio against a baseline measured in the same run (baseline and
//! subject interleaved in alternating rounds, medians taken): the machines are shared and noisy,
//! so absolute figures mean little and ratios travel. Prints a table and writes it, with the
//! machine, the command, the date and the raw numbers, to `docs/benchmarks.md`.
//!
//! Parts: `write` (generated insert vs raw SQLite insert), `replication` (flush/backfill/resync
//! vs bulk load and per-row replication), `workerd` (the example Worker under load on
//! 127.0.0.1), `tooling` (gen-migrations on a large schema, the macro's build-time cost) and
//! `size` (the example's wasm vs a minimal DO + D1 Worker). Parts whose prerequisites are missing
//! print `skipped: <reason>`.

mod cost;
mod feed;
mod item;
mod load;
mod machine;
mod measure;
mod reads;
mod replication;
mod report;
mod size;
mod tooling;
mod workerd;
mod write_path;

use std::path::{Path, PathBuf};
use std::time::Instant;

use report::Outcome;

/// How much work each part does: `--quick` is a smoke run (under a minute), the default the real
/// one.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub quick: bool,
    pub rounds: usize,
    /// Durable (synchronous=FULL) single-row writes per round and contender.
    pub durable_writes: usize,
    /// synchronous=NORMAL single-row writes per round and contender.
    pub writes: usize,
    /// Rows moved per replication round.
    pub rows: usize,
    /// Requests per workerd throughput round, and the round's time bound.
    pub requests: usize,
    pub request_seconds: f64,
    /// Offered writes for the lag measurement.
    pub lag_writes: usize,
    /// Tables of the generated schema for gen-migrations, and structs of the macro-cost crate.
    pub schema_tables: usize,
    pub macro_structs: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                quick,
                rounds: 3,
                durable_writes: 40,
                writes: 400,
                rows: 2_000,
                requests: 100,
                request_seconds: 3.0,
                lag_writes: 100,
                schema_tables: 200,
                macro_structs: 5,
            }
        } else {
            Sizes {
                quick,
                rounds: 7,
                durable_writes: 300,
                writes: 4_000,
                rows: 20_000,
                requests: 1_000,
                request_seconds: 20.0,
                lag_writes: 2_000,
                schema_tables: 200,
                macro_structs: 50,
            }
        }
    }
}

pub const PARTS: [&str; 6] = [
    "write",
    "replication",
    "workerd",
    "reads",
    "tooling",
    "size",
];

struct Args {
    quick: bool,
    only: Vec<String>,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        only: PARTS.iter().map(std::string::ToString::to_string).collect(),
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--only" => {
                let v = it
                    .next()
                    .ok_or("--only needs a list, e.g. --only write,replication")?;
                args.only = v.split(',').map(|s| s.trim().to_string()).collect();
                for p in &args.only {
                    if !PARTS.contains(&p.as_str()) {
                        return Err(format!(
                            "unknown part `{p}`; the parts are {}",
                            PARTS.join(", ")
                        ));
                    }
                }
            }
            "--out" => args.out = Some(it.next().ok_or("--out needs a path")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: cargo run --release -p nanotype-bench -- [--quick] [--only {}] [--out PATH]\n\
                     Writes docs/benchmarks.md after a full run; --quick or --only write to \
                     target/nanotype-bench/benchmarks.md unless --out says otherwise.",
                    PARTS.join(",")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(args)
}

/// The workspace root (this crate's parent), so the command works from any directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bench crate lives in the workspace")
        .to_path_buf()
}

/// Where cargo puts build output (and the bench its scratch files).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nanotype-bench: {e}");
            std::process::exit(2);
        }
    };
    let sizes = Sizes::new(args.quick);
    let scratch = target_dir()
        .join("nanotype-bench")
        .join(format!("run-{}", std::process::id()));
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for part in PARTS {
        if !args.only.iter().any(|p| p == part) {
            continue;
        }
        eprintln!("[bench +{:.0}s] {part}", started.elapsed().as_secs_f64());
        let dir = scratch.join(part);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let got = match part {
            "write" => write_path::run(&sizes, &dir),
            "replication" => replication::run(&sizes, &dir),
            "workerd" => workerd::run(&sizes, &dir),
            "reads" => reads::run(&sizes, &dir),
            "tooling" => tooling::run(&sizes, &dir),
            "size" => size::run(&sizes, &dir),
            _ => unreachable!(),
        };
        for o in &got {
            if let Outcome::Skipped { part, reason } = o {
                eprintln!("{part}: skipped: {reason}");
            }
        }
        outcomes.extend(got);
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let elapsed = started.elapsed().as_secs_f64();
    println!("\n{}", report::text(&outcomes));
    let full = !args.quick && args.only.len() == PARTS.len();
    let out = args.out.unwrap_or_else(|| {
        if full {
            workspace_root().join("docs/benchmarks.md")
        } else {
            target_dir().join("nanotype-bench/benchmarks.md")
        }
    });
    let doc = document(&outcomes, &args_line(), elapsed);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("output directory");
    }
    std::fs::write(&out, doc).expect("write the results");
    println!("wrote {} ({:.0} s)", out.display(), elapsed);
}

fn args_line() -> String {
    let rest: Vec<String> = std::env::args().skip(1).collect();
    if rest.is_empty() {
        "cargo run --release -p nanotype-bench".into()
    } else {
        format!(
            "cargo run --release -p nanotype-bench -- {}",
            rest.join(" ")
        )
    }
}

fn document(outcomes: &[Outcome], command: &str, elapsed: f64) -> String {
    let m = machine::Machine::probe();
    format!(
        "# Benchmarks\n\n\
         Every figure is a ratio against a baseline measured in the same run: baseline and subject \
         run in alternating rounds (the order rotating) and each side's median is taken. The \
         machines are shared and noisy, so read the ratios; the absolute numbers are here to show \
         what each ratio is made of. Regenerate with the command below; the bench never asserts \
         timings.\n\n\
         - machine: {} CPUs ({}), {} memory, {}\n\
         - command: `{command}` (CARGO_TARGET_DIR={})\n\
         - date: {}\n\
         - duration: {:.0} s\n\n\
         {}",
        m.cpus,
        m.cpu_model,
        m.memory,
        m.os,
        target_dir().display(),
        m.date,
        elapsed,
        report::markdown(outcomes)
    )
}
