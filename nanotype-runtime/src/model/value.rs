//! Values as they travel to and from SQLite, and the conversions of every supported Rust type.

use crate::error::{Error, Result};
use nanotype_schema::model::MAX_SAFE_INTEGER;

/// One SQL value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (within ±(2^53 − 1) to travel through JavaScript).
    Integer(i64),
    /// A float (never NaN).
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A result row, columns in the statement's order.
pub type Row = Vec<Value>;

/// A Rust value that can be bound as a column's value.
pub trait ToValue {
    /// The value, or an error naming `column` when it cannot be stored faithfully.
    fn to_value(&self, column: &str) -> Result<Value>;
}

/// A Rust value that can be read from a column.
pub trait FromValue: Sized {
    /// The value of `column` as `Self`, or an error naming the column.
    fn from_value(value: Value, column: &str) -> Result<Self>;
}

fn decode(column: &str, message: impl Into<String>) -> Error {
    Error::Decode {
        column: column.to_owned(),
        message: message.into(),
    }
}

/// Checks an integer against the range a JavaScript number holds exactly.
pub fn check_safe_integer(v: i64, column: &str) -> Result<i64> {
    if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v) {
        Ok(v)
    } else {
        Err(Error::IntegerOutOfRange {
            column: column.to_owned(),
            value: v.to_string(),
        })
    }
}

macro_rules! small_int {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self, _column: &str) -> Result<Value> {
                Ok(Value::Integer(i64::from(*self)))
            }
        }
        impl FromValue for $t {
            fn from_value(value: Value, column: &str) -> Result<Self> {
                match value {
                    Value::Integer(i) => <$t>::try_from(i)
                        .map_err(|_| decode(column, format!("{i} does not fit {}", stringify!($t)))),
                    // JavaScript hands integers over as numbers; accept exact whole floats.
                    Value::Real(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 => {
                        <$t>::try_from(f as i64)
                            .map_err(|_| decode(column, format!("{f} does not fit {}", stringify!($t))))
                    }
                    other => Err(decode(column, format!("expected an integer, found {other:?}"))),
                }
            }
        }
    )*};
}
small_int!(i8, i16, i32, u8, u16, u32);

impl ToValue for i64 {
    fn to_value(&self, column: &str) -> Result<Value> {
        check_safe_integer(*self, column).map(Value::Integer)
    }
}

impl FromValue for i64 {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        match value {
            Value::Integer(i) => check_safe_integer(i, column),
            Value::Real(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 => {
                Ok(f as i64)
            }
            other => Err(decode(
                column,
                format!("expected an integer, found {other:?}"),
            )),
        }
    }
}

impl ToValue for f64 {
    fn to_value(&self, column: &str) -> Result<Value> {
        if self.is_nan() {
            return Err(Error::NaN {
                column: column.to_owned(),
            });
        }
        Ok(Value::Real(*self))
    }
}

impl FromValue for f64 {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        match value {
            Value::Real(f) => Ok(f),
            Value::Integer(i) => Ok(i as f64),
            other => Err(decode(
                column,
                format!("expected a number, found {other:?}"),
            )),
        }
    }
}

impl ToValue for f32 {
    fn to_value(&self, column: &str) -> Result<Value> {
        f64::from(*self).to_value(column)
    }
}

impl FromValue for f32 {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        f64::from_value(value, column).map(|f| f as f32)
    }
}

impl ToValue for bool {
    fn to_value(&self, _column: &str) -> Result<Value> {
        Ok(Value::Integer(i64::from(*self)))
    }
}

impl FromValue for bool {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        match i64::from_value(value, column)? {
            0 => Ok(false),
            1 => Ok(true),
            i => Err(decode(
                column,
                format!("expected 0 or 1 for a bool, found {i}"),
            )),
        }
    }
}

impl ToValue for String {
    fn to_value(&self, _column: &str) -> Result<Value> {
        Ok(Value::Text(self.clone()))
    }
}

impl ToValue for str {
    fn to_value(&self, _column: &str) -> Result<Value> {
        Ok(Value::Text(self.to_owned()))
    }
}

