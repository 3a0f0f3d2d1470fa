//! `cargo run --bin gen-migrations -- --help`

fn main() -> std::process::ExitCode {
    nanotype_cli::command::main()
}
