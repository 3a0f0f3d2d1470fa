//! Request bodies: a table's row from JSON, with the model filling what a client may leave out.
//!
//! Fields are the struct's field names (serde's). A create may leave out an `i64` key (SQLite
//! assigns it), a field with a `default = ..` (the model's default) and an `Option` field (null);
//! anything else the struct requires is a 400 naming it (serde's own `#[serde(default)]` also
//! applies). The struct's serde decides types, so a `#[nanotype(json)]` field is checked as its
//! Rust type.

use serde_json::{Map, Value as Json};

use super::error::ApiError;
use crate::registry::{TableEntry, TypedRow};
use crate::value::Value;
use nanotype_schema::model::Literal;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// 413 when `len` is over [`MAX_BODY_BYTES`].
pub fn check_body_size(len: usize) -> Result<(), ApiError> {
    if len > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("request body is {len} bytes; the limit is {MAX_BODY_BYTES}"),
        ));
    }
    Ok(())
}

/// A route that reads a JSON body (table writes, read-only SQL) refuses a non-empty body whose
/// `content-type` is not `application/json` (parameters such as `charset` allowed): 415
/// `unsupported_media_type`. JSON sent as `text/plain` is a client bug that would otherwise be
/// accepted silently.
pub fn check_content_type(
    route: &super::Route,
    content_type: Option<&str>,
    body_len: usize,
) -> Result<(), ApiError> {
    use super::{Route, TableOp};
    let reads_json = matches!(
        route,
        Route::Table {
            op: TableOp::Create | TableOp::Put(_) | TableOp::Patch(_),
            ..
        } | Route::Sql { .. }
            | Route::Move { .. }
    );
    if !reads_json || body_len == 0 {
        return Ok(());
    }
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        other => Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!(
                "send the body as `content-type: application/json` (got {})",
                other.map_or("none".to_owned(), |c| format!("`{c}`"))
            ),
        )),
    }
}

/// The body as a JSON object: 413 when too large, 400 when empty, not JSON, or not an object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Json>, ApiError> {
    check_body_size(body.len())?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(400, "invalid_json", "expected a JSON body"));
    }
    let Strict(v) = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "invalid_json", format!("invalid JSON body: {e}")))?;
    match v {
        Json::Object(m) => Ok(m),
        _ => Err(ApiError::invalid_body("expected a JSON object")),
    }
}

fn literal(l: &Literal) -> Json {
    match l {
        Literal::Integer(i) => Json::from(*i),
        Literal::Real(f) => Json::from(*f),
        Literal::Bool(b) => Json::from(*b),
        Literal::Text(s) => Json::from(s.as_ref()),
    }
}

/// Refuse fields the struct does not have (a typo would otherwise be silently dropped).
fn check_fields(table: &TableEntry, obj: &Map<String, Json>) -> Result<(), ApiError> {
    for k in obj.keys() {
        if !table.def.columns.iter().any(|c| c.field == k.as_str()) {
            return Err(ApiError::invalid_body(format!(
                "`{}` has no field `{k}`",
                table.name()
            )));
        }
    }
    Ok(())
}

/// The model's defaults for fields the client left out.
fn fill_defaults(table: &TableEntry, obj: &mut Map<String, Json>, key_given: bool) {
    let assigns_key = table.sql().assigns_key;
    for col in table.def.columns.iter() {
        if obj.contains_key(col.field.as_ref()) {
            continue;
        }
        let v = if col.primary_key {
            if assigns_key && !key_given {
                Json::from(0)
            } else {
                continue;
            }
        } else if let Some(d) = &col.default {
            literal(d)
        } else if col.nullable {
            Json::Null
        } else {
            continue;
        };
        obj.insert(col.field.to_string(), v);
    }
}

/// The fields of the key, in key order.
fn key_fields(table: &TableEntry) -> Vec<&'static str> {
    let def: &'static nanotype_schema::Table = table.def;
    def.key_positions()
        .into_iter()
        .map(|i| def.columns[i].field.as_ref())
        .collect()
}

/// A new row from a create's body (`POST /rooms/{room}/{table}`).
pub fn create(table: &'static TableEntry, body: &[u8]) -> Result<TypedRow, ApiError> {
    let mut obj = json_object(body)?;
    check_fields(table, &obj)?;
    if let (true, [field]) = (table.sql().assigns_key, key_fields(table).as_slice()) {
        if obj.contains_key(*field) {
            return Err(ApiError::invalid_body(format!(
                "`{field}` is assigned by the database; leave it out (or PUT to /{}/{{key}})",
                table.name()
            )));
        }
    }
    fill_defaults(table, &mut obj, false);
    Ok(table.from_json(Json::Object(obj))?)
}

/// The row a `PUT /rooms/{room}/{table}/{key}` stores: the body, with the path's key.
pub fn put(table: &'static TableEntry, key: &Value, body: &[u8]) -> Result<TypedRow, ApiError> {
    let mut obj = json_object(body)?;
    check_fields(table, &obj)?;
    let parts = table.sql().key_parts(key)?;
    for (field, part) in key_fields(table).into_iter().zip(parts) {
        let part = part.to_json();
        match obj.get(field) {
            Some(k) if *k != part => {
                return Err(ApiError::invalid_body(format!(
                    "`{field}` in the body differs from the key in the path"
                )))
            }
            _ => {}
        }
        obj.insert(field.to_owned(), part);
    }
    fill_defaults(table, &mut obj, true);
    Ok(table.from_json(Json::Object(obj))?)
}

/// The row a `PATCH` stores: `current` (the stored row as JSON) with the body's fields over it.
pub fn patch(table: &'static TableEntry, current: Json, body: &[u8]) -> Result<TypedRow, ApiError> {
    let changes = json_object(body)?;
    check_fields(table, &changes)?;
    let Json::Object(mut obj) = current else {
        return Err(ApiError::internal("a stored row is not a JSON object"));
    };
    for field in key_fields(table) {
        if let Some(k) = changes.get(field) {
            if obj.get(field) != Some(k) {
                return Err(ApiError::invalid_body(format!(
                    "`{field}` cannot be changed"
                )));
            }
        }
    }
    obj.extend(changes);
    Ok(table.from_json(Json::Object(obj))?)
}

/// JSON that refuses an object with a key given twice (at any depth): serde_json keeps the last
/// value silently, so `{"title":"a","title":"b"}` would store "b" with no word said.
struct Strict(Json);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "the key `{key}` is given twice"
                )));
            }
        }
        Ok(Json::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Route;

    #[test]
    fn json_routes_take_only_json() {
        let sql = Route::Sql { room: "r".into() };
        assert!(check_content_type(&sql, Some("application/json"), 2).is_ok());
        assert!(check_content_type(&sql, Some("Application/JSON; charset=utf-8"), 2).is_ok());
        let e = check_content_type(&sql, Some("text/plain"), 2).unwrap_err();
        assert_eq!((e.status, e.code), (415, "unsupported_media_type"));
        assert_eq!(check_content_type(&sql, None, 2).unwrap_err().status, 415);
        // No body: nothing to misread (an empty body is `invalid_json` where one is needed).
        assert!(check_content_type(&sql, None, 0).is_ok());
        // Routes without a JSON body take anything.
        assert!(
            check_content_type(&Route::Resync { room: "r".into() }, Some("text/plain"), 2).is_ok()
        );
    }
}
