//! [`Value`] ⇄ JavaScript, shared by the Durable Object and D1 backends.

use js_sys::{Array, ArrayBuffer, Number, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::value::{Row, Value};

/// A bound parameter. Integers go as numbers (never BigInt, which D1 rejects); the runtime has
/// already refused integers outside ±(2^53 − 1). Blobs go as `ArrayBuffer`s.
pub fn to_js(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Integer(i) => JsValue::from_f64(*i as f64),
        Value::Real(f) => JsValue::from_f64(*f),
        Value::Text(s) => JsValue::from_str(s),
        Value::Blob(b) => Uint8Array::from(b.as_slice()).buffer().into(),
    }
}

pub fn params_to_js(params: &[Value]) -> Vec<JsValue> {
    params.iter().map(to_js).collect()
}

/// A result value. An integral number within the safe range is an integer (SQLite's INTEGER and
/// a REAL holding a whole number look the same once in JavaScript; `f64` columns accept both).
pub fn from_js(v: JsValue) -> Value {
    if v.is_null() || v.is_undefined() {
        return Value::Null;
    }
    if let Some(f) = v.as_f64() {
        return if Number::is_safe_integer(&v) {
            Value::Integer(f as i64)
        } else {
            Value::Real(f)
        };
    }
    if let Some(s) = v.as_string() {
        return Value::Text(s);
    }
    if let Some(b) = v.as_bool() {
        return Value::Integer(i64::from(b));
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Value::Blob(a.to_vec());
    }
    if let Some(a) = v.dyn_ref::<ArrayBuffer>() {
        return Value::Blob(Uint8Array::new(a).to_vec());
    }
    // D1 hands blobs back as arrays of byte numbers.
    if let Some(a) = v.dyn_ref::<Array>() {
        return Value::Blob(a.iter().map(|b| b.as_f64().unwrap_or(0.0) as u8).collect());
    }
    Value::Text(String::from(
        js_sys::JSON::stringify(&v).unwrap_or_default(),
    ))
}

/// A row given as an array of column values.
pub fn row_from_array(row: JsValue) -> Row {
    let arr: Array = row.unchecked_into();
    arr.iter().map(from_js).collect()
}

/// A row given as an object keyed by column name, in column order (D1's batch results).
pub fn row_from_object(row: JsValue) -> Row {
    let obj: js_sys::Object = row.unchecked_into();
    js_sys::Object::values(&obj).iter().map(from_js).collect()
}
