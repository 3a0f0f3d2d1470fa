//! Attribute keywords, in one place so that the parser, its error messages and the docs agree.

/// `#[nanotype::table(name = "...")]` and `#[nanotype(...)]` on fields.
pub const NAME: &str = "name";
/// Table level: `renamed_from = "old_table"`.
pub const RENAMED_FROM: &str = "renamed_from";
/// Table level: `index(a, b)`; field level: `index`.
pub const INDEX: &str = "index";
/// Table level: `unique(a, b)`; field level: `unique`.
pub const UNIQUE: &str = "unique";
/// Table level: `check = "SQL condition"`, a `CHECK` constraint (may be repeated).
pub const CHECK: &str = "check";
/// Field level.
pub const PRIMARY_KEY: &str = "primary_key";
/// Field level: `default = <literal>`.
pub const DEFAULT: &str = "default";
/// Field level: `rename = "col"`.
pub const RENAME: &str = "rename";
/// Field level: `json`, any serde type stored as JSON text.
pub const JSON: &str = "json";
/// Field level: `references = "table.column"`, a foreign key to another table's primary key.
pub const REFERENCES: &str = "references";
/// Field level, with `references`: `on_delete = "cascade" | "restrict" | "set_null" | "no_action"`.
pub const ON_DELETE: &str = "on_delete";
/// Table level: `crate = "path"`, where generated code finds the runtime when the dependency is
/// renamed (default `::nanotype`).
pub const CRATE: &str = "crate";
/// Table level: `validate`, a flag: every write of the table goes through its
/// `nanotype::Validate` impl.
pub const VALIDATE: &str = "validate";
/// The helper attribute on fields.
pub const NANOTYPE: &str = "nanotype";

/// Every table-level key, for the error listing them.
pub const TABLE_KEYS: &[&str] = &[NAME, RENAMED_FROM, INDEX, UNIQUE, CHECK, VALIDATE, CRATE];
/// Every field-level key, for the error listing them.
pub const FIELD_KEYS: &[&str] = &[
    PRIMARY_KEY,
    INDEX,
    UNIQUE,
    DEFAULT,
    RENAME,
    RENAMED_FROM,
    JSON,
    REFERENCES,
    ON_DELETE,
];
