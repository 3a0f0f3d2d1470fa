//! The API's description, OpenAPI 3.1, made from the schema: served at
//! `GET /_nanotype/openapi.json` (behind the policy: any credentials it accepts), for generated
//! clients (`npx openapi-typescript`), API explorers and fuzzers (the test suite drives
//! Schemathesis with it).
//!
//! It describes every table route (bodies with the model's types, ranges, defaults and which
//! fields a create needs; the read parameters, consistency and filters; the error format with its
//! codes; the headers that carry a write's seq and read token), links from a create to the row's
//! get, patch and delete, the reads across rooms (`/_across/{table}`) and the runtime's room
//! routes. It cannot see what only the app's code decides: validation (a write the model allows
//! may still be a 400 `rejected`), custom routes (built by the room's hooks in its Durable Object,
//! which the Worker that serves this document does not hold),
//! whether read-only SQL and the feed are on (a 404 when off; the feed is a WebSocket, outside
//! OpenAPI), and the Rust type inside a `#[nanotype(json)]` field (any JSON here). A field a body
//! may leave out is one with an assigned key, a `default`, an `Option` or serde's
//! `#[serde(default)]`.
//!
//! ```
//! #[nanotype::table(name = "notes")]
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! pub struct Note {
//!     #[nanotype(primary_key)]
//!     pub id: i64,
//!     pub text: String,
//! }
//! nanotype::schema!(pub App = [Note]);
//!
//! use nanotype::Schema;
//! let doc = nanotype::api::openapi::document(App::TABLES, &["DB".to_owned()]);
//! assert_eq!(doc["openapi"], "3.1.0");
//! assert!(doc["paths"]["/rooms/{room}/notes/{id}"]["patch"].is_object());
//! assert!(doc["paths"]["/_across/notes"]["get"].is_object());
//! // The key is assigned by the room, so a create does not send it.
//! assert_eq!(doc["components"]["schemas"]["NoteCreate"]["required"], serde_json::json!(["text"]));
//! ```

use serde_json::{json, Map, Value as Json};

use super::error::CODES;
use crate::registry::TableEntry;
use nanotype_schema::model::{Column, Literal, ValueKind};

/// The OpenAPI 3.1 document of an app with these tables and D1 shards (the bindings a room may
/// move to).
pub fn document(tables: &'static [TableEntry], shards: &[String]) -> Json {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert(
        "Source".into(),
        json!({ "type": "string", "enum": ["primary", "replica"], "description": "Who answered: the room's Durable Object or the D1 replica." }),
    );
    paths.insert("/health".into(), health());
    for t in tables {
        table_paths(t, &mut paths, &mut schemas);
    }
    room_routes(&mut paths, shards);
    paths.insert("/_rooms".into(), rooms_list());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "nanotype API",
            "version": crate::registry::fingerprint(tables, &[]),
            "description": "Made by nanotype from the app's tables: a REST route per table in each \
                room, reads from the D1 replica with the room's Durable Object as fallback, writes \
                in the room. Every error is `{\"error\": {\"code\", \"message\"}}`. A write's answer \
                carries `x-nanotype-seq` and `x-nanotype-token`; a read that sends either back never \
                sees an older state. Not described here: the app's custom routes, its validation \
                (a 400 `rejected`), and the feed (a WebSocket at `/rooms/{room}/_feed`).",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "What the app's policy accepts: a token of its secret, or a JWT.",
                },
            },
            "schemas": schemas,
            "parameters": parameters(),
            "headers": headers(),
            "responses": responses(),
        },
    })
}

// ------------------------------------------------------------------------------------- tables

