//! The guide's chapters (`docs/guide/`) as doctests: every Rust block in them is compiled and run
//! by `cargo test`, so the guide cannot drift from the API.

/// Chapter 1.
#[doc = include_str!("../../docs/guide/01-tables.md")]
pub struct Tables;

/// Chapter 2.
#[doc = include_str!("../../docs/guide/02-hooks.md")]
pub struct Hooks;

/// Chapter 3.
#[doc = include_str!("../../docs/guide/03-policies.md")]
pub struct Policies;

/// Chapter 4.
#[doc = include_str!("../../docs/guide/04-reads.md")]
pub struct Reads;

/// Chapter 5.
#[doc = include_str!("../../docs/guide/05-feed.md")]
pub struct Feed;

/// Chapter 6.
#[doc = include_str!("../../docs/guide/06-migrations.md")]
pub struct Migrations;

/// Chapter 7.
#[doc = include_str!("../../docs/guide/07-operating.md")]
pub struct Operating;
