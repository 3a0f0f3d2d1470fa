//! `#[nanotype::table]`. Use it through `nanotype-runtime` (imported as `nanotype`), which
//! re-exports it; the generated code refers to `::nanotype::__private`.
//!
//! The work is in [`nanotype_schema::parse`] (shared with `gen-migrations`); this crate only
//! turns a parsed model into tokens.

mod embed;
mod expand;
mod model_tokens;

use proc_macro::TokenStream;

/// Turns a struct with named fields into a table. See the `nanotype` crate docs for the
/// attribute grammar.
#[proc_macro_attribute]
pub fn table(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::table(args.into(), item.into()).into()
}

/// The Durable Object's migrations, embedded: `nanotype::migrations!("../../migrations/do")`
/// is a `&[nanotype::migrate::Migration]` of the folder's `.sql` files sorted by name (the path
/// is relative to the calling crate's `Cargo.toml`). Pass it to `nanotype::migrate::apply`.
///
/// New files are seen when the crate rebuilds: put
/// `println!("cargo:rerun-if-changed=../../migrations/do");` in the crate's `build.rs`.
#[proc_macro]
pub fn migrations(input: TokenStream) -> TokenStream {
    embed::migrations(input.into()).into()
}