fn table_paths(
    t: &'static TableEntry,
    paths: &mut Map<String, Json>,
    schemas: &mut Map<String, Json>,
) {
    let def = t.def;
    let rust = def.rust_name.as_ref();
    let name = def.name.as_ref();
    let keys: Vec<&Column> = def
        .key_positions()
        .into_iter()
        .map(|i| &def.columns[i])
        .collect();
    let assigns_key = t.sql().assigns_key;

    schemas.insert(rust.into(), row_schema(t));
    schemas.insert(format!("{rust}Create"), body_schema(t, Body::Create));
    schemas.insert(format!("{rust}Put"), body_schema(t, Body::Put));
    schemas.insert(format!("{rust}Patch"), body_schema(t, Body::Patch));

    let row_ref = json!({ "$ref": format!("#/components/schemas/{rust}") });
    let written = |status: &str, what: &str| {
        json!({
            status: {
                "description": what,
                "headers": write_headers(),
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "required": ["row", "seq"],
                    "properties": { "row": row_ref, "seq": { "type": "integer", "minimum": 1 } },
                }}},
            }
        })
    };
    let key_path: String = keys.iter().map(|c| format!("/{{{}}}", c.field)).collect();
    let key_params: Vec<Json> = keys
        .iter()
        .map(|c| {
            json!({
                "name": c.field.as_ref(),
                "in": "path",
                "required": true,
                "description": format!("The row's key, field `{}`.", c.field),
                "schema": key_schema(c.kind),
            })
        })
        .collect();
    let mut row_params = vec![json!({ "$ref": "#/components/parameters/Room" })];
    row_params.extend(key_params);
    let op_id = |verb: &str| format!("{verb}{rust}");

    // From a create to the row's other routes: the key from the answer's row.
    let links = object(["get", "patch", "delete"].iter().map(|verb| {
        let mut params = Map::new();
        params.insert("room".into(), json!("$request.path.room"));
        for c in &keys {
            params.insert(
                c.field.to_string(),
                json!(format!("$response.body#/row/{}", c.field)),
            );
        }
        (
            format!("{verb}{rust}"),
            json!({ "operationId": op_id(verb), "parameters": params }),
        )
    }));
    let mut created = written(
        "201",
        "Created: the stored row (defaults and validation applied) and the room's seq after it.",
    );
    created["201"]["links"] = Json::Object(links);

    let mut list_params = vec![
        json!({ "$ref": "#/components/parameters/Room" }),
        json!({ "$ref": "#/components/parameters/Consistency" }),
        json!({ "$ref": "#/components/parameters/Seq" }),
        json!({ "$ref": "#/components/parameters/SeqHeader" }),
        json!({ "$ref": "#/components/parameters/TokenHeader" }),
        json!({ "$ref": "#/components/parameters/Limit" }),
        json!({
            "name": "after",
            "in": "query",
            "description": if keys.len() > 1 {
                format!("The last key of the previous page, as a JSON array of its fields ({}).",
                    keys.iter().map(|c| c.field.as_ref()).collect::<Vec<_>>().join(", "))
            } else {
                "The last key of the previous page: the page starts after it.".to_owned()
            },
            "schema": if keys.len() > 1 { json!({ "type": "string" }) } else { keys.first().map_or(json!({}), |c| key_schema(c.kind)) },
        }),
    ];
    for col in super::params::leading_columns(def) {
        let Some(c) = def.column(col) else { continue };
        list_params.push(json!({
            "name": col,
            "in": "query",
            "description": format!("Only rows whose `{col}` equals this (one filter per read, on an indexed field)."),
            "schema": filter_schema(c.kind),
        }));
    }

    let mut collection = Map::new();
    collection.insert(
        "get".into(),
        json!({
            "operationId": op_id("list"),
            "summary": format!("A keyset page of `{name}`, in key order."),
            "parameters": list_params,
            "responses": merge(vec![
                json!({ "200": {
                    "description": "A page of rows; `source` says whether D1 or the room answered.",
                    "headers": read_headers(),
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["rows", "source"],
                        "properties": {
                            "rows": { "type": "array", "items": row_ref },
                            "source": { "$ref": "#/components/schemas/Source" },
                            "seq": { "type": "integer", "minimum": 0 },
                            "fallback": { "type": ["string", "null"] },
                        },
                    }}},
                }}),
                errors(&["400", "401", "403", "503"]),
            ]),
        }),
    );
    collection.insert(
        "post".into(),
        json!({
            "operationId": op_id("create"),
            "summary": format!("Create a `{name}` row{}.", if assigns_key { " (the room assigns its key)" } else { "" }),
            "parameters": [
                { "$ref": "#/components/parameters/Room" },
                { "$ref": "#/components/parameters/IdempotencyKey" },
            ],
            "requestBody": body_ref(&format!("{rust}Create")),
            "responses": merge(vec![created, errors(&["400", "401", "403", "409", "413", "415", "422", "503", "507"])]),
        }),
    );
    paths.insert(format!("/rooms/{{room}}/{name}"), Json::Object(collection));

    let mut item = Map::new();
    let mut get_params = row_params.clone();
    get_params.extend([
        json!({ "$ref": "#/components/parameters/Consistency" }),
        json!({ "$ref": "#/components/parameters/Seq" }),
        json!({ "$ref": "#/components/parameters/SeqHeader" }),
        json!({ "$ref": "#/components/parameters/TokenHeader" }),
    ]);
    item.insert(
        "get".into(),
        json!({
            "operationId": op_id("get"),
            "summary": format!("One `{name}` row by its key."),
            "parameters": get_params,
            "responses": merge(vec![
                json!({ "200": {
                    "description": "The row.",
                    "headers": read_headers(),
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["row", "source"],
                        "properties": {
                            "row": row_ref,
                            "source": { "$ref": "#/components/schemas/Source" },
                            "fallback": { "type": ["string", "null"] },
                        },
                    }}},
                }}),
                errors(&["400", "401", "403", "404", "503"]),
            ]),
        }),
    );
    let mut write_params = row_params.clone();
    write_params.push(json!({ "$ref": "#/components/parameters/IdempotencyKey" }));
    item.insert(
        "put".into(),
        json!({
            "operationId": op_id("put"),
            "summary": format!("Create or replace the `{name}` row with this key."),
            "parameters": write_params,
            "requestBody": body_ref(&format!("{rust}Put")),
            "responses": merge(vec![written("200", "The stored row and the room's seq after it."), errors(&["400", "401", "403", "409", "413", "415", "422", "503"])]),
        }),
    );
    item.insert(
        "patch".into(),
        json!({
            "operationId": op_id("patch"),
            "summary": format!("Change the given fields of the `{name}` row with this key."),
            "parameters": write_params,
            "requestBody": body_ref(&format!("{rust}Patch")),
            "responses": merge(vec![written("200", "The stored row and the room's seq after it."), errors(&["400", "401", "403", "404", "409", "413", "415", "422", "503"])]),
        }),
    );
    item.insert(
        "delete".into(),
        json!({
            "operationId": op_id("delete"),
            "summary": format!("Delete the `{name}` row with this key (and what cascades from it)."),
            "parameters": write_params,
            "responses": merge(vec![
                json!({ "200": {
                    "description": "Deleted: its key and the room's seq after it.",
                    "headers": write_headers(),
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["deleted", "seq"],
                        "properties": { "deleted": {}, "seq": { "type": "integer", "minimum": 1 } },
                    }}},
                }}),
                errors(&["400", "401", "403", "404", "409", "422", "503"]),
            ]),
        }),
    );
    paths.insert(
        format!("/rooms/{{room}}/{name}{key_path}"),
        Json::Object(item),
    );
    paths.insert(format!("/_across/{name}"), across(t, &row_ref));
}

