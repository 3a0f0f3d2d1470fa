//! The model's runtime side: a table struct's conversions and SQL ([`table`]), the schema's
//! registry of tables by name ([`registry`]), values and rows ([`value`]), keys ([`key`]).

pub mod key;
pub mod registry;
pub mod table;
pub mod value;
