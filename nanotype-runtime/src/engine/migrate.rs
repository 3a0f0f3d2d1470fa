//! The room's schema migrations, applied on the Durable Object's first request.
//!
//! The files come from `gen-migrations` (`migrations/do/NNNN_<name>.sql`) and are embedded at
//! compile time with [`crate::migrations!`]. A ledger table in the room's SQLite,
//! `_nt_migrations`, records each applied migration with the SHA-256 of its text:
//!
//! * each migration runs in one transaction with its ledger row, so a failure keeps nothing of it
//!   and it is tried again on the next start;
//! * applying the same list twice does nothing the second time;
//! * a migration whose text changed after it was applied stops start-up with
//!   [`Error::MigrationChanged`] naming it: the room was built by the old text, and running on
//!   as if it had the new one would hide the difference (sqlx does the same).
//!
//! Ledger rows without a migration in the list are left alone: that is an older build of the
//! Worker running against a room a newer one migrated (a rollback), and refusing to start would
//! take the room down.
//!
//! ```
//! # #[cfg(feature = "native")] {
//! use nanotype::migrate::{apply, Migration};
//! let db = nanotype::native::NativePrimary::open_in_memory().unwrap();
//! let migrations = [Migration { name: "0001_create_tasks", sql: "CREATE TABLE tasks (id INTEGER PRIMARY KEY);" }];
//! assert_eq!(apply(&db, &migrations).unwrap(), ["0001_create_tasks"]);
//! assert!(apply(&db, &migrations).unwrap().is_empty());
//! # }
//! ```

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::primary::Primary;
use crate::value::Value;
use nanotype_schema::migration::introspect::{self, CatalogValue};
use nanotype_schema::migration::shape;

/// The ledger table in the room's SQLite.
pub const LEDGER: &str = "_nt_migrations";

pub use crate::meta::LEDGER_DDL;

// The time comes from SQLite: `std::time::SystemTime` panics on wasm32-unknown-unknown.
const RECORD: &str = "INSERT INTO \"_nt_migrations\" (\"name\", \"checksum\", \"applied_at\") \
     VALUES (?1, ?2, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))";

const APPLIED: &str = "SELECT \"name\", \"checksum\" FROM \"_nt_migrations\"";

/// One migration: its file name without `.sql`, and its text (one or more statements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The file's name without `.sql` (`0002_comments`).
    pub name: &'static str,
    /// The file's text: one or more statements.
    pub sql: &'static str,
}

