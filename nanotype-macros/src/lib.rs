//! `#[nanotype::table]`. Use it through `nanotype-runtime` (imported as `nanotype`), which
//! re-exports it; the generated code refers to `::nanotype::__private`.
//!
//! The work is in [`nanotype_schema::parse`] (shared with `gen-migrations`); this crate only
//! turns a parsed model into tokens.

mod expand;
mod model_tokens;

use proc_macro::TokenStream;

/// Turns a struct with named fields into a table. See the `nanotype` crate docs for the
/// attribute grammar.
#[proc_macro_attribute]
pub fn table(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::table(args.into(), item.into()).into()
}