/// `GET /_across/{table}`: a page of the table's rows across the rooms the caller may see, from
/// D1 only.
fn across(t: &'static TableEntry, row_ref: &Json) -> Json {
    let def = t.def;
    let name = def.name.as_ref();
    let mut params = vec![
        json!({
            "name": "after",
            "in": "query",
            "description": "The `next` of the previous page: a JSON array of the last row's room and key, `[\"room\", key]`.",
            "schema": { "type": "string" },
        }),
        json!({
            "name": "limit",
            "in": "query",
            "description": "Rows per page.",
            "schema": { "type": "integer", "minimum": 1, "maximum": crate::across::MAX_ACROSS_LIMIT, "default": crate::Across::all().page_size() },
        }),
    ];
    for col in super::params::leading_columns(def) {
        let Some(c) = def.column(col) else { continue };
        params.push(json!({
            "name": col,
            "in": "query",
            "description": format!("Only rows whose `{col}` equals this (one filter per read, on an indexed field)."),
            "schema": filter_schema(c.kind),
        }));
    }
    json!({ "get": {
        "operationId": format!("across{}", def.rust_name),
        "summary": format!("A page of `{name}` rows across the rooms the caller may see, in room and key order (D1 only; a policy that decides room by room is a 403)."),
        "parameters": params,
        "responses": merge(vec![
            json!({ "200": {
                "description": "The rows, each with its room, and the next page's cursor.",
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "required": ["rows", "next", "source"],
                    "properties": {
                        "rows": { "type": "array", "items": {
                            "type": "object",
                            "required": ["room", "row"],
                            "properties": { "room": { "type": "string" }, "row": row_ref },
                        }},
                        "next": { "type": ["string", "null"] },
                        "source": { "const": "replica" },
                    },
                }}},
            }}),
            errors(&["400", "401", "403", "503"]),
        ]),
    }})
}

