//! A table read's query string: consistency, keyset page, one equality filter on an indexed field.

use super::error::ApiError;
use super::route::percent_decode;
use crate::read::{Consistency, Page, RoomQuery};
use crate::registry::TableEntry;
use crate::sync::RoomState;
use crate::value::Value;
use nanotype_schema::model::{ValueKind, MAX_SAFE_INTEGER};

/// Largest page of a listing.
pub const MAX_LIMIT: u32 = 500;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;

/// How a read must be answered, from `?consistency=` and the seq (`?seq=`, the
/// `x-nanotype-seq` header or a read token's) that `read-your-writes` needs. Unsaid, a read
/// with a seq is `read-your-writes` (a client that sends back what its write returned never
/// reads an older state), one without is `replica`.
pub fn consistency(mode: Option<&str>, seq: Option<i64>) -> Result<Consistency, ApiError> {
    match (mode, seq) {
        (None, Some(seq)) => Ok(Consistency::ReadYourWrites(seq)),
        (None, None) => Ok(Consistency::Replica),
        (Some(mode), _) => explicit_consistency(mode, seq),
    }
}

fn explicit_consistency(mode: &str, seq: Option<i64>) -> Result<Consistency, ApiError> {
    match mode {
        "replica" => Ok(Consistency::Replica),
        "strong" => Ok(Consistency::Strong),
        "read-your-writes" => seq.map(Consistency::ReadYourWrites).ok_or_else(|| {
            ApiError::bad_request(
                "`consistency=read-your-writes` needs the seq of your write (`seq=` or the x-nanotype-seq header)",
            )
        }),
        other => Err(ApiError::bad_request(format!(
            "`consistency` must be strong, replica or read-your-writes, not `{other}`"
        ))),
    }
}

/// Why the replica's copy of a room cannot answer a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateRefusal {
    /// The replica has no row for the room (never replicated here, or on another shard).
    Unknown,
    /// The room's replication has failed longer than its staleness bound.
    Stale,
    /// The replica refused a change of the room.
    Refused,
    /// The room is being rebuilt.
    Rebuilding,
    /// The room moved to another shard (this shard's copy is gone or going).
    Moved,
    /// The copy is older than the seq the read needs.
    Behind {
        /// The copy's watermark.
        watermark: i64,
        /// The seq the read needs.
        need: i64,
    },
}

impl GateRefusal {
    /// Why, in words, for `x-nanotype-fallback`.
    pub fn reason(&self, room: &str) -> String {
        match self {
            GateRefusal::Unknown => format!("the replica has not seen room {room} yet"),
            GateRefusal::Stale => format!(
                "the replication of room {room} has been failing longer than its staleness bound \
                 (see its _sync status)"
            ),
            GateRefusal::Refused => {
                format!("the replica refused a change of room {room} (see its _sync status)")
            }
            GateRefusal::Rebuilding => format!("the replica of room {room} is being rebuilt"),
            GateRefusal::Moved => format!("room {room} moved to another shard"),
            GateRefusal::Behind { watermark, need } => {
                format!("replica watermark {watermark} < seq {need}")
            }
        }
    }
}

/// Whether the replica's copy of `room` (its `_nt_rooms` state) may answer a read that needs
/// `seq >= need`.
pub fn replica_check(state: Option<&RoomState>, need: i64) -> Result<(), GateRefusal> {
    match state {
        None => Err(GateRefusal::Unknown),
        Some(s) if s.watermark == crate::sync::moves::MOVED_WATERMARK => Err(GateRefusal::Moved),
        Some(s) if s.watermark == -2 => Err(GateRefusal::Stale),
        Some(s) if s.watermark < 0 => Err(GateRefusal::Refused),
        Some(s) if s.watermark == 0 => Err(GateRefusal::Rebuilding),
        Some(s) if s.watermark < need => Err(GateRefusal::Behind {
            watermark: s.watermark,
            need,
        }),
        Some(_) => Ok(()),
    }
}

/// [`replica_check`], the refusal in words.
pub fn replica_gate(room: &str, state: Option<&RoomState>, need: i64) -> Result<(), String> {
    replica_check(state, need).map_err(|r| r.reason(room))
}

