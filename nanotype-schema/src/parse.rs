//! `#[nanotype::table]` structs → [`Table`] models, with every error on its own tokens.
//!
//! Used by the macro (on the item it is attached to) and by `gen-migrations` (on the structs it
//! finds in source files), so both build the same model from the same syntax.
//!
//! Grammar:
//!
//! ```text
//! #[nanotype::table]                                  table named after the struct (snake_case)
//! #[nanotype::table(name = "tasks")]                  explicit table name
//! #[nanotype::table(renamed_from = "todo")]           the table used to be called `todo`
//! #[nanotype::table(index(status, created_at))]       composite index (fields, in key order)
//! #[nanotype::table(unique(owner, slug))]             composite unique index
//! #[nanotype::table(index(status, where = "done = 0"))]  partial index (SQL condition)
//! #[nanotype::table(check = "start_at <= end_at")]    CHECK constraint (may be repeated)
//! #[nanotype::table(validate)]                        every write goes through the struct's
//!                                                     `nanotype::Validate` impl
//!
//! #[nanotype(primary_key)]    the key: a lone i64 key is assigned by SQLite on insert; on
//!                             several fields, a composite key in field order
//! #[nanotype(index)]          single-column index
//! #[nanotype(unique)]         single-column unique index
//! #[nanotype(default = 0)]    literal default: integer, float, bool or string
//! #[nanotype(rename = "col")] column name differs from the field name
//! #[nanotype(renamed_from = "old")]  the column used to be called `old`
//! #[nanotype(json)]           any serde type, stored as JSON text
//! #[nanotype(references = "tasks.id")]                   a foreign key to `tasks`' primary key
//! #[nanotype(references = "tasks.id", on_delete = "cascade")]   or restrict, set_null, no_action
//! ```

use std::borrow::Cow;

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Fields, GenericArgument, Ident, Lit, LitStr, PathArguments,
    Token, Type,
};

use crate::check::{check_table, Location};
use crate::ident::snake_case;
use crate::model::{Column, Index, Literal, Table, ValueKind};
use crate::symbol::{
    CHECK, CRATE, DEFAULT, FIELD_KEYS, INDEX, JSON, NAME, NANOTYPE, ON_DELETE, PRIMARY_KEY,
    REFERENCES, RENAME, RENAMED_FROM, TABLE_KEYS, UNIQUE, VALIDATE,
};

/// A parsed table with what code generation needs besides the model.
pub struct ParsedTable {
    /// The table's model.
    pub table: Table,
    /// `crate = "path"`: the runtime's path in generated code, when the dependency is renamed.
    pub krate: Option<syn::Path>,
    /// Per column (same order as `table.columns`): the Rust field.
    pub fields: Vec<ParsedField>,
    /// `validate`: the flag's span (where a missing `Validate` impl is reported).
    pub validate: Option<Span>,
}

/// What the macro needs about one field.
pub struct ParsedField {
    /// The field's name.
    pub ident: Ident,
    /// The field's type.
    pub ty: Type,
    /// For `Option<T>` fields, `T`; otherwise the field type.
    pub inner_ty: Type,
}

/// Collects errors so the user sees all of them at once (serde_derive's `Ctxt`).
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
}

/// Spans of the pieces of a table, to put model-level problems on their tokens.
struct Spans {
    table: Span,
    table_name: Span,
    table_renamed_from: Span,
    columns: Vec<Span>,
    types: Vec<Span>,
    defaults: Vec<Span>,
    renamed_from: Vec<Span>,
    indexes: Vec<(Span, Vec<Span>)>,
}

/// Parse the macro's arguments and the struct it is attached to.
pub fn parse_table(args: TokenStream, item: &DeriveInput) -> Result<ParsedTable, syn::Error> {
    let mut errors = Errors::default();
    let table_args = match TableArgs::parse_args.parse2(args) {
        Ok(a) => a,
        Err(e) => {
            errors.push(e);
            TableArgs::default()
        }
    };
    let parsed = build(table_args, item, &mut errors);
    match (errors.0, parsed) {
        (None, Some(p)) => Ok(p),
        (Some(e), _) => Err(e),
        (None, None) => Err(syn::Error::new(item.ident.span(), "invalid table")),
    }
}

