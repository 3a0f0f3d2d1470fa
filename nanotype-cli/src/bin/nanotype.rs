//! `nanotype`: start a project (`nanotype new <dir>`) or generate its migrations
//! (`nanotype gen-migrations`, the same as a project's `cargo run --bin gen-migrations`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nanotype_cli::doctor::{self, Project};
use nanotype_cli::scaffold::{self, NewProject};
use nanotype_cli::{command, config};

#[derive(Debug, Parser)]
#[command(
    name = "nanotype",
    version,
    about = "Rust structs in, a replicated database on Cloudflare out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new project that builds and runs unchanged: one table, its room, a token policy,
    /// wrangler.toml, .dev.vars with a local token, and its first migrations.
    New {
        /// The folder to create (must not exist, or be empty).
        dir: PathBuf,
        /// The crate's name [default: the folder's name].
        #[arg(long)]
        name: Option<String>,
        /// Depend on a nanotype checkout at this path instead of the published crates.
        #[arg(long, value_name = "PATH")]
        nanotype_path: Option<PathBuf>,
    },
    /// Apply the D1 migrations to every shard of the replica (each D1 binding
    /// `NANOTYPE_D1_SHARDS` names in wrangler.toml's `[vars]`; `DB` alone by default), then check
    /// that every shard has applied exactly the migration files.
    MigrateD1 {
        /// The wrangler config.
        #[arg(long, value_name = "FILE", default_value = "wrangler.toml")]
        wrangler: PathBuf,
        /// The D1 migrations folder [default: the migrations_dir of the config's first shard].
        #[arg(long, value_name = "DIR")]
        migrations: Option<PathBuf>,
        /// The deployed databases instead of the local ones.
        #[arg(long)]
        remote: bool,
        /// Where local D1 state lives (wrangler's --persist-to).
        #[arg(long, value_name = "DIR")]
        persist_to: Option<PathBuf>,
    },
    /// The edit loop: gen-migrations, worker-build, the D1 migrations applied locally and
    /// `wrangler dev`, then again on every change of src/ or Cargo.toml, on the same local state.
    Dev {
        /// The Worker crate's folder [default: the current one].
        #[arg(long = "crate", value_name = "DIR", default_value = ".")]
        crate_dir: PathBuf,
        /// The port on 127.0.0.1.
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Local state (rooms and D1), kept across restarts [default: .wrangler/state].
        #[arg(long, value_name = "DIR")]
        persist_to: Option<PathBuf>,
        /// Start once, print the URL and stop (for scripts).
        #[arg(long)]
        once: bool,
        /// Build optimised (`worker-build --release`, a minute per change) instead of `--dev`.
        #[arg(long)]
        release: bool,
    },
    /// Install the Rust tools a Worker build needs, pinned, once: worker-build and
    /// wasm-bindgen-cli (saying how long before it starts; what is installed is skipped).
    Tools,
    /// The next D1 and Durable Object migrations from the structs (see its --help).
    GenMigrations(command::Args),
    /// Print the `#[nanotype::table]` structs of an existing SQLite database file (a room's, or
    /// one another app made): a schema to start from.
    Pull {
        /// The SQLite file.
        file: PathBuf,
        /// Write the structs to this file instead of printing them.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check that wrangler.toml agrees with the code: the room class bound and created as a
    /// SQLite class, the D1 binding and its migrations folder, the wasm-bindgen pin.
    Doctor {
        /// The Worker crate's folder [default: the current one].
        #[arg(long = "crate", value_name = "DIR", default_value = ".")]
        crate_dir: PathBuf,
        /// Its wrangler config [default: wrangler.toml in the crate's folder].
        #[arg(long, value_name = "FILE")]
        wrangler: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::New {
            dir,
            name,
            nanotype_path,
        } => {
            let project = NewProject {
                dir: dir.clone(),
                name,
                nanotype_path,
            };
            match scaffold::create(&project) {
                Ok(files) => {
                    println!("Created {} with:", dir.display());
                    for f in files {
                        println!("  {}", f.display());
                    }
                    let name = scaffold::project_name(&project).unwrap_or_default();
                    println!(
                        "\nRun it locally (README.md says more):\n\ncd {}\n{}",
                        dir.display(),
                        scaffold::run_steps()
                    );
                    println!("\nDeploy it:\n\n{}", scaffold::deploy_steps(&name));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Doctor {
            crate_dir,
            wrangler,
        } => match doctor(&crate_dir, wrangler) {
            Ok(problems) if problems.is_empty() => {
                println!("wrangler.toml agrees with the code.");
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for p in problems {
                    println!("- {p}");
                }
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Pull { file, out } => {
            let pulled = rusqlite::Connection::open_with_flags(
                &file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(|e| format!("cannot open {}: {e}", file.display()))
            .and_then(|conn| nanotype_cli::pull::structs(&conn, &file.display().to_string()));
            match (pulled, out) {
                (Ok(text), None) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                (Ok(text), Some(out)) => match std::fs::write(&out, text) {
                    Ok(()) => {
                        println!("Wrote {}", out.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", out.display());
                        ExitCode::FAILURE
                    }
                },
                (Err(e), _) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::MigrateD1 {
            wrangler,
            migrations,
            remote,
            persist_to,
        } => {
            let migrations = migrations.or_else(|| migrations_dir_of(&wrangler));
            let Some(migrations) = migrations else {
                eprintln!(
                    "error: {} names no migrations_dir for its D1 bindings: pass --migrations",
                    wrangler.display()
                );
                return ExitCode::FAILURE;
            };
            let m = nanotype_cli::shards::Migrate {
                wrangler,
                migrations,
                remote,
                persist_to,
                bin: std::env::var_os("WRANGLER").map_or_else(|| "wrangler".into(), PathBuf::from),
            };
            match nanotype_cli::shards::migrate(&m) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dev {
            crate_dir,
            port,
            persist_to,
            once,
            release,
        } => {
            // wrangler runs in the crate's folder: paths given relative to here are made absolute.
            let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
            let crate_dir = abs(crate_dir);
            let persist_to = persist_to.map(abs);
            let tool = |var: &str, local: &str, name: &str| {
                std::env::var_os(var).map_or_else(
                    || {
                        let p = crate_dir.join(local);
                        if p.exists() {
                            p
                        } else {
                            PathBuf::from(name)
                        }
                    },
                    PathBuf::from,
                )
            };
            let dev = nanotype_cli::dev::Dev {
                persist_to: persist_to.unwrap_or_else(|| crate_dir.join(".wrangler/state")),
                wrangler: tool("WRANGLER", "node_modules/.bin/wrangler", "wrangler"),
                worker_build: tool(
                    "WORKER_BUILD",
                    "node_modules/.bin/worker-build",
                    "worker-build",
                ),
                crate_dir,
                port,
                once,
                release,
            };
            match nanotype_cli::dev::run(&dev, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Tools => {
            let cargo =
                std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
            match nanotype_cli::tools::install(&cargo, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::GenMigrations(args) => match command::run(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", e.trim_end());
                ExitCode::FAILURE
            }
        },
    }
}

/// The `migrations_dir` of the first D1 binding of the wrangler config at `path`, relative to it.
fn migrations_dir_of(path: &std::path::Path) -> Option<PathBuf> {
    let w: toml::Table = std::fs::read_to_string(path).ok()?.parse().ok()?;
    let dir = w
        .get("d1_databases")?
        .as_array()?
        .first()?
        .get("migrations_dir")?
        .as_str()?;
    Some(path.parent().unwrap_or(std::path::Path::new(".")).join(dir))
}

/// The checks of `nanotype doctor` for the crate in `dir`.
fn doctor(dir: &std::path::Path, wrangler: Option<PathBuf>) -> Result<Vec<String>, String> {
    let manifest = config::find_manifest(dir).ok_or_else(|| {
        format!("no Cargo.toml with [package.metadata.nanotype] or [workspace.metadata.nanotype] at or above {}", dir.display())
    })?;
    let config = config::load(&manifest)?;
    let cli = std::env::var_os("WASM_BINDGEN_BIN")
        .map_or_else(|| PathBuf::from("wasm-bindgen"), PathBuf::from);
    doctor::check(&Project {
        crate_dir: dir.to_path_buf(),
        wrangler: wrangler.unwrap_or_else(|| dir.join("wrangler.toml")),
        migrations: config.migrations,
        wasm_bindgen_cli: doctor::wasm_bindgen_version(&cli),
    })
}