impl FromValue for String {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        match value {
            Value::Text(s) => Ok(s),
            other => Err(decode(column, format!("expected text, found {other:?}"))),
        }
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self, _column: &str) -> Result<Value> {
        Ok(Value::Blob(self.clone()))
    }
}

impl ToValue for [u8] {
    fn to_value(&self, _column: &str) -> Result<Value> {
        Ok(Value::Blob(self.to_vec()))
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        match value {
            Value::Blob(b) => Ok(b),
            // An empty blob may come back as an empty array or text from some drivers.
            Value::Text(s) if s.is_empty() => Ok(Vec::new()),
            other => Err(decode(column, format!("expected a blob, found {other:?}"))),
        }
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self, column: &str) -> Result<Value> {
        (**self).to_value(column)
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self, column: &str) -> Result<Value> {
        match self {
            Some(v) => v.to_value(column),
            None => Ok(Value::Null),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value, column: &str) -> Result<Self> {
        match value {
            Value::Null => Ok(None),
            v => T::from_value(v, column).map(Some),
        }
    }
}

impl ToValue for Value {
    fn to_value(&self, _column: &str) -> Result<Value> {
        Ok(self.clone())
    }
}

impl FromValue for Value {
    fn from_value(value: Value, _column: &str) -> Result<Self> {
        Ok(value)
    }
}

/// `#[nanotype(json)]` columns: any serde type as JSON text.
pub mod json {
    use super::{decode, Error, Result, Value};

    /// A `#[nanotype(json)]` value as JSON text; NaN and infinities are refused.
    pub fn to_value<T: serde::Serialize + ?Sized>(v: &T, column: &str) -> Result<Value> {
        // serde_json writes NaN and ±inf as `null`: the value would come back as `None` or not at
        // all. Refuse it instead.
        if finite::has_non_finite(v) {
            return Err(Error::Json {
                column: column.to_owned(),
                message: "a float in the value is NaN or infinite, which JSON cannot hold (it would be stored as null)".into(),
            });
        }
        serde_json::to_string(v)
            .map(Value::Text)
            .map_err(|e| Error::Json {
                column: column.to_owned(),
                message: e.to_string(),
            })
    }

    /// A `#[nanotype(json)]` value from its JSON text.
    pub fn from_value<T: serde::de::DeserializeOwned>(v: Value, column: &str) -> Result<T> {
        match v {
            Value::Text(s) => serde_json::from_str(&s).map_err(|e| Error::Json {
                column: column.to_owned(),
                message: e.to_string(),
            }),
            other => Err(decode(
                column,
                format!("expected JSON text, found {other:?}"),
            )),
        }
    }

    /// A serializer that only looks for NaN and infinite floats.
    mod finite {
        use serde::ser::{self, Serialize};

        #[derive(Debug)]
        pub struct Found;
        impl std::fmt::Display for Found {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("non-finite float")
            }
        }
        impl std::error::Error for Found {}
        impl ser::Error for Found {
            fn custom<T: std::fmt::Display>(_: T) -> Found {
                Found
            }
        }

        /// Whether `v` serializes any NaN or infinite float. A value whose own `Serialize`
        /// fails is left for serde_json to report.
        pub fn has_non_finite<T: Serialize + ?Sized>(v: &T) -> bool {
            let mut probe = Probe { found: false };
            let _ = v.serialize(&mut probe);
            probe.found
        }

        pub struct Probe {
            found: bool,
        }

        impl Probe {
            fn float(&mut self, f: f64) -> Result<(), Found> {
                if f.is_finite() {
                    Ok(())
                } else {
                    self.found = true;
                    Err(Found)
                }
            }
        }

        macro_rules! ok {
            ($($name:ident: $t:ty),*) => {$(
                fn $name(self, _: $t) -> Result<(), Found> { Ok(()) }
            )*};
        }

        impl ser::Serializer for &mut Probe {
            type Ok = ();
            type Error = Found;
            type SerializeSeq = Self;
            type SerializeTuple = Self;
            type SerializeTupleStruct = Self;
            type SerializeTupleVariant = Self;
            type SerializeMap = Self;
            type SerializeStruct = Self;
            type SerializeStructVariant = Self;

