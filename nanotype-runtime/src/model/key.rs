//! A row's key as one [`Value`], and the SQL that finds rows by it.
//!
//! A one-column key is its column's value. A composite key (several `#[nanotype(primary_key)]`
//! fields) is its columns' values, in field order, as the text of a JSON array: `[7,"ada"]`, what
//! [`compose`] makes and what SQLite's `json_array` records in the capture triggers. Keys are
//! compared by their parts, never by that text, so the two spellings of a string
//! never have to agree byte for byte.
//!
//! Rows are found by their columns, never by the composed text: `"a" = ?1 AND "b" = ?2`, and for
//! several keys an `OR` of such terms, which SQLite answers with one probe of the key's index
//! per key (a row-value `IN (VALUES …)` would scan the table).

use crate::error::{Error, Result};
use crate::value::Value;
use nanotype_schema::ident::quote;
use nanotype_schema::Table as TableDef;

/// The composite key of `parts` (the key columns' values in field order).
pub fn compose(parts: Vec<Value>) -> Value {
    Value::Text(serde_json::Value::Array(parts.iter().map(Value::to_json).collect()).to_string())
}

/// A key as a map key (`Value` holds floats, so it is not `Hash`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum KeyRepr {
    Int(i64),
    Text(String),
    Other(String),
    Parts(Vec<KeyRepr>),
}

impl KeyRepr {
    /// The representation of one column's value.
    pub(crate) fn of(v: &Value) -> KeyRepr {
        match v {
            Value::Integer(i) => KeyRepr::Int(*i),
            Value::Real(f) if f.fract() == 0.0 => KeyRepr::Int(*f as i64),
            Value::Text(s) => KeyRepr::Text(s.clone()),
            other => KeyRepr::Other(format!("{other:?}")),
        }
    }
}

/// The key columns of a table, and the SQL over them.
#[derive(Clone, Debug)]
pub(crate) struct KeyColumns {
    /// Positions in the model's columns, in key order.
    pub positions: Vec<usize>,
    /// Quoted names, in key order.
    pub names: Vec<String>,
}

impl KeyColumns {
    pub fn of(def: &TableDef) -> KeyColumns {
        let mut positions = def.key_positions();
        if positions.is_empty() {
            positions.push(0);
        }
        let names = positions
            .iter()
            .map(|&i| quote(&def.columns[i].name))
            .collect();
        KeyColumns { positions, names }
    }

    pub fn is_composite(&self) -> bool {
        self.positions.len() > 1
    }

    /// How many parameters one key binds.
    pub fn arity(&self) -> usize {
        self.positions.len()
    }

