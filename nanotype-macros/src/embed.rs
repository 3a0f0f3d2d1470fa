//! `nanotype::migrations!("dir")`: the Durable Object's migration files, embedded at compile time.
//!
//! The folder is listed here (the one read the macro does); each file is embedded with
//! `include_str!`, so editing a file rebuilds the crate. A *new* file is only seen when the crate
//! is rebuilt, so the calling crate's `build.rs` should say
//! `println!("cargo:rerun-if-changed=<dir>");` (cargo then watches the folder).

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::LitStr;

/// The macro: the manifest dir of the crate being compiled, from cargo.
pub fn migrations(input: TokenStream) -> TokenStream {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let (dir, krate) = split_crate(input);
    match expand_in(dir, manifest_dir.as_deref(), &krate) {
        Ok(tokens) => tokens,
        Err(e) => {
            // Still an expression of the right type, so the caller sees this error only.
            let err = e.to_compile_error();
            quote! {{
                #err
                let __nt_none: &[#krate::migrate::Migration] = &[];
                __nt_none
            }}
        }
    }
}

/// `"dir"` or `"dir", crate = <path>` (what `nanotype::schema!` passes, as `$crate`, so that a
/// renamed dependency still resolves): the folder's tokens and the runtime's path.
fn split_crate(input: TokenStream) -> (TokenStream, TokenStream) {
    let tokens: Vec<proc_macro2::TokenTree> = input.into_iter().collect();
    let comma = tokens
        .iter()
        .position(|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ','));
    if let Some(i) = comma {
        let rest = &tokens[i + 1..];
        let is_crate =
            matches!(rest.first(), Some(proc_macro2::TokenTree::Ident(id)) if id == "crate");
        let eq =
            matches!(rest.get(1), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == '=');
        if is_crate && eq && rest.len() > 2 {
            return (
                tokens[..i].iter().cloned().collect(),
                rest[2..].iter().cloned().collect(),
            );
        }
    }
    (tokens.into_iter().collect(), quote!(::nanotype))
}

/// Expansion with the manifest dir given, for tests.
#[cfg(test)]
pub fn expand(input: TokenStream, manifest_dir: Option<&Path>) -> syn::Result<TokenStream> {
    expand_in(input, manifest_dir, &quote!(::nanotype))
}

fn expand_in(
    input: TokenStream,
    manifest_dir: Option<&Path>,
    krate: &TokenStream,
) -> syn::Result<TokenStream> {
    let lit: LitStr = syn::parse2(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the migrations folder as a string, relative to the crate's Cargo.toml: \
             `nanotype::migrations!(\"../../migrations/do\")`",
        )
    })?;
    let Some(manifest_dir) = manifest_dir else {
        return Err(syn::Error::new(
            lit.span(),
            "CARGO_MANIFEST_DIR is not set; build with cargo",
        ));
    };
    let dir = manifest_dir.join(lit.value());
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format!(
                "cannot read the migrations folder {}: {e}; the path is relative to {} \
                 (run `cargo run --bin gen-migrations` to create it)",
                dir.display(),
                manifest_dir.display()
            ),
        )
    })?;
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| {
                syn::Error::new(lit.span(), format!("cannot read {}: {e}", dir.display()))
            })?
            .path();
        if !path.is_file() || path.extension().is_none_or(|x| x != "sql") {
            continue;
        }
        let (Some(name), Some(full)) = (path.file_stem().and_then(|s| s.to_str()), path.to_str())
        else {
            return Err(syn::Error::new(
                lit.span(),
                format!("{}: the path is not UTF-8", path.display()),
            ));
        };
        files.push((name.to_owned(), full.to_owned()));
    }
    files.sort();
    let items = files.iter().map(|(name, path)| {
        let name = LitStr::new(name, Span::call_site());
        let path = LitStr::new(path, lit.span());
        quote! {
            #krate::migrate::Migration { name: #name, sql: ::core::include_str!(#path) }
        }
    });
    Ok(quote! { &[#(#items),*] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_sorted_sql_files() {
        let dir = std::env::temp_dir().join(format!("nt-embed-{}", std::process::id()));
        let sub = dir.join("do");
        std::fs::create_dir_all(&sub).unwrap();
        for f in ["0002_b.sql", "0001_a.sql", "README.md"] {
            std::fs::write(sub.join(f), "").unwrap();
        }
        let out = expand(quote!("do"), Some(&dir)).unwrap().to_string();
        let a = out.find("\"0001_a\"").unwrap();
        let b = out.find("\"0002_b\"").unwrap();
        assert!(a < b, "{out}");
        assert!(!out.contains("README"));
        assert!(out.contains("include_str"));
        let err = expand(quote!("missing"), Some(&dir))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the migrations folder"), "{err}");
        assert!(expand(quote!(do), Some(&dir)).is_err());
        // `schema!` passes the runtime's path (`$crate`) for renamed dependencies.
        let (d, krate) = split_crate(quote!("do", crate = ::renamed_nt));
        let out = expand_in(d, Some(&dir), &krate).unwrap().to_string();
        assert!(
            out.contains(":: renamed_nt :: migrate :: Migration"),
            "{out}"
        );
        assert!(!out.contains(":: nanotype ::"), "{out}");
        assert_eq!(split_crate(quote!("do")).1.to_string(), ":: nanotype");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