/// `GET /rooms/{room}/_sync`'s query: nothing, or `rows=1` (each table's rows counted) or
/// `rows=0`; anything else is a 400.
pub fn sync_query(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    let mut rows = false;
    for (k, v) in pairs {
        match (k.as_str(), v.as_str()) {
            ("rows", "1") => rows = true,
            ("rows", "0") => rows = false,
            ("rows", other) => {
                return Err(ApiError::bad_request(format!(
                    "`rows` must be 1 (count each table's rows) or 0, not `{other}`"
                )))
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}` (this route takes rows)"
                )))
            }
        }
    }
    Ok(rows)
}

/// A parsed table read.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadParams {
    /// How fresh the answer must be.
    pub consistency: Consistency,
    /// The keyset page (lists).
    pub page: Page,
    /// `column = value` (lists).
    pub filter: Option<(&'static str, Value)>,
}

impl ReadParams {
    /// From the query string's `pairs` (percent-decoded) and the seq header, for `table`.
    /// Filters are allowed on the leading field of each index (an index range in D1).
    pub fn parse(
        table: &'static TableEntry,
        pairs: &[(String, String)],
        seq_header: Option<&str>,
    ) -> Result<ReadParams, ApiError> {
        let mut mode = None;
        let mut seq = match seq_header {
            Some(s) => Some(non_negative("x-nanotype-seq", s)?),
            None => None,
        };
        let mut after = None;
        let mut limit = DEFAULT_LIMIT;
        let mut filter = None;
        for (k, v) in pairs {
            match k.as_str() {
                "consistency" => mode = Some(v.as_str()),
                "seq" => seq = Some(non_negative(k, v)?),
                "after" => after = Some(v.as_str()),
                "limit" => {
                    let n = non_negative(k, v)?;
                    if n < 1 || n > i64::from(MAX_LIMIT) {
                        return Err(ApiError::bad_request(format!(
                            "`limit` must be 1 to {MAX_LIMIT}"
                        )));
                    }
                    limit = n as u32;
                }
                _ => {
                    let col = filterable(table, k).ok_or_else(|| {
                        unknown_parameter(table, k, "consistency, seq, after, limit")
                    })?;
                    if filter.is_some() {
                        return Err(ApiError::bad_request("one filter per read"));
                    }
                    filter = Some((col, parse_value(k, col_kind(table, col), v)?));
                }
            }
        }
        let page = match after {
            Some(a) if table.sql().has_composite_key() => {
                Page::after(composite_after(table, a)?, limit)
            }
            Some(a) => {
                let key = table.def.primary_key().map_or(ValueKind::I64, |c| c.kind);
                Page::after(parse_value("after", key, a)?, limit)
            }
            None => Page::first(limit),
        };
        Ok(ReadParams {
            consistency: consistency(mode, seq)?,
            page,
            filter,
        })
    }

    /// The room-scoped query of a listing of `table`.
    pub fn list_query(&self, table: &TableEntry) -> Result<RoomQuery, ApiError> {
        Ok(crate::read::list_query_of(
            table.def,
            table.sql(),
            self.filter.as_ref().map(|(c, v)| (*c, v.clone())),
            &self.page,
        )?)
    }
}

/// `after=` of a table with a composite key: the key's parts as a JSON array, `[7,"ada"]` (the
/// order of the key's fields).
fn composite_after(table: &TableEntry, text: &str) -> Result<Value, ApiError> {
    let keys: Vec<&crate::schema::Column> = table
        .def
        .key_positions()
        .into_iter()
        .map(|i| &table.def.columns[i])
        .collect();
    let names: Vec<&str> = keys.iter().map(|c| c.field.as_ref()).collect();
    let bad = || {
        ApiError::bad_request(format!(
            "`after` must be the key as a JSON array: [{}]",
            names.join(", ")
        ))
    };
    let parts: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| bad())?;
    if parts.len() != keys.len() {
        return Err(bad());
    }
    let mut values = Vec::with_capacity(parts.len());
    for (col, part) in keys.iter().zip(parts) {
        values.push(match (col.kind, part) {
            (ValueKind::String, serde_json::Value::String(s)) => Value::Text(s),
            (kind, serde_json::Value::Number(n)) if kind.int_range().is_some() => {
                let (lo, hi) = kind.int_range().unwrap_or((0, 0));
                match n.as_i64().filter(|n| (lo..=hi).contains(n)) {
                    Some(n) => Value::Integer(n),
                    None => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        });
    }
    Ok(crate::key::compose(values))
}

/// The query string's pairs, percent-decoded (`+` is a space).
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((
                percent_decode(&k.replace('+', " "))?,
                percent_decode(&v.replace('+', " "))?,
            ))
        })
        .collect()
}

pub(crate) fn non_negative(k: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| (0..=MAX_SAFE_INTEGER).contains(n))
        .ok_or_else(|| ApiError::bad_request(format!("`{k}` must be a non-negative integer")))
}

/// The columns a read may filter on: those that lead an index, and the first column of a
/// composite key (its index leads with it: `/watchers?task_id=7`).
pub(crate) fn leading_columns(def: &'static nanotype_schema::Table) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    if def.has_composite_key() {
        if let Some(&first) = def.key_positions().first() {
            out.push(def.columns[first].name.as_ref());
        }
    }
    for c in def.indexes.iter().filter_map(|i| i.columns.first()) {
        if !out.contains(&c.as_ref()) {
            out.push(c.as_ref());
        }
    }
    out
}

fn filterable(table: &TableEntry, name: &str) -> Option<&'static str> {
    leading_columns(table.def).into_iter().find(|c| *c == name)
}

/// A query parameter that is neither one of `others` nor a filter: what filters there are, and for
/// a field that has no index, how to give it one.
fn unknown_parameter(table: &TableEntry, k: &str, others: &str) -> ApiError {
    let filters = leading_columns(table.def);
    let filters = if filters.is_empty() {
        "none: no field of this table has an index".to_owned()
    } else {
        filters.join(", ")
    };
    let message = match table.def.column(k) {
        Some(col) => format!(
            "`{k}` cannot filter `{}`: it has no index (a filter must be served by one). Mark \
             the field `{}` with `#[nanotype(index)]` and run `cargo run --bin gen-migrations`. \
             The fields that filter: {filters}",
            table.def.name, col.field
        ),
        None => format!(
            "unknown query parameter `{k}`; this route takes {others} and one filter on an \
             indexed field of `{}` (the fields that filter: {filters})",
            table.def.name
        ),
    };
    ApiError::bad_request(message)
}