impl Migration {
    /// The SHA-256 of the text, in lower-case hex.
    pub fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

/// The SHA-256 of `sql`, in lower-case hex: what the ledger records.
pub fn checksum(sql: &str) -> String {
    hex(&Sha256::digest(sql.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Apply the migrations, or adopt a database they did not make.
///
/// A room whose database already holds the schema's tables but no ledger (made by hand, or by
/// another app) is compared with the model: when every table is what the structs say, the
/// migrations are recorded as applied (a baseline) without running them; otherwise nothing is
/// changed and the error lists the differences. Any other database goes to [`apply`].
pub fn apply_or_adopt<P: Primary>(
    db: &P,
    migrations: &[Migration],
    tables: &[&nanotype_schema::Table],
) -> Result<Vec<&'static str>> {
    let table_exists = |name: &str| -> Result<bool> {
        Ok(!db
            .query(
                "SELECT 1 FROM \"sqlite_master\" WHERE \"type\" = 'table' AND \"name\" = ?1",
                &[Value::Text(name.to_owned())],
            )?
            .is_empty())
    };
    let recorded = table_exists(LEDGER)?
        && !db
            .query("SELECT 1 FROM \"_nt_migrations\" LIMIT 1", &[])?
            .is_empty();
    if recorded || migrations.is_empty() {
        return apply(db, migrations);
    }
    let mut existing = Vec::new();
    for t in tables {
        if table_exists(&t.name)? {
            existing.push(*t);
        }
    }
    if existing.is_empty() {
        return apply(db, migrations);
    }
    // Adopt: every table of the model, as the model says.
    let mut run = catalog(db);
    let mut differences = Vec::new();
    for t in tables {
        if !existing.iter().any(|e| e.name == t.name) {
            differences.push(format!("table `{}` is missing", t.name));
            continue;
        }
        let live = introspect::table(&mut run, &t.name).map_err(|m| Error::Primary(m.into()))?;
        differences.extend(shape::differences(&shape::primary(t), &live));
    }
    if !differences.is_empty() {
        return Err(Error::Migration {
            name: "(adoption)".into(),
            message: format!(
                "this database has the schema's tables but no migration ledger, and differs from \
                 the structs: {}; make it match (or migrate it by hand) before nanotype adopts it",
                differences.join("; ")
            ),
        });
    }
    db.transaction(|| {
        db.execute_batch(LEDGER_DDL)?;
        for m in migrations {
            db.execute(
                RECORD,
                &[Value::Text(m.name.to_owned()), Value::Text(m.checksum())],
            )?;
        }
        Ok(())
    })?;
    Ok(Vec::new())
}

/// The `_nt_meta` key under which a room keeps the fingerprint of the last schema it was checked
/// against ([`check_schema`]).
const META_SCHEMA: &str = "schema_checked";

/// Compare the room's tables with the structs, once per build: the fingerprint of the structs'
/// shapes and the migrations' checksums is kept in `_nt_meta`, so a room opened again by the
/// same build reads one row and introspects nothing.
///
/// Only what breaks reads or writes counts ([`shape::breaking_differences`]): a struct changed
/// without running `gen-migrations` (a field's type, a new field) is [`Error::SchemaMismatch`]
/// naming each column, instead of a failure on every request.
pub fn check_schema<P: Primary>(
    db: &P,
    migrations: &[Migration],
    tables: &[&nanotype_schema::Table],
) -> Result<()> {
    let fingerprint = {
        let mut h = Sha256::new();
        for m in migrations {
            h.update(m.name.as_bytes());
            h.update(m.checksum().as_bytes());
        }
        for t in tables {
            h.update(format!("{:?}", shape::primary(t)).as_bytes());
        }
        hex(&h.finalize())
    };
    let has_meta = !db
        .query(
            "SELECT 1 FROM \"sqlite_master\" WHERE \"type\" = 'table' AND \"name\" = '_nt_meta'",
            &[],
        )?
        .is_empty();
    if has_meta && crate::sync::meta_get(db, META_SCHEMA)?.as_deref() == Some(&fingerprint) {
        return Ok(());
    }
    let mut run = catalog(db);
    let mut differences = Vec::new();
    for t in tables {
        let live = introspect::table(&mut run, &t.name).map_err(|m| Error::Primary(m.into()))?;
        if live.columns.is_empty() {
            differences.push(format!("table `{}` is missing", t.name));
            continue;
        }
        differences.extend(shape::breaking_differences(&shape::primary(t), &live));
    }
    if !differences.is_empty() {
        return Err(Error::SchemaMismatch { differences });
    }
    if has_meta {
        crate::sync::meta_set(db, META_SCHEMA, &fingerprint)?;
    }
    Ok(())
}

/// The room's database as introspection reads it: a statement's rows as catalog values.
fn catalog<P: Primary>(
    db: &P,
) -> impl FnMut(&str) -> std::result::Result<Vec<Vec<CatalogValue>>, String> + '_ {
    move |sql| {
        db.query(sql, &[]).map_err(|e| e.to_string()).map(|rows| {
            rows.into_iter()
                .map(|r| r.into_iter().map(catalog_value).collect())
                .collect()
        })
    }
}

fn catalog_value(v: Value) -> CatalogValue {
    match v {
        Value::Null => CatalogValue::Null,
        Value::Integer(i) => CatalogValue::Int(i),
        Value::Real(f) => CatalogValue::Text(f.to_string()),
        Value::Text(t) => CatalogValue::Text(t),
        Value::Blob(b) => CatalogValue::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// Apply the migrations the room has not applied yet, in name order, and return their names.
///
/// Every applied migration is checked first: if one's text changed, nothing is applied and the
/// error names it.
pub fn apply<P: Primary>(db: &P, migrations: &[Migration]) -> Result<Vec<&'static str>> {
    let mut ordered: Vec<&Migration> = migrations.iter().collect();
    nanotype_schema::sort::sort_by_key(&mut ordered, |m| m.name);
    if let Some(pair) = ordered.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Migration {
            name: pair[0].name.to_owned(),
            message: "two migrations have this name; give each file its own number".into(),
        });
    }

    db.execute_batch(LEDGER_DDL)?;
    let applied: Vec<(String, String)> = db
        .query(APPLIED, &[])?
        .into_iter()
        .filter_map(|row| match <[Value; 2]>::try_from(row) {
            Ok([Value::Text(name), Value::Text(sum)]) => Some((name, sum)),
            _ => None,
        })
        .collect();

    let mut pending = Vec::new();
    for m in ordered {
        let current = m.checksum();
        match applied.iter().find(|(name, _)| name == m.name) {
            Some((_, recorded)) if *recorded != current => {
                return Err(Error::MigrationChanged {
                    name: m.name.to_owned(),
                    applied: recorded.clone(),
                    current,
                })
            }
            Some(_) => {}
            None => pending.push((m, current)),
        }
    }

    let mut done = Vec::new();
    for (m, sum) in pending {
        db.transaction(|| {
            db.execute_batch(m.sql).map_err(|e| Error::Migration {
                name: m.name.to_owned(),
                message: e.to_string(),
            })?;
            db.execute(RECORD, &[Value::Text(m.name.to_owned()), Value::Text(sum)])?;
            Ok(())
        })?;
        done.push(m.name);
    }
    Ok(done)
}
