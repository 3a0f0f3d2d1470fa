//! The model as a constant expression: what the macro built at compile time is what the runtime
//! sees, with no parsing at run time.

use nanotype_schema::{Column, Index, Literal, OnDelete, Reference, Table, ValueKind};
use proc_macro2::TokenStream;
use quote::quote;

fn opt_str(s: &Option<std::borrow::Cow<'static, str>>) -> TokenStream {
    if let Some(s) = s {
        let s = s.as_ref();
        quote!(::core::option::Option::Some(__nt::Cow::Borrowed(#s)))
    } else {
        quote!(::core::option::Option::None)
    }
}

fn kind(k: ValueKind) -> TokenStream {
    let ident = match k {
        ValueKind::I8 => quote!(I8),
        ValueKind::I16 => quote!(I16),
        ValueKind::I32 => quote!(I32),
        ValueKind::I64 => quote!(I64),
        ValueKind::U8 => quote!(U8),
        ValueKind::U16 => quote!(U16),
        ValueKind::U32 => quote!(U32),
        ValueKind::F32 => quote!(F32),
        ValueKind::F64 => quote!(F64),
        ValueKind::Bool => quote!(Bool),
        ValueKind::String => quote!(String),
        ValueKind::Bytes => quote!(Bytes),
        ValueKind::Json => quote!(Json),
    };
    quote!(__nt::schema::ValueKind::#ident)
}

fn literal(l: &Option<Literal>) -> TokenStream {
    let inner = match l {
        None => return quote!(::core::option::Option::None),
        Some(Literal::Integer(i)) => quote!(__nt::schema::Literal::Integer(#i)),
        Some(Literal::Real(f)) => quote!(__nt::schema::Literal::Real(#f)),
        Some(Literal::Bool(b)) => quote!(__nt::schema::Literal::Bool(#b)),
        Some(Literal::Text(s)) => {
            let s = s.as_ref();
            quote!(__nt::schema::Literal::Text(__nt::Cow::Borrowed(#s)))
        }
    };
    quote!(::core::option::Option::Some(#inner))
}

fn reference(r: &Option<Reference>) -> TokenStream {
    let Some(r) = r else {
        return quote!(::core::option::Option::None);
    };
    let table = r.table.as_ref();
    let column = r.column.as_ref();
    let on_delete = match r.on_delete {
        OnDelete::NoAction => quote!(NoAction),
        OnDelete::Restrict => quote!(Restrict),
        OnDelete::Cascade => quote!(Cascade),
        OnDelete::SetNull => quote!(SetNull),
    };
    let problems = r.problems.iter().map(std::convert::AsRef::as_ref);
    quote! {
        ::core::option::Option::Some(__nt::schema::Reference {
            table: __nt::Cow::Borrowed(#table),
            column: __nt::Cow::Borrowed(#column),
            on_delete: __nt::schema::OnDelete::#on_delete,
            problems: [#(__nt::Cow::Borrowed(#problems)),*],
        })
    }
}

fn column(c: &Column) -> TokenStream {
    let name = c.name.as_ref();
    let field = c.field.as_ref();
    let kind = kind(c.kind);
    let nullable = c.nullable;
    let pk = c.primary_key;
    let default = literal(&c.default);
    let renamed = opt_str(&c.renamed_from);
    let references = reference(&c.references);
    let serde_default = c.serde_default;
    quote! {
        __nt::schema::Column {
            name: __nt::Cow::Borrowed(#name),
            field: __nt::Cow::Borrowed(#field),
            kind: #kind,
            nullable: #nullable,
            primary_key: #pk,
            default: #default,
            renamed_from: #renamed,
            references: #references,
            serde_default: #serde_default,
        }
    }
}

fn index(i: &Index) -> TokenStream {
    let name = i.name.as_ref();
    let cols = i.columns.iter().map(std::convert::AsRef::as_ref);
    let unique = i.unique;
    let predicate = opt_str(&i.predicate);
    quote! {
        __nt::schema::Index {
            name: __nt::Cow::Borrowed(#name),
            columns: __nt::Cow::Borrowed(&[#(__nt::Cow::Borrowed(#cols)),*]),
            unique: #unique,
            predicate: #predicate,
        }
    }
}

/// `&Table { … }` as a constant expression (needs `__nt` in scope).
pub fn table(t: &Table) -> TokenStream {
    let name = t.name.as_ref();
    let rust_name = t.rust_name.as_ref();
    let renamed = opt_str(&t.renamed_from);
    let columns = t.columns.iter().map(column);
    let indexes = t.indexes.iter().map(index);
    let checks = t.checks.iter().map(std::convert::AsRef::as_ref);
    quote! {
        &__nt::schema::Table {
            name: __nt::Cow::Borrowed(#name),
            rust_name: __nt::Cow::Borrowed(#rust_name),
            renamed_from: #renamed,
            columns: __nt::Cow::Borrowed(&[#(#columns),*]),
            indexes: __nt::Cow::Borrowed(&[#(#indexes),*]),
            checks: __nt::Cow::Borrowed(&[#(__nt::Cow::Borrowed(#checks)),*]),
        }
    }
}