            ok!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
                serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
                serialize_u32: u32, serialize_u64: u64, serialize_u128: u128,
                serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
                serialize_unit_struct: &'static str);

            fn serialize_f32(self, v: f32) -> Result<(), Found> {
                self.float(f64::from(v))
            }
            fn serialize_f64(self, v: f64) -> Result<(), Found> {
                self.float(v)
            }
            fn serialize_none(self) -> Result<(), Found> {
                Ok(())
            }
            fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Found> {
                v.serialize(self)
            }
            fn serialize_unit(self) -> Result<(), Found> {
                Ok(())
            }
            fn serialize_unit_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
            ) -> Result<(), Found> {
                Ok(())
            }
            fn serialize_newtype_struct<T: Serialize + ?Sized>(
                self,
                _: &'static str,
                v: &T,
            ) -> Result<(), Found> {
                v.serialize(self)
            }
            fn serialize_newtype_variant<T: Serialize + ?Sized>(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                v: &T,
            ) -> Result<(), Found> {
                v.serialize(self)
            }
            fn serialize_seq(self, _: Option<usize>) -> Result<Self, Found> {
                Ok(self)
            }
            fn serialize_tuple(self, _: usize) -> Result<Self, Found> {
                Ok(self)
            }
            fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Found> {
                Ok(self)
            }
            fn serialize_tuple_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self, Found> {
                Ok(self)
            }
            fn serialize_map(self, _: Option<usize>) -> Result<Self, Found> {
                Ok(self)
            }
            fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Found> {
                Ok(self)
            }
            fn serialize_struct_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self, Found> {
                Ok(self)
            }
        }

        macro_rules! compound {
            ($($tr:ident :: $m:ident),*) => {$(
                impl<'a> ser::$tr for &'a mut Probe {
                    type Ok = ();
                    type Error = Found;
                    fn $m<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Found> {
                        v.serialize(&mut **self)
                    }
                    fn end(self) -> Result<(), Found> {
                        Ok(())
                    }
                }
            )*};
        }
        compound!(
            SerializeSeq::serialize_element,
            SerializeTuple::serialize_element,
            SerializeTupleStruct::serialize_field,
            SerializeTupleVariant::serialize_field
        );

        impl ser::SerializeMap for &mut Probe {
            type Ok = ();
            type Error = Found;
            fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Found> {
                k.serialize(&mut **self)
            }
            fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Found> {
                v.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Found> {
                Ok(())
            }
        }

        macro_rules! fields {
            ($($tr:ident),*) => {$(
                impl<'a> ser::$tr for &'a mut Probe {
                    type Ok = ();
                    type Error = Found;
                    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Result<(), Found> {
                        v.serialize(&mut **self)
                    }
                    fn end(self) -> Result<(), Found> {
                        Ok(())
                    }
                }
            )*};
        }
        fields!(SerializeStruct, SerializeStructVariant);
    }

    /// An optional `#[nanotype(json)]` value: `None` is NULL.
    pub fn opt_to_value<T: serde::Serialize>(v: &Option<T>, column: &str) -> Result<Value> {
        match v {
            Some(v) => to_value(v, column),
            None => Ok(Value::Null),
        }
    }

    /// An optional `#[nanotype(json)]` value: NULL is `None`.
    pub fn opt_from_value<T: serde::de::DeserializeOwned>(
        v: Value,
        column: &str,
    ) -> Result<Option<T>> {
        match v {
            Value::Null => Ok(None),
            v => from_value(v, column).map(Some),
        }
    }
}

impl Value {
    /// The value as an integer: an integer, or a real with no fraction (what a JavaScript number
    /// read back from D1 or a Durable Object may be); `None` otherwise.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    /// The value as JSON (blobs as arrays of bytes): for logs, health output and HTTP APIs.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => (*i).into(),
            Value::Real(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Text(s) => s.clone().into(),
            Value::Blob(b) => b.clone().into(),
        }
    }
}