    /// The key's column values, in key order.
    pub fn parts(&self, key: &Value) -> Result<Vec<Value>> {
        if !self.is_composite() {
            return Ok(vec![key.clone()]);
        }
        let bad = |why: &str| Error::Decode {
            column: self.names.join(", "),
            message: format!("a composite key {why}"),
        };
        let Value::Text(text) = key else {
            return Err(bad("is the JSON array of its parts"));
        };
        let parsed: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|_| bad("is the JSON array of its parts"))?;
        if parsed.len() != self.arity() {
            return Err(bad(&format!("has {} parts", self.arity())));
        }
        parsed
            .into_iter()
            .map(|p| match p {
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .map(Value::Integer)
                    .ok_or_else(|| bad("has integer or text parts")),
                serde_json::Value::String(s) => Ok(Value::Text(s)),
                _ => Err(bad("has integer or text parts")),
            })
            .collect()
    }

    /// All the parts of `keys`, in order: the parameters of [`KeyColumns::any_sql`].
    pub fn params(&self, keys: &[Value]) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(keys.len() * self.arity());
        for k in keys {
            out.extend(self.parts(k)?);
        }
        Ok(out)
    }

    /// The key of a row in model column order.
    pub fn of_row(&self, row: &[Value]) -> Value {
        if self.is_composite() {
            compose(
                self.positions
                    .iter()
                    .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        } else {
            row.get(self.positions[0]).cloned().unwrap_or(Value::Null)
        }
    }

    /// A key's representation for comparing and hashing.
    pub fn repr(&self, key: &Value) -> KeyRepr {
        if !self.is_composite() {
            return KeyRepr::of(key);
        }
        match self.parts(key) {
            Ok(parts) => KeyRepr::Parts(parts.iter().map(KeyRepr::of).collect()),
            Err(_) => KeyRepr::of(key),
        }
    }

    /// [`KeyColumns::repr`] of a row's key.
    pub fn row_repr(&self, row: &[Value]) -> KeyRepr {
        if self.is_composite() {
            KeyRepr::Parts(
                self.positions
                    .iter()
                    .map(|&i| KeyRepr::of(row.get(i).unwrap_or(&Value::Null)))
                    .collect(),
            )
        } else {
            KeyRepr::of(row.get(self.positions[0]).unwrap_or(&Value::Null))
        }
    }

    /// The key as one SQL value, of the row `prefix` names in a trigger (`NEW.`, `OLD.`).
    pub fn expr(&self, prefix: &str) -> String {
        let cols: Vec<String> = self.names.iter().map(|n| format!("{prefix}{n}")).collect();
        if self.is_composite() {
            format!("json_array({})", cols.join(", "))
        } else {
            cols.join("")
        }
    }

    /// `"a" = ?first AND "b" = ?first+1`.
    pub fn eq_sql(&self, first: usize) -> String {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} = ?{}", first + i))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The rows with any of `n` keys whose parts are bound from `?first` on: `"id" IN (…)`, or
    /// `(("a" = ?1 AND "b" = ?2) OR (…))` for a composite key.
    pub fn any_sql(&self, first: usize, n: usize) -> String {
        if !self.is_composite() {
            let ph: Vec<String> = (first..first + n).map(|i| format!("?{i}")).collect();
            return format!("{} IN ({})", self.names[0], ph.join(", "));
        }
        let terms: Vec<String> = (0..n)
            .map(|k| format!("({})", self.eq_sql(first + k * self.arity())))
            .collect();
        format!("({})", terms.join(" OR "))
    }

    /// The key compared with `op` to the key bound from `?first` on: `"id" > ?1`, or the row
    /// value `("a", "b") > (?1, ?2)`, which SQLite answers from the key's index.
    pub fn cmp_sql(&self, op: &str, first: usize) -> String {
        if !self.is_composite() {
            return format!("{} {op} ?{first}", self.names[0]);
        }
        let ph: Vec<String> = (first..first + self.arity())
            .map(|i| format!("?{i}"))
            .collect();
        format!("({}) {op} ({})", self.names.join(", "), ph.join(", "))
    }

    /// ` AND <key> > (after) AND <key> <= (up_to)` for the bounds given, appended to `sql`, with
    /// their parameters appended to `params` (numbered after those already there).
    pub fn push_range(
        &self,
        sql: &mut String,
        params: &mut Vec<Value>,
        after: Option<&Value>,
        up_to: Option<&Value>,
    ) -> Result<()> {
        for (bound, op) in [(after, ">"), (up_to, "<=")] {
            if let Some(b) = bound {
                sql.push_str(&format!(" AND {}", self.cmp_sql(op, params.len() + 1)));
                params.extend(self.parts(b)?);
            }
        }
        Ok(())
    }

    /// One keyset page of `table` (`SELECT cols FROM table`, quoted): `limit` rows in key order
    /// after the key `after` (from the first when `None`); the statement and its parameters.
    pub fn page(
        &self,
        table: &str,
        cols: &str,
        after: Option<&Value>,
        limit: usize,
    ) -> Result<(String, Vec<Value>)> {
        let mut sql = format!("SELECT {cols} FROM {table} WHERE 1");
        let mut params = Vec::new();
        self.push_range(&mut sql, &mut params, after, None)?;
        params.push(Value::Integer(limit as i64));
        sql.push_str(&format!(
            " ORDER BY {} LIMIT ?{}",
            self.order_sql("ASC"),
            params.len()
        ));
        Ok((sql, params))
    }

    /// `"a" ASC, "b" ASC`.
    pub fn order_sql(&self, dir: &str) -> String {
        self.names
            .iter()
            .map(|n| format!("{n} {dir}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `"a", "b"`.
    pub fn list(&self) -> String {
        self.names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanotype_schema::{Column, ValueKind};

    fn members() -> TableDef {
        TableDef::new(
            "members",
            "Member",
            vec![
                Column::new("team", ValueKind::I64).primary_key(),
                Column::new("role", ValueKind::String),
                Column::new("user", ValueKind::String).primary_key(),
            ],
        )
    }

    #[test]
    fn a_composite_key_is_its_parts_in_field_order() {
        let k = KeyColumns::of(&members());
        let row = vec![
            Value::Integer(7),
            Value::Text("admin".into()),
            Value::Text("a\"da".into()),
        ];
        let key = k.of_row(&row);
        assert_eq!(key, Value::Text(r#"[7,"a\"da"]"#.into()));
        assert_eq!(
            k.parts(&key).unwrap(),
            vec![Value::Integer(7), Value::Text("a\"da".into())]
        );
        assert_eq!(k.repr(&key), k.row_repr(&row));
        // SQLite's own spelling compares equal by parts.
        assert_eq!(
            k.repr(&Value::Text("[7, \"a\\u0022da\"]".into())),
            k.row_repr(&row)
        );
        assert!(k.parts(&Value::Text("[7]".into())).is_err());
        assert!(k.parts(&Value::Integer(7)).is_err());
        assert_eq!(k.eq_sql(2), "\"team\" = ?2 AND \"user\" = ?3");
        assert_eq!(
            k.any_sql(1, 2),
            "((\"team\" = ?1 AND \"user\" = ?2) OR (\"team\" = ?3 AND \"user\" = ?4))"
        );
        assert_eq!(k.cmp_sql(">", 1), "(\"team\", \"user\") > (?1, ?2)");
        assert_eq!(k.expr("NEW."), "json_array(NEW.\"team\", NEW.\"user\")");
    }

    #[test]
    fn a_one_column_key_is_its_value() {
        let def = TableDef::new(
            "t",
            "T",
            vec![Column::new("id", ValueKind::I64).primary_key()],
        );
        let k = KeyColumns::of(&def);
        assert_eq!(k.of_row(&[Value::Integer(3)]), Value::Integer(3));
        assert_eq!(k.any_sql(1, 2), "\"id\" IN (?1, ?2)");
        assert_eq!(k.expr("OLD."), "OLD.\"id\"");
    }
}