#[derive(Clone, Copy, PartialEq)]
enum Body {
    Create,
    Put,
    Patch,
}

/// A row as the API sends it: every field, as the struct's serde writes it.
fn row_schema(t: &TableEntry) -> Json {
    let props = object(
        t.def
            .columns
            .iter()
            .map(|c| (c.field.to_string(), column_schema(c, false))),
    );
    let required: Vec<&str> = t.def.columns.iter().map(|c| c.field.as_ref()).collect();
    json!({
        "type": "object",
        "description": format!("A row of table `{}` (struct `{}`).", t.def.name, t.def.rust_name),
        "required": required,
        "properties": props,
    })
}

/// What a write sends: a create leaves out an assigned key, and may leave out a field with a
/// default or an `Option`; a put takes the key from the path; a patch sends only what changes.
fn body_schema(t: &TableEntry, body: Body) -> Json {
    let assigns_key = t.sql().assigns_key;
    let mut props = Map::new();
    let mut required = Vec::new();
    for c in t.def.columns.iter() {
        if body == Body::Create && c.primary_key && assigns_key {
            continue;
        }
        props.insert(c.field.to_string(), column_schema(c, true));
        let optional = c.nullable
            || c.default.is_some()
            || c.serde_default
            || (c.primary_key && body == Body::Put)
            || body == Body::Patch;
        if !optional {
            required.push(c.field.as_ref());
        }
    }
    let what = match body {
        Body::Create => "A new row. Fields with a default or an `Option` may be left out.",
        Body::Put => "The whole row; the key comes from the path (a key field sent must equal it).",
        Body::Patch => "The fields to change; the key cannot change.",
    };
    json!({
        "type": "object",
        "description": what,
        "required": required,
        "properties": props,
        "additionalProperties": false,
    })
}

/// One field's JSON Schema: its kind's type and range, `null` for an `Option`, the model's default.
fn column_schema(c: &Column, with_default: bool) -> Json {
    let mut s = kind_schema(c.kind);
    if c.nullable {
        if let Some(ty) = s.get("type").cloned() {
            s["type"] = json!([ty, "null"]);
        }
    }
    if let (true, Some(d)) = (with_default, &c.default) {
        s["default"] = match d {
            Literal::Integer(i) => json!(i),
            Literal::Real(f) => json!(f),
            Literal::Bool(b) => json!(b),
            Literal::Text(t) => json!(t.as_ref()),
        };
    }
    let mut description = format!(
        "Column `{}`: `{}`{}.",
        c.name,
        if c.nullable {
            format!("Option<{}>", c.kind.rust_name())
        } else {
            c.kind.rust_name().to_owned()
        },
        if c.primary_key { ", the key" } else { "" }
    );
    if let Some(r) = &c.references {
        description.push_str(&format!(
            " References `{}.{}` ({}).",
            r.table,
            r.column,
            r.on_delete.keyword()
        ));
    }
    s["description"] = json!(description);
    s
}