/// Parse every `#[nanotype::table]` struct in a source file (for gen-migrations). Items inside
/// inline modules are included.
#[cfg(feature = "files")]
pub fn find_tables(items: &[syn::Item]) -> Vec<Result<ParsedTable, syn::Error>> {
    let mut out = Vec::new();
    for item in items {
        match item {
            syn::Item::Struct(s) => {
                if let Some(attr) = s.attrs.iter().find(|a| is_table_attr(a)) {
                    let args = match &attr.meta {
                        syn::Meta::List(list) => list.tokens.clone(),
                        _ => TokenStream::new(),
                    };
                    let mut input: DeriveInput = s.clone().into();
                    input.attrs.retain(|a| !is_table_attr(a));
                    out.push(parse_table(args, &input));
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    out.extend(find_tables(items));
                }
            }
            _ => {}
        }
    }
    out
}

/// `#[nanotype::table]` or `#[table]` (imported) — the path's last segment is `table` and it
/// starts with `nanotype` or stands alone.
pub fn is_table_attr(attr: &Attribute) -> bool {
    let segs: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    matches!(segs.as_slice(), [t] if t == "table")
        || matches!(segs.as_slice(), [n, t] if n == "nanotype" && t == "table")
}

/// The `crate = "path"` argument of `#[nanotype::table(..)]`, read on its own so that code
/// generated for a struct with errors still names the right crate.
pub fn crate_arg(args: TokenStream) -> Option<syn::Path> {
    TableArgs::parse_args
        .parse2(args)
        .ok()
        .and_then(|a| a.krate)
}

#[derive(Default)]
struct TableArgs {
    krate: Option<syn::Path>,
    name: Option<LitStr>,
    renamed_from: Option<LitStr>,
    indexes: Vec<(Ident, Vec<Ident>, Option<LitStr>)>,
    checks: Vec<LitStr>,
    validate: Option<Span>,
    errors: Vec<syn::Error>,
}

/// A SQL condition given in an attribute: not empty, one expression (no `;`, no comment),
/// parentheses balanced. SQLite checks the rest when the migration runs.
fn check_condition(lit: &LitStr, what: &str) -> Option<syn::Error> {
    let text = lit.value();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '(' => depth += 1,
            None if c == ')' => {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            }
            None => {}
        }
    }
    let problem = if text.trim().is_empty() {
        Some("is empty")
    } else if depth != 0 || quote.is_some() {
        Some("has unbalanced parentheses or quotes")
    } else if text.contains(';') || text.contains("--") || text.contains("/*") {
        Some("must be one SQL condition (no `;`, no comment)")
    } else {
        None
    };
    problem.map(|p| syn::Error::new(lit.span(), format!("{what} {p}")))
}

impl TableArgs {
    fn parse_args(input: ParseStream) -> syn::Result<TableArgs> {
        let mut out = TableArgs::default();
        while !input.is_empty() {
            let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let k = key.to_string();
            if k == NAME || k == RENAMED_FROM {
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                let slot = if k == NAME {
                    &mut out.name
                } else {
                    &mut out.renamed_from
                };
                if slot.is_some() {
                    out.errors
                        .push(syn::Error::new(key.span(), format!("duplicate `{k}`")));
                }
                *slot = Some(value);
            } else if k == CRATE {
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                match value.parse::<syn::Path>() {
                    Ok(path) if out.krate.is_none() => out.krate = Some(path),
                    Ok(_) => out
                        .errors
                        .push(syn::Error::new(key.span(), format!("duplicate `{k}`"))),
                    Err(_) => out.errors.push(syn::Error::new(
                        value.span(),
                        "`crate` takes a path as a string, e.g. `crate = \"::my_nanotype\"`",
                    )),
                }
            } else if k == INDEX || k == UNIQUE {
                let content;
                syn::parenthesized!(content in input);
                let mut cols = Vec::new();
                let mut predicate = None;
                while !content.is_empty() {
                    if content.peek(Token![where]) {
                        content.parse::<Token![where]>()?;
                        content.parse::<Token![=]>()?;
                        let cond: LitStr = content.parse()?;
                        if let Some(e) = check_condition(&cond, "the index's `where`") {
                            out.errors.push(e);
                        }
                        predicate = Some(cond);
                    } else {
                        cols.push(content.call(syn::ext::IdentExt::parse_any)?);
                    }
                    if content.is_empty() {
                        break;
                    }
                    content.parse::<Token![,]>()?;
                }
                out.indexes.push((key, cols, predicate));
            } else if k == VALIDATE {
                if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        key.span(),
                        "`validate` is a flag and takes no value: write `#[nanotype::table(validate)]` and `impl nanotype::Validate`",
                    ));
                }
                if out.validate.is_some() {
                    out.errors
                        .push(syn::Error::new(key.span(), format!("duplicate `{k}`")));
                }
                out.validate = Some(key.span());
            } else if k == CHECK {
                input.parse::<Token![=]>()?;
                let cond: LitStr = input.parse()?;
                if let Some(e) = check_condition(&cond, "`check`") {
                    out.errors.push(e);
                }
                out.checks.push(cond);
            } else {
                out.errors.push(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown table attribute `{k}`; expected one of: {}",
                        TABLE_KEYS.join(", ")
                    ),
                ));
                // Skip the rest of this entry so later ones are still read.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(out)
    }
}

