//! `gen-migrations`, the library behind the binary: the next D1 and Durable Object migrations
//! from the `#[nanotype::table]` structs.
//!
//! * [`config`]: `[workspace.metadata.nanotype]` in the workspace's `Cargo.toml`;
//! * [`sources`]: the structs, parsed by the macro's own parser;
//! * [`layout`]: the migration folders (`migrations/` for D1, `migrations/do/`);
//! * [`replay`]: the current schema, from replaying the migrations into SQLite;
//! * [`command`]: the command line;
//! * [`scaffold`]: `nanotype new`, a project that builds and runs outside this repository;
//! * [`doctor`]: `nanotype doctor`, whether `wrangler.toml` agrees with the code;
//! * [`pull`]: `nanotype pull`, the structs of an existing SQLite database;
//! * [`shards`]: `nanotype migrate-d1`, the D1 migrations applied to every shard of the replica.
//!
//! Planning and rendering live in [`nanotype_schema::migration`], shared with the runtime.

pub mod command;
pub mod config;
pub mod dev;
pub mod doctor;
pub mod layout;
pub mod pull;
pub mod replay;
pub mod scaffold;
pub mod shards;
pub mod sources;
pub mod tools;