fn kind_schema(kind: ValueKind) -> Json {
    match kind {
        ValueKind::Bool => json!({ "type": "boolean" }),
        ValueKind::String => json!({ "type": "string" }),
        ValueKind::F32 | ValueKind::F64 => json!({ "type": "number" }),
        ValueKind::Bytes => {
            json!({ "type": "array", "items": { "type": "integer", "minimum": 0, "maximum": 255 } })
        }
        // The struct's own type, which the model does not know: any JSON.
        ValueKind::Json => json!({}),
        int => {
            let (lo, hi) = int.int_range().unwrap_or((i64::MIN, i64::MAX));
            json!({ "type": "integer", "minimum": lo, "maximum": hi })
        }
    }
}

/// A key in the path: text of 1 to 512 bytes, or an integer of its kind's range.
fn key_schema(kind: ValueKind) -> Json {
    match kind {
        ValueKind::String => json!({ "type": "string", "minLength": 1, "maxLength": 512 }),
        k => kind_schema(k),
    }
}

/// A filter's value in the query string.
fn filter_schema(kind: ValueKind) -> Json {
    match kind {
        ValueKind::Json | ValueKind::Bytes => json!({ "type": "string" }),
        k => kind_schema(k),
    }
}

fn body_ref(schema: &str) -> Json {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
    })
}

// ------------------------------------------------------------------------- the runtime's routes

fn health() -> Json {
    json!({ "get": {
        "operationId": "health",
        "summary": "Liveness: no data, no policy.",
        "security": [],
        "responses": { "200": {
            "description": "Up.",
            "content": { "application/json": { "schema": {
                "type": "object", "required": ["ok"], "properties": { "ok": { "const": true } },
            }}},
        }},
    }})
}

fn room_routes(paths: &mut Map<String, Json>, shards: &[String]) {
    let room = json!([{ "$ref": "#/components/parameters/Room" }]);
    let started = |what: &str| {
        json!({ "202": {
            "description": format!("The {what} is started; the room's `_sync` status follows it."),
            "content": { "application/json": { "schema": {
                "type": "object", "required": ["room", what], "properties": { "room": { "type": "string" }, what: { "const": "started" } },
            }}},
        }})
    };
    paths.insert(
        "/rooms/{room}/_sync".into(),
        json!({ "get": {
            "operationId": "syncStatus",
            "summary": "The room's replication health (lag, outbox, last error, resync and move).",
            "parameters": [
                { "$ref": "#/components/parameters/Room" },
                { "name": "rows", "in": "query", "description": "`1`: also each table's rows in the room and in D1 (reads every row).", "schema": { "type": "string", "enum": ["0", "1"] } },
            ],
            "responses": merge(vec![
                json!({ "200": {
                    "description": "The room's health.",
                    "content": { "application/json": { "schema": {
                        "type": "object", "required": ["room", "health"],
                        "properties": { "room": { "type": "string" }, "health": { "type": "object" } },
                    }}},
                }}),
                errors(&["400", "401", "403", "404", "503"]),
            ]),
        }}),
    );
    paths.insert(
        "/rooms/{room}/_resync".into(),
        json!({ "post": {
            "operationId": "resync",
            "summary": "Rebuild the room's D1 copy from the room.",
            "parameters": room,
            "responses": merge(vec![started("resync"), errors(&["400", "401", "403", "404", "503"])]),
        }}),
    );
    paths.insert(
        "/rooms/{room}/_audit".into(),
        json!({ "post": {
            "operationId": "audit",
            "summary": "Compare the room's D1 copy with the room now, and repair it.",
            "parameters": room,
            "responses": merge(vec![started("audit"), errors(&["400", "401", "403", "404", "503"])]),
        }}),
    );
    paths.insert(
        "/rooms/{room}/_move".into(),
        json!({ "post": {
            "operationId": "moveRoom",
            "summary": "Move the room's D1 copy to another shard (a binding of `NANOTYPE_D1_SHARDS`).",
            "parameters": room,
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": ["to"], "additionalProperties": false,
                "properties": { "to": { "type": "string", "enum": shards, "description": "The shard's binding." } },
            }}}},
            "responses": merge(vec![
                json!({
                    "200": { "description": "Already there: nothing to move.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "202": { "description": "The move is started; `_sync` shows its phase.", "content": { "application/json": { "schema": { "type": "object" } } } },
                }),
                errors(&["400", "401", "403", "404", "409", "413", "415", "503"]),
            ]),
        }}),
    );
    paths.insert(
        "/rooms/{room}/_sql".into(),
        json!({ "post": {
            "operationId": "readOnlySql",
            "summary": "One read-only SQL statement in the room (a 404 unless the app turns it on).",
            "parameters": room,
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": ["sql"],
                "properties": {
                    "sql": { "type": "string", "minLength": 1 },
                    "params": { "type": "array" },
                    "maxRows": { "type": "integer", "minimum": 1, "maximum": super::room::MAX_SQL_ROWS },
                },
            }}}},
            "responses": merge(vec![
                json!({ "200": { "description": "The statement's rows.", "content": { "application/json": { "schema": { "type": "object" } } } } }),
                errors(&["400", "401", "403", "404", "413", "415", "503"]),
            ]),
        }}),
    );
}