fn col_kind(table: &TableEntry, col: &str) -> ValueKind {
    table.def.column(col).map_or(ValueKind::String, |c| c.kind)
}

/// A query-string value as a column value of `kind`.
fn parse_value(k: &str, kind: ValueKind, v: &str) -> Result<Value, ApiError> {
    let bad = |what: &str| ApiError::bad_request(format!("`{k}` must be {what}"));
    match kind {
        ValueKind::String => Ok(Value::Text(v.to_owned())),
        ValueKind::Bool => match v {
            "true" | "1" => Ok(Value::Integer(1)),
            "false" | "0" => Ok(Value::Integer(0)),
            _ => Err(bad("true or false")),
        },
        ValueKind::F32 | ValueKind::F64 => v
            .parse::<f64>()
            .ok()
            .filter(|f| !f.is_nan())
            .map(Value::Real)
            .ok_or_else(|| bad("a number")),
        k2 if k2.int_range().is_some() => {
            let (lo, hi) = k2.int_range().unwrap_or((0, 0));
            v.parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .map(Value::Integer)
                .ok_or_else(|| bad(&format!("an integer from {lo} to {hi}")))
        }
        _ => Err(bad("a filterable value")),
    }
}

/// `GET /_across/{table}?{field}=&after=&limit=`: a page across rooms ([`crate::Across`]). The
/// filters are a room listing's; `after` is the `next` of the previous page, `["room", key]`.
pub fn across(
    table: &'static TableEntry,
    pairs: &[(String, String)],
) -> Result<crate::Across, ApiError> {
    let mut q = crate::Across::all();
    let mut filtered = false;
    for (k, v) in pairs {
        match k.as_str() {
            "after" => {
                let bad = || {
                    ApiError::bad_request(
                        "`after` must be the `next` of the previous page: [\"room\", key]",
                    )
                };
                let parts: Vec<serde_json::Value> = serde_json::from_str(v).map_err(|_| bad())?;
                let [serde_json::Value::String(room), key] = parts.as_slice() else {
                    return Err(bad());
                };
                let key = if table.sql().has_composite_key() {
                    composite_after(table, &key.to_string())?
                } else {
                    let kind = table.def.primary_key().map_or(ValueKind::I64, |c| c.kind);
                    match key {
                        serde_json::Value::String(s) => parse_value("after", kind, s)?,
                        serde_json::Value::Number(n) => parse_value("after", kind, &n.to_string())?,
                        _ => return Err(bad()),
                    }
                };
                q = q.after(room, key);
            }
            "limit" => {
                let n = non_negative(k, v)?;
                let max = i64::from(crate::across::MAX_ACROSS_LIMIT);
                if !(1..=max).contains(&n) {
                    return Err(ApiError::bad_request(format!("`limit` must be 1 to {max}")));
                }
                q = q.limit(n as u32);
            }
            _ => {
                let col = filterable(table, k)
                    .ok_or_else(|| unknown_parameter(table, k, "after, limit"))?;
                if std::mem::replace(&mut filtered, true) {
                    return Err(ApiError::bad_request("one filter per read"));
                }
                q = q.filter(col, parse_value(k, col_kind(table, col), v)?);
            }
        }
    }
    Ok(q)
}
