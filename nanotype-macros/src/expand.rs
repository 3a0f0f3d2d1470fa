//! Expansion of `#[nanotype::table]`: parse (shared with gen-migrations) → emit.

use nanotype_schema::ddl;
use nanotype_schema::parse::{parse_table, ParsedTable};
use nanotype_schema::ValueKind;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::model_tokens;

pub fn table(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut input: DeriveInput = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => {
            // Not even a struct/enum/union: keep the item so the IDE still sees it.
            let err = e.to_compile_error();
            return quote!(#item #err);
        }
    };
    let krate = crate_path(nanotype_schema::parse::crate_arg(args.clone()).as_ref());
    let parsed = parse_table(args, &input);
    strip_field_attrs(&mut input);
    match parsed {
        Ok(p) => {
            let generated = emit(&input, &p, &krate);
            quote!(#input #generated)
        }
        Err(e) => {
            // The struct's own errors, and a stub of what it would have had so that code using
            // it does not add errors of its own (thiserror's fallback).
            let err = e.to_compile_error();
            let stub = stub(&input, &krate);
            quote!(#input #err #stub)
        }
    }
}

/// The runtime's path in generated code: `crate = "..."`, else `::nanotype`.
fn crate_path(krate: Option<&syn::Path>) -> TokenStream {
    if let Some(path) = krate {
        quote!(#path)
    } else {
        quote!(::nanotype)
    }
}

/// What a table struct gets, with no model behind it: every generated function, typed loosely
/// and never run (the crate does not compile while the error stands).
fn stub(input: &DeriveInput, krate: &TokenStream) -> TokenStream {
    if !matches!(input.data, syn::Data::Struct(_)) || !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = &input.ident;
    // A table of no columns stands for the model: enough for `schema!(..)` to list the struct
    // without an error of its own.
    let placeholder = model_tokens::table(&nanotype_schema::Table {
        name: ident.to_string().into(),
        rust_name: ident.to_string().into(),
        renamed_from: None,
        columns: Vec::new().into(),
        indexes: Vec::new().into(),
        checks: Vec::new().into(),
    });
    quote! {
        const _: () = {
            use #krate::__private as __nt;
            #[allow(dead_code, unused_variables, clippy::all)]
            impl __nt::Table for #ident {
                const DEF: &'static __nt::schema::Table = #placeholder;
                const PRIMARY_DDL: &'static str = "";
                const REPLICA_DDL: &'static str = "";
                fn to_row(&self) -> __nt::Result<__nt::Row> { ::core::unreachable!() }
                fn from_row(row: __nt::Row) -> __nt::Result<Self> { ::core::unreachable!() }
                fn key(&self) -> __nt::Result<__nt::Value> { ::core::unreachable!() }
                fn sql() -> &'static __nt::TableSql { ::core::unreachable!() }
            }
            #[allow(dead_code, unused_variables, clippy::all)]
            impl #ident {
                pub const PRIMARY_DDL: &'static str = "";
                pub const REPLICA_DDL: &'static str = "";
                pub fn table_def() -> &'static __nt::schema::Table { ::core::unreachable!() }
                pub fn insert<P: __nt::Primary>(db: &P, row: &Self) -> __nt::Result<Self> { ::core::unreachable!() }
                pub fn upsert<P: __nt::Primary>(db: &P, row: &Self) -> __nt::Result<Self> { ::core::unreachable!() }
                pub fn update<P: __nt::Primary>(db: &P, row: &Self) -> __nt::Result<Self> { ::core::unreachable!() }
                pub fn delete<P: __nt::Primary, K>(db: &P, key: K) -> __nt::Result<bool> { ::core::unreachable!() }
                pub fn get<P: __nt::Primary, K>(db: &P, key: K) -> __nt::Result<__nt::Option<Self>> { ::core::unreachable!() }
                pub fn list<P: __nt::Primary>(db: &P, page: &__nt::Page) -> __nt::Result<__nt::Vec<Self>> { ::core::unreachable!() }
                pub async fn room_get<R: __nt::RoomReads, K>(reader: &R, room: &str, key: K) -> __nt::Result<__nt::Option<Self>> { ::core::unreachable!() }
                pub async fn room_list<R: __nt::RoomReads>(reader: &R, room: &str, page: &__nt::Page) -> __nt::Result<__nt::Vec<Self>> { ::core::unreachable!() }
                pub async fn room_count<R: __nt::RoomReads>(reader: &R, room: &str) -> __nt::Result<i64> { ::core::unreachable!() }
                pub async fn find_across<R: __nt::Replica>(shards: &[R], query: &__nt::Across) -> __nt::Result<__nt::AcrossPage<Self>> { ::core::unreachable!() }
            }
        };
    }
}

/// `#[nanotype(..)]` is ours to read; the compiler must not see it.
fn strip_field_attrs(input: &mut DeriveInput) {
    if let syn::Data::Struct(s) = &mut input.data {
        for f in &mut s.fields {
            f.attrs
                .retain(|a| !a.path().is_ident(nanotype_schema::symbol::NANOTYPE));
        }
    }
}

fn emit(input: &DeriveInput, p: &ParsedTable, krate: &TokenStream) -> TokenStream {
    let ident = &input.ident;
    let t = &p.table;
    let def = model_tokens::table(t);
    let primary_ddl = ddl::primary_ddl(t);
    let replica_ddl = ddl::replica_ddl(t);

    // `validate`: the struct's `Validate` impl, reported on the flag when it is missing.
    let validate = p.validate.map(|span| {
        quote_spanned! {span=>
            const VALIDATES: bool = true;

            fn validate(&mut self, write: &__nt::WriteCtx<'_>) -> ::core::result::Result<(), __nt::ApiError> {
                <Self as __nt::Validate>::validate(self, write)
            }
        }
    });

    let mut to_row = Vec::new();
    let mut from_row = Vec::new();
    for (col, field) in t.columns.iter().zip(&p.fields) {
        let f = &field.ident;
        let name = col.name.as_ref();
        let ty = &field.inner_ty;
        let span = field.ty.span();
        let (to, from) = match (col.kind, col.nullable) {
            (ValueKind::Json, false) => (
                quote_spanned!(span=> __nt::json::to_value::<#ty>(&self.#f, #name)?),
                quote_spanned!(span=> __nt::json::from_value::<#ty>(__v, #name)?),
            ),
            (ValueKind::Json, true) => (
                quote_spanned!(span=> __nt::json::opt_to_value::<#ty>(&self.#f, #name)?),
                quote_spanned!(span=> __nt::json::opt_from_value::<#ty>(__v, #name)?),
            ),
            _ => (
                quote!(__nt::ToValue::to_value(&self.#f, #name)?),
                quote!(__nt::FromValue::from_value(__v, #name)?),
            ),
        };
        to_row.push(to);
        from_row.push(quote! {
            #f: { let __v = __it.next().unwrap_or(__nt::Value::Null); #from }
        });
    }

    // The key: one field's value, or for a composite key its fields' values as one
    // (`__nt::key::compose`); the functions take a composite key as a tuple in field order.
    let key_positions = t.key_positions();
    let (key_param, key_of_param, key_of_self) = match key_positions.as_slice() {
        [pos] => {
            let field = &p.fields[*pos];
            let (ident, name) = (&field.ident, t.columns[*pos].name.as_ref());
            (
                param_type(t.columns[*pos].kind, false, &field.ty),
                quote!(__nt::ToValue::to_value(&key, #name)?),
                quote!(__nt::ToValue::to_value(&self.#ident, #name)),
            )
        }
        positions => {
            let types = positions
                .iter()
                .map(|&i| param_type(t.columns[i].kind, false, &p.fields[i].ty));
            let parts = positions.iter().enumerate().map(|(n, &i)| {
                let n = syn::Index::from(n);
                let name = t.columns[i].name.as_ref();
                quote!(__nt::ToValue::to_value(&key.#n, #name)?)
            });
            let own = positions.iter().map(|&i| {
                let (ident, name) = (&p.fields[i].ident, t.columns[i].name.as_ref());
                quote!(__nt::ToValue::to_value(&self.#ident, #name)?)
            });
            (
                quote!((#(#types),*)),
                quote!(__nt::key::compose(::std::vec![#(#parts),*])),
                quote!(::core::result::Result::Ok(__nt::key::compose(
                    ::std::vec![#(#own),*]
                ))),
            )
        }
    };

    let mut find_by = Vec::new();
    let mut seen = Vec::new();
    // Columns that lead an index, and the first of a composite key (its index leads with it).
    let composite_first =
        (key_positions.len() > 1).then(|| t.columns[key_positions[0]].name.clone());
    let leading = composite_first
        .into_iter()
        .chain(t.indexes.iter().filter_map(|i| i.columns.first().cloned()));
    for first in leading {
        let first = &first;
        if seen.contains(first) {
            continue;
        }
        seen.push(first.clone());
        let Some(pos) = t.columns.iter().position(|c| c.name == *first) else {
            continue;
        };
        let col = &t.columns[pos];
        let field = &p.fields[pos];
        let fname = format_ident!(
            "room_find_by_{}",
            field.ident.to_string().trim_start_matches("r#")
        );
        let ty = param_type(col.kind, col.nullable, &field.ty);
        let colname = col.name.as_ref();
        let doc = format!("Rows of `room` whose `{colname}` equals `value`, keyset-paged by key (room-scoped read).");
        find_by.push(quote! {
            #[doc = #doc]
            pub async fn #fname<R: __nt::RoomReads>(reader: &R, room: &str, value: #ty, page: &__nt::Page) -> __nt::Result<__nt::Vec<Self>> {
                let value = __nt::ToValue::to_value(&value, #colname)?;
                __nt::read::room_find_by::<Self, R>(reader, room, #colname, value, page).await
            }
        });
    }

    let vis = &input.vis;
    let _ = vis;
    let span = Span::call_site();
    quote_spanned! {span=>
        const _: () = {
            use #krate::__private as __nt;

            impl __nt::Table for #ident {
                const DEF: &'static __nt::schema::Table = #def;
                const PRIMARY_DDL: &'static str = #primary_ddl;
                const REPLICA_DDL: &'static str = #replica_ddl;

                fn to_row(&self) -> __nt::Result<__nt::Row> {
                    ::core::result::Result::Ok(::std::vec![#(#to_row),*])
                }

                fn from_row(row: __nt::Row) -> __nt::Result<Self> {
                    let mut __it = row.into_iter();
                    ::core::result::Result::Ok(Self { #(#from_row),* })
                }

                fn key(&self) -> __nt::Result<__nt::Value> {
                    #key_of_self
                }

                fn sql() -> &'static __nt::TableSql {
                    static SQL: __nt::OnceLock<__nt::TableSql> = __nt::OnceLock::new();
                    SQL.get_or_init(|| __nt::TableSql::new(<Self as __nt::Table>::DEF))
                }

                #validate
            }

            impl #ident {
                /// DDL for the room's SQLite (Durable Object).
                pub const PRIMARY_DDL: &'static str = #primary_ddl;
                /// DDL for the D1 replica (`room_id` leads the key and every index).
                pub const REPLICA_DDL: &'static str = #replica_ddl;

                /// The table's model.
                pub fn table_def() -> &'static __nt::schema::Table {
                    <Self as __nt::Table>::DEF
                }

                /// Insert `row` and record the change for replication, atomically. An `i64` key is
                /// assigned by SQLite; returns the row as stored.
                pub fn insert<P: __nt::Primary>(db: &P, row: &Self) -> __nt::Result<Self> {
                    __nt::write::insert(db, row)
                }

                /// Insert `row` with its own key or replace the row with that key.
                pub fn upsert<P: __nt::Primary>(db: &P, row: &Self) -> __nt::Result<Self> {
                    __nt::write::upsert(db, row)
                }

                /// Update the row with `row`'s key; `Error::NotFound` when there is none.
                pub fn update<P: __nt::Primary>(db: &P, row: &Self) -> __nt::Result<Self> {
                    __nt::write::update(db, row)
                }

                /// Delete the row with `key` (a tuple in field order for a composite key); whether
                /// there was one.
                pub fn delete<P: __nt::Primary>(db: &P, key: #key_param) -> __nt::Result<bool> {
                    let key = #key_of_param;
                    __nt::write::delete::<Self, P>(db, key)
                }

                /// The row with `key` in the room's own database.
                pub fn get<P: __nt::Primary>(db: &P, key: #key_param) -> __nt::Result<__nt::Option<Self>> {
                    let key = #key_of_param;
                    __nt::read::get::<Self, P>(db, key)
                }

                /// A keyset page of the room's own database.
                pub fn list<P: __nt::Primary>(db: &P, page: &__nt::Page) -> __nt::Result<__nt::Vec<Self>> {
                    __nt::read::list::<Self, P>(db, page)
                }

                /// The row of `room` with `key` (room-scoped read).
                pub async fn room_get<R: __nt::RoomReads>(reader: &R, room: &str, key: #key_param) -> __nt::Result<__nt::Option<Self>> {
                    let key = #key_of_param;
                    __nt::read::room_get::<Self, R>(reader, room, key).await
                }

                /// A keyset page of `room`'s rows (room-scoped read).
                pub async fn room_list<R: __nt::RoomReads>(reader: &R, room: &str, page: &__nt::Page) -> __nt::Result<__nt::Vec<Self>> {
                    __nt::read::room_list::<Self, R>(reader, room, page).await
                }

                /// The number of `room`'s rows (room-scoped read).
                pub async fn room_count<R: __nt::RoomReads>(reader: &R, room: &str) -> __nt::Result<i64> {
                    __nt::read::room_count::<Self, R>(reader, room).await
                }

                /// A keyset page of this table's rows across rooms, in `(room, key)` order, from
                /// every shard of the replica (each read once): the reads only D1 can answer.
                pub async fn find_across<R: __nt::Replica>(shards: &[R], query: &__nt::Across) -> __nt::Result<__nt::AcrossPage<Self>> {
                    __nt::across::find_across::<Self, R>(shards, query).await
                }

                #(#find_by)*
            }
        };
    }
}

/// How a key or filter value is passed: strings as `&str`, bytes as `&[u8]`, everything else by
/// reference to the field type (or by value for integers).
fn param_type(kind: ValueKind, nullable: bool, field_ty: &syn::Type) -> TokenStream {
    match (kind, nullable) {
        (ValueKind::String, false) => quote!(&str),
        (ValueKind::String, true) => quote!(::core::option::Option<&str>),
        (ValueKind::Bytes, false) => quote!(&[u8]),
        (ValueKind::Json, _) | (ValueKind::Bytes, true) => quote!(&#field_ty),
        _ => quote!(#field_ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_runtime_is_named_everywhere() {
        let out = table(
            quote!(name = "notes", crate = "::renamed_nt"),
            quote!(
                struct Note {
                    #[nanotype(primary_key)]
                    id: i64,
                }
            ),
        )
        .to_string();
        assert!(
            out.contains("use :: renamed_nt :: __private as __nt"),
            "{out}"
        );
        assert!(!out.contains(":: nanotype ::"), "{out}");
    }

    #[test]
    fn an_invalid_struct_gets_its_error_and_a_stub_so_callers_add_none() {
        let out = table(
            quote!(crate = "::renamed_nt"),
            quote!(
                struct Note {
                    id: i64,
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains("pub fn insert"),
            "the stub has the generated functions: {out}"
        );
        assert!(out.contains(":: renamed_nt :: __private"), "{out}");
        let bad_crate = table(
            quote!(crate = "not a path"),
            quote!(
                struct N {
                    id: i64,
                }
            ),
        )
        .to_string();
        assert!(bad_crate.contains("`crate` takes a path"), "{bad_crate}");
    }
}
