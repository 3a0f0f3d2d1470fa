//! `nanotype`: start a project (`nanotype new <dir>`) or generate its migrations
//! (`nanotype gen-migrations`, the same as a project's `cargo run --bin gen-migrations`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nanotype_cli::command;
use nanotype_cli::scaffold::{self, NewProject};

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
    /// The next D1 and Durable Object migrations from the structs (see its --help).
    GenMigrations(command::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::New {
            dir,
            name,
            nanotype_path,
        } => {
            match scaffold::create(&NewProject {
                dir: dir.clone(),
                name,
                nanotype_path,
            }) {
                Ok(files) => {
                    println!("Created {} with:", dir.display());
                    for f in files {
                        println!("  {}", f.display());
                    }
                    println!("Next: cd {} and follow README.md (npm install, worker-build, wrangler dev).", dir.display());
                    ExitCode::SUCCESS
                }
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