fn rooms_list() -> Json {
    json!({ "get": {
        "operationId": "listRooms",
        "summary": "A page of the rooms D1 knows that the caller may see, in name order.",
        "parameters": [
            { "name": "after", "in": "query", "description": "The last room of the previous page.", "schema": { "type": "string" } },
            { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": super::rooms::MAX_LIMIT } },
        ],
        "responses": merge(vec![
            json!({ "200": {
                "description": "The rooms, with their replication state, and the next page's cursor.",
                "content": { "application/json": { "schema": {
                    "type": "object", "required": ["rooms"],
                    "properties": {
                        "rooms": { "type": "array", "items": { "type": "object", "required": ["room"], "properties": { "room": { "type": "string" } } } },
                        "next": { "type": ["string", "null"] },
                    },
                }}},
            }}),
            errors(&["400", "401", "403", "503"]),
        ]),
    }})
}

// ---------------------------------------------------------------------------- shared components

fn error_schema() -> Json {
    let codes: Vec<&str> = CODES.iter().map(|(c, _)| *c).collect();
    json!({
        "type": "object",
        "description": "Every error: a stable code and a message for people.",
        "required": ["error"],
        "properties": { "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "string", "enum": codes },
                "message": { "type": "string" },
            },
        }},
    })
}

/// The error responses, one per status, each listing its codes.
fn responses() -> Json {
    let mut out = Map::new();
    for (code, status) in CODES {
        let entry = out.entry(status.to_string()).or_insert_with(|| {
            json!({
                "description": "",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
            })
        });
        let d = entry["description"].as_str().unwrap_or_default();
        entry["description"] = json!(if d.is_empty() {
            format!("`{code}`")
        } else {
            format!("{d}, `{code}`")
        });
    }
    if let Some(r) = out.get_mut("405") {
        r["headers"] = json!({ "Allow": { "description": "The methods the route takes.", "schema": { "type": "string" } } });
    }
    Json::Object(out)
}

/// The listed statuses as references to the shared error responses.
fn errors(statuses: &[&str]) -> Json {
    Json::Object(object(statuses.iter().map(|s| {
        (
            s.to_string(),
            json!({ "$ref": format!("#/components/responses/{s}") }),
        )
    })))
}