/// One field's `#[nanotype(...)]` attributes.
#[derive(Default)]
struct FieldArgs {
    primary_key: Option<Span>,
    index: Option<Span>,
    unique: Option<Span>,
    default: Option<(Literal, Span)>,
    rename: Option<LitStr>,
    renamed_from: Option<LitStr>,
    json: Option<Span>,
    references: Option<LitStr>,
    on_delete: Option<LitStr>,
}

/// Whether `attrs` hold serde's `default` (`#[serde(default)]`, `#[serde(default = "path")]`),
/// read only to describe request bodies; anything serde takes is left to serde.
fn has_serde_default(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .any(|a| {
            let mut found = false;
            // Other serde arguments are skipped whatever their form; a parse failure is serde's to report.
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    found = true;
                }
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let _content;
                    syn::parenthesized!(_content in meta.input);
                }
                Ok(())
            });
            found
        })
}

fn parse_field_args(attrs: &[Attribute], errors: &mut Errors) -> FieldArgs {
    let mut out = FieldArgs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident(NANOTYPE)) {
        let result = attr.parse_nested_meta(|meta| {
            let Some(key) = meta.path.get_ident() else {
                return Err(meta.error(format!("unknown field attribute; expected one of: {}", FIELD_KEYS.join(", "))));
            };
            let k = key.to_string();
            let span = key.span();
            let is_flag = matches!(k.as_str(), PRIMARY_KEY | INDEX | UNIQUE | JSON);
            if is_flag && (meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren)) {
                errors.at(span, format!("`{k}` is a flag and takes no value: write `#[nanotype({k})]`"));
                skip_value(meta.input)?;
            }
            let mut dup = |taken: bool| {
                if taken {
                    errors.at(span, format!("duplicate `{k}`"));
                }
            };
            match k.as_str() {
                PRIMARY_KEY => {
                    dup(out.primary_key.is_some());
                    out.primary_key = Some(span);
                }
                INDEX => {
                    dup(out.index.is_some());
                    out.index = Some(span);
                }
                UNIQUE => {
                    dup(out.unique.is_some());
                    out.unique = Some(span);
                }
                JSON => {
                    dup(out.json.is_some());
                    out.json = Some(span);
                }
                DEFAULT => {
                    dup(out.default.is_some());
                    let expr: syn::Expr = meta.value()?.parse()?;
                    match literal_of(&expr) {
                        Some(lit) => out.default = Some((lit, expr.span())),
                        None => errors.at(
                            expr.span(),
                            "`default` takes a literal: an integer, a float, `true`/`false` or a string",
                        ),
                    }
                }
                RENAME => {
                    dup(out.rename.is_some());
                    out.rename = Some(meta.value()?.parse()?);
                }
                RENAMED_FROM => {
                    dup(out.renamed_from.is_some());
                    out.renamed_from = Some(meta.value()?.parse()?);
                }
                REFERENCES => {
                    dup(out.references.is_some());
                    out.references = Some(meta.value()?.parse()?);
                }
                ON_DELETE => {
                    dup(out.on_delete.is_some());
                    out.on_delete = Some(meta.value()?.parse()?);
                }
                _ => {
                    errors.at(span, format!("unknown field attribute `{k}`; expected one of: {}", FIELD_KEYS.join(", ")));
                    // Consume its value so the rest of the list is still read.
                    skip_value(meta.input)?;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// The field's `references` and `on_delete`, checked on their own tokens. Whether the table and
/// its key exist, with the same type, is checked with the whole schema
/// ([`crate::check::check_references`]).
fn reference_of(
    fa: &FieldArgs,
    table: &str,
    column: &str,
    nullable: bool,
    kind: ValueKind,
    errors: &mut Errors,
) -> Option<crate::model::Reference> {
    let Some(lit) = &fa.references else {
        if let Some(on_delete) = &fa.on_delete {
            errors.at(
                on_delete.span(),
                "`on_delete` goes with `references = \"table.column\"`",
            );
        }
        return None;
    };
    let text = lit.value();
    let parts: Vec<&str> = text.split('.').collect();
    let [target, key] = parts.as_slice() else {
        errors.at(
            lit.span(),
            "`references` names the table and its key: `references = \"tasks.id\"`",
        );
        return None;
    };
    for name in [target, key] {
        if let Some(e) = crate::ident::invalid_reason(name) {
            errors.at(lit.span(), format!("`references`: {e}"));
            return None;
        }
    }
    if kind == ValueKind::Json {
        errors.at(lit.span(), "a `json` field cannot reference another table");
        return None;
    }
    let on_delete = match &fa.on_delete {
        None => crate::model::OnDelete::NoAction,
        Some(l) => {
            if let Some(o) = crate::model::OnDelete::from_keyword(&l.value()) {
                o
            } else {
                errors.at(
                    l.span(),
                    "`on_delete` is one of \"cascade\", \"restrict\", \"set_null\", \"no_action\"",
                );
                return None;
            }
        }
    };
    if on_delete == crate::model::OnDelete::SetNull && !nullable {
        errors.at(
            fa.on_delete.as_ref().map_or(lit.span(), syn::LitStr::span),
            "`on_delete = \"set_null\"` needs an `Option` field: the reference becomes NULL",
        );
        return None;
    }
    Some(crate::model::Reference::new(
        table, column, target, key, on_delete,
    ))
}

/// Skip `= value` or `(...)` after an attribute key, up to the next `,`.
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

fn literal_of(expr: &syn::Expr) -> Option<Literal> {
    match expr {
        syn::Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_parse::<i64>().ok().map(Literal::Integer),
            Lit::Float(f) => f.base10_parse::<f64>().ok().map(Literal::Real),
            Lit::Bool(b) => Some(Literal::Bool(b.value)),
            Lit::Str(s) => Some(Literal::Text(Cow::Owned(s.value()))),
            _ => None,
        },
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => match &*u.expr {
            // Parse the magnitude wide so that `-9223372036854775808` is i64::MIN.
            syn::Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            }) => i
                .base10_parse::<i128>()
                .ok()
                .and_then(|v| i64::try_from(-v).ok())
                .map(Literal::Integer),
            syn::Expr::Lit(syn::ExprLit {
                lit: Lit::Float(f), ..
            }) => f.base10_parse::<f64>().ok().map(|v| Literal::Real(-v)),
            _ => None,
        },
        syn::Expr::Group(g) => literal_of(&g.expr),
        _ => None,
    }
}

/// `Option<T>` → `Some(T)`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first()? {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// The value kind of a (non-Option) field type, or why it is not supported.
fn kind_of(ty: &Type) -> Result<ValueKind, String> {
    let unsupported = || {
        "unsupported column type; use an integer (i8..i64, u8..u32), f32, f64, bool, String, Vec<u8>, \
         Option<_> of those, or mark the field `#[nanotype(json)]` to store any serde type as JSON"
            .to_string()
    };
    let Type::Path(p) = ty else {
        return Err(unsupported());
    };
    if p.qself.is_some() {
        return Err(unsupported());
    }
    let Some(last) = p.path.segments.last() else {
        return Err(unsupported());
    };
    let name = last.ident.to_string();
    if name == "Vec" {
        if let PathArguments::AngleBracketed(a) = &last.arguments {
            if let Some(GenericArgument::Type(Type::Path(inner))) = a.args.first() {
                if inner.path.is_ident("u8") {
                    return Ok(ValueKind::Bytes);
                }
            }
        }
        return Err(unsupported());
    }
    if !matches!(last.arguments, PathArguments::None) {
        return Err(unsupported());
    }
    Ok(match name.as_str() {
        "i8" => ValueKind::I8,
        "i16" => ValueKind::I16,
        "i32" => ValueKind::I32,
        "i64" => ValueKind::I64,
        "u8" => ValueKind::U8,
        "u16" => ValueKind::U16,
        "u32" => ValueKind::U32,
        "f32" => ValueKind::F32,
        "f64" => ValueKind::F64,
        "bool" => ValueKind::Bool,
        "String" => ValueKind::String,
        "u64" | "usize" | "u128" | "i128" | "isize" => {
            return Err(format!(
                "`{name}` is not supported: values beyond 2^53 are silently rounded when they travel \
                 through JavaScript (Durable Object and D1 APIs); use `i64` (checked at run time to stay \
                 within ±(2^53 − 1)) or store it as a `String`"
            ))
        }
        _ => return Err(unsupported()),
    })
}

fn build(mut args: TableArgs, item: &DeriveInput, errors: &mut Errors) -> Option<ParsedTable> {
    for e in std::mem::take(&mut args.errors) {
        errors.push(e);
    }
    if !item.generics.params.is_empty() {
        errors.at(
            item.generics.span(),
            "a table struct may not be generic: its columns must have fixed types",
        );
    }
    let fields = match &item.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(_) | Fields::Unit => {
                errors.at(
                    item.ident.span(),
                    "`#[nanotype::table]` needs a struct with named fields",
                );
                return None;
            }
        },
        Data::Enum(e) => {
            errors.at(
                e.enum_token.span,
                "`#[nanotype::table]` goes on a struct with named fields, not an enum",
            );
            return None;
        }
        Data::Union(u) => {
            errors.at(
                u.union_token.span,
                "`#[nanotype::table]` goes on a struct with named fields, not a union",
            );
            return None;
        }
    };

    let rust_name = item.ident.to_string();
    let table_name = args
        .name
        .as_ref()
        .map_or_else(|| snake_case(&rust_name), syn::LitStr::value);
    let mut spans = Spans {
        table: item.ident.span(),
        table_name: args
            .name
            .as_ref()
            .map_or(item.ident.span(), syn::LitStr::span),
        table_renamed_from: args
            .renamed_from
            .as_ref()
            .map_or(item.ident.span(), syn::LitStr::span),
        columns: Vec::new(),
        types: Vec::new(),
        defaults: Vec::new(),
        renamed_from: Vec::new(),
        indexes: Vec::new(),
    };

    let struct_serde_default = has_serde_default(&item.attrs);
    let mut columns = Vec::new();
    let mut parsed_fields = Vec::new();
    let mut indexes: Vec<Index> = Vec::new();
    for field in fields {
        let Some(ident) = field.ident.clone() else {
            continue;
        };
        let fa = parse_field_args(&field.attrs, errors);
        let inner = option_inner(&field.ty);
        let nullable = inner.is_some();
        let inner_ty = inner.cloned().unwrap_or_else(|| field.ty.clone());
        let kind = if fa.json.is_some() {
            ValueKind::Json
        } else {
            match kind_of(&inner_ty) {
                Ok(k) => k,
                Err(msg) => {
                    errors.push(syn::Error::new_spanned(&inner_ty, msg));
                    ValueKind::String
                }
            }
        };
        let field_name = syn::ext::IdentExt::unraw(&ident).to_string();
        let col_name = fa
            .rename
            .as_ref()
            .map_or_else(|| field_name.clone(), syn::LitStr::value);
        let col_span = fa.rename.as_ref().map_or(ident.span(), syn::LitStr::span);
        if fa.json.is_some() && fa.primary_key.is_some() {
            errors.at(
                fa.json.unwrap_or(ident.span()),
                "a `json` field cannot be the primary key",
            );
        }
        for (flag, unique) in [(fa.index, false), (fa.unique, true)] {
            if let Some(span) = flag {
                if fa.primary_key.is_some() {
                    errors.at(span, "the primary key is indexed already");
                    continue;
                }
                let name = Index::default_name(&table_name, &[&col_name], unique);
                indexes.push(Index {
                    name: Cow::Owned(name),
                    columns: Cow::Owned(vec![Cow::Owned(col_name.clone())]),
                    unique,
                    predicate: None,
                });
                spans.indexes.push((span, vec![span]));
            }
        }
        spans.columns.push(col_span);
        spans.types.push(field.ty.span());
        spans
            .defaults
            .push(fa.default.as_ref().map_or(col_span, |d| d.1));
        spans
            .renamed_from
            .push(fa.renamed_from.as_ref().map_or(col_span, syn::LitStr::span));
        let references = reference_of(&fa, &table_name, &col_name, nullable, kind, errors);
        columns.push(Column {
            name: Cow::Owned(col_name),
            field: Cow::Owned(field_name),
            kind,
            nullable,
            primary_key: fa.primary_key.is_some(),
            default: fa.default.map(|d| d.0),
            renamed_from: fa.renamed_from.map(|l| Cow::Owned(l.value())),
            references,
            serde_default: struct_serde_default || has_serde_default(&field.attrs),
        });
        parsed_fields.push(ParsedField {
            ident,
            ty: field.ty.clone(),
            inner_ty,
        });
    }

    // Table-level indexes name fields; map them to column names.
    for (key, idents, predicate) in &args.indexes {
        let unique = *key == UNIQUE;
        let mut cols = Vec::new();
        let mut col_spans = Vec::new();
        for ident in idents {
            // `r#type` names the field `type`.
            let field = syn::ext::IdentExt::unraw(ident).to_string();
            let col = columns
                .iter()
                .find(|c| c.field == field)
                .map(|c| c.name.to_string())
                .unwrap_or(field);
            cols.push(col);
            col_spans.push(ident.span());
        }
        let col_refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        indexes.push(Index {
            name: Cow::Owned(Index::default_name(&table_name, &col_refs, unique)),
            columns: Cow::Owned(cols.into_iter().map(Cow::Owned).collect()),
            unique,
            predicate: predicate.as_ref().map(|l| Cow::Owned(l.value())),
        });
        spans.indexes.push((key.span(), col_spans));
    }

    let table = Table {
        name: Cow::Owned(table_name),
        rust_name: Cow::Owned(rust_name),
        renamed_from: args.renamed_from.map(|l| Cow::Owned(l.value())),
        columns: Cow::Owned(columns),
        indexes: Cow::Owned(indexes),
        checks: Cow::Owned(args.checks.iter().map(|l| Cow::Owned(l.value())).collect()),
    };
    for problem in check_table(&table) {
        let span = match problem.at {
            Location::Table => spans.table,
            Location::TableName => spans.table_name,
            Location::ColumnType(i) => spans.types[i],
            Location::TableRenamedFrom => spans.table_renamed_from,
            Location::Column(i) => spans.columns[i],
            Location::ColumnDefault(i) => spans.defaults[i],
            Location::ColumnRenamedFrom(i) => spans.renamed_from[i],
            Location::Index(i) => spans.indexes[i].0,
            Location::IndexColumn(i, j) => spans.indexes[i]
                .1
                .get(j)
                .copied()
                .unwrap_or(spans.indexes[i].0),
        };
        let message = match &problem.at {
            // A missing field in a table-level index: say "field", since fields are what it names.
            Location::IndexColumn(..) if problem.message.starts_with("no column named") => problem
                .message
                .replacen("no column named", "no field named", 1),
            _ => problem.message,
        };
        errors.at(span, message);
    }
    Some(ParsedTable {
        table,
        krate: args.krate,
        fields: parsed_fields,
        validate: args.validate,
    })
}

impl Parse for TableArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        TableArgs::parse_args(input)
    }
}