/// An object of `pairs`, inserted one by one: collecting into a [`Map`] sorts the pairs first,
/// and that sort is several KiB of wasm for every iterator it is collected from.
fn object(pairs: impl Iterator<Item = (String, Json)>) -> Map<String, Json> {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k, v);
    }
    m
}

fn merge(parts: Vec<Json>) -> Json {
    let mut out = Map::new();
    for p in parts {
        if let Json::Object(m) = p {
            out.extend(m);
        }
    }
    Json::Object(out)
}

/// What every write's answer carries: the room's seq after it and a read token.
fn write_headers() -> Json {
    json!({
        "x-nanotype-seq": { "$ref": "#/components/headers/Seq" },
        "x-nanotype-token": { "$ref": "#/components/headers/Token" },
    })
}

fn read_headers() -> Json {
    json!({
        "x-nanotype-token": { "$ref": "#/components/headers/Token" },
        "x-nanotype-fallback": {
            "description": "Why the room answered a read meant for the replica.",
            "schema": { "type": "string" },
        },
    })
}

fn headers() -> Json {
    json!({
        "Seq": {
            "description": "The room's seq after the write: send it back (`seq=` or this header) to read your writes.",
            "schema": { "type": "string", "pattern": "^[0-9]+$" },
        },
        "Token": {
            "description": "A read token (`seq:shard:bookmark`): send it back as this header and a read never sees an older state.",
            "schema": { "type": "string", "pattern": "^[0-9]{1,16}:[!-9;-~]{0,64}:[!-~]{0,256}$" },
        },
    })
}

fn parameters() -> Json {
    json!({
        "Room": {
            "name": "room", "in": "path", "required": true,
            "description": "The room (tenant): its Durable Object's name and its rows' `room_id` in D1.",
            "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" },
        },
        "Consistency": {
            "name": "consistency", "in": "query",
            "description": "`replica` (D1, the default), `strong` (the room), or `read-your-writes` (D1 once it has `seq`, else the room). With a seq and no consistency, `read-your-writes`.",
            "schema": { "type": "string", "enum": ["replica", "strong", "read-your-writes"] },
        },
        "Seq": {
            "name": "seq", "in": "query",
            "description": "The seq a write answered: the read sees at least that state.",
            "schema": { "type": "integer", "minimum": 0, "maximum": nanotype_schema::model::MAX_SAFE_INTEGER },
        },
        "SeqHeader": {
            "name": "x-nanotype-seq", "in": "header",
            "description": "As `seq=`.",
            "schema": { "type": "string", "pattern": "^[0-9]{1,15}$" },
        },
        "TokenHeader": {
            "name": "x-nanotype-token", "in": "header",
            "description": "The read token a write or read answered (`seq:shard:bookmark`).",
            "schema": { "type": "string", "pattern": "^[0-9]{1,15}(:[!-9;-~]{0,64}(:[!-~]{0,256})?)?$" },
        },
        "Limit": {
            "name": "limit", "in": "query",
            "description": "Rows per page.",
            "schema": { "type": "integer", "minimum": 1, "maximum": super::params::MAX_LIMIT, "default": super::params::DEFAULT_LIMIT },
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header",
            "description": "A retry with the same key answers what the first attempt answered and writes nothing (kept a day).",
            "schema": { "type": "string", "pattern": "^[!-~]{1,128}$" },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::error::CODES;

    /// The module's table of codes and [`CODES`] list the same codes with the same statuses.
    #[test]
    fn codes_match_the_documented_table() {
        let doc = include_str!("error.rs");
        let table: Vec<(String, u16)> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `"))
            .filter_map(|l| {
                let (code, rest) = l.split_once("` | ")?;
                let status = rest.split(' ').next()?.parse().ok()?;
                Some((code.to_owned(), status))
            })
            .collect();
        let listed: Vec<(String, u16)> = CODES.iter().map(|(c, s)| ((*c).to_owned(), *s)).collect();
        assert_eq!(table, listed);
    }
}
