//! The runtime's one error type, and the SQL failures it carries with their SQLite code.
//!
//! What the runtime decides on a failure (a 409 for a constraint, a change parked as blocked or
//! retried) reads [`SqlError::kind`], never a message: messages are for people.

/// Everything that can go wrong in nanotype's runtime. Messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite (the room's primary) refused or failed a statement.
    #[error("SQLite error in the room's database: {0}")]
    Primary(#[source] SqlError),
    /// The replica (D1, or the native replica file) failed. A write's change stays in the outbox
    /// and is retried; a read falls back to the primary where the caller allows it.
    #[error("replica unavailable: {0}")]
    Replica(#[source] SqlError),
    /// An integer outside what a JavaScript number holds exactly.
    #[error("column `{column}`: integer {value} is outside ±(2^53 − 1), the range that travels exactly through JavaScript (Durable Object and D1 APIs); store it as a String")]
    IntegerOutOfRange {
        /// The column.
        column: String,
        /// The value, as text.
        value: String,
    },
    /// Every key of a table whose keys the database assigns is taken: each of 1 to 2^53 − 1
    /// holds a row.
    #[error("table `{table}` has no key left to assign: every key from 1 to 2^53 − 1 (the integers JavaScript keeps exactly) holds a row; delete rows or give keys explicitly")]
    KeySpaceExhausted {
        /// The table.
        table: String,
    },
    /// A float that SQLite cannot store.
    #[error("column `{column}`: NaN cannot be stored (SQLite turns it into NULL); use Option<f64> and None")]
    NaN {
        /// The column.
        column: String,
    },
    /// A value read back does not fit the Rust type of its column.
    #[error("column `{column}`: {message}")]
    Decode {
        /// The column.
        column: String,
        /// What did not fit.
        message: String,
    },
    /// JSON encoding or decoding of a `#[nanotype(json)]` column failed.
    #[error("column `{column}`: JSON error: {message}")]
    Json {
        /// The column.
        column: String,
        /// serde_json's message.
        message: String,
    },
    /// A query named a column its table does not have.
    #[error("table `{table}` has no column `{column}`")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column asked for.
        column: String,
    },
    /// An update named a row that does not exist.
    #[error("no row in `{table}` with that key")]
    NotFound {
        /// The table.
        table: String,
    },
    /// A migration that was applied has changed since.
    #[error("migration {name} was applied with checksum {applied} but the file now has {current}; restore the file or write a new migration")]
    MigrationChanged {
        /// The migration.
        name: String,
        /// The checksum recorded when it was applied.
        applied: String,
        /// The checksum of the file now.
        current: String,
    },
    /// A migration failed to apply; nothing of it was kept.
    #[error("migration {name} failed: {message}")]
    Migration {
        /// The migration.
        name: String,
        /// SQLite's message.
        message: String,
    },
    /// The room's tables differ from the structs in a way that breaks reads or writes: a struct
    /// was changed without `gen-migrations` writing (and the build embedding) its migration.
    #[error("the room's tables do not match the structs: {}; run `cargo run --bin gen-migrations`, then build and deploy again", differences.join("; "))]
    SchemaMismatch {
        /// Each difference, for a person.
        differences: Vec<String>,
    },
    /// The D1 database has none of nanotype's tables: its migrations were never applied.
    #[error("the D1 database has no nanotype tables (no `_nt_rooms`): apply the migrations to it, `npx wrangler d1 migrations apply <BINDING> --local` (deployed: `--remote`), or `nanotype migrate-d1` for every shard; writes wait in the room until then")]
    ReplicaNotMigrated,
    /// A read for one room was sent to another room's primary.
    #[error("room `{asked}` was asked of the primary of room `{own}`; a primary only holds its own room")]
    WrongRoom {
        /// The room asked for.
        asked: String,
        /// The room this primary holds.
        own: String,
    },
    /// The room's id is not set or not valid.
    #[error("invalid room id: {0}")]
    InvalidRoom(String),
    /// Read-only SQL was not a single read-only statement, or similar misuse.
    #[error("{0}")]
    Rejected(String),
    /// A write or a pending change names a table that is not in the app's schema list.
    #[error(
        "table `{table}` is not in the app's schema; add its struct to `nanotype::schema!(..)`"
    )]
    UnregisteredTable {
        /// The table.
        table: String,
    },
    /// A row given as JSON does not fit the table's struct (missing field, wrong type, …).
    #[error("{0}")]
    InvalidRow(String),
}

/// A failure of a statement, as the database reported it: its kind (from SQLite's result
/// code), the code's name when the database gave one, and the message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// What kind of failure, from the result code.
    pub kind: SqlKind,
    /// SQLite's result code by name, extended where the database says (`SQLITE_CONSTRAINT_CHECK`).
    pub code: Option<String>,
    /// The database's message.
    pub message: String,
}

/// What kind of failure a statement met, from SQLite's (primary) result code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SqlKind {
    /// A constraint refused the change (`SQLITE_CONSTRAINT*`), including a trigger's `RAISE`.
    Constraint(Constraint),
    /// The statement cannot run as written against this database (`SQLITE_ERROR`,
    /// `SQLITE_RANGE`): a table or column it names is missing, a syntax error, too many
    /// variables.
    Statement,
    /// A string, blob or statement over the database's limits (`SQLITE_TOOBIG`).
    TooBig,
    /// A value of the wrong type for its column (`SQLITE_MISMATCH`).
    Mismatch,
    /// The database refused the operation itself (`SQLITE_READONLY`, `SQLITE_AUTH`).
    NotAllowed,
    /// Busy or locked, out of memory or disk, interrupted, an I/O failure: may pass on retry.
    Transient,
    /// No SQLite code: a failure of the platform or the network, or of the runtime's own glue.
    Unknown,
}

/// Which constraint refused a change (the extended `SQLITE_CONSTRAINT_*` code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Constraint {
    /// `UNIQUE` (or a unique index).
    Unique,
    /// The primary key.
    PrimaryKey,
    /// A foreign key.
    ForeignKey,
    /// A `CHECK`.
    Check,
    /// `NOT NULL`.
    NotNull,
    /// A trigger's `RAISE(ABORT | FAIL | ROLLBACK, …)`.
    Trigger,
    /// Another or an unnamed constraint (a database that gives only `SQLITE_CONSTRAINT`).
    Other,
}

impl SqlKind {
    /// The kind of SQLite's result code `name` (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_BUSY`, …).
    pub fn of_code(name: &str) -> SqlKind {
        if let Some(rest) = name.strip_prefix("SQLITE_CONSTRAINT") {
            return SqlKind::Constraint(match rest {
                "_UNIQUE" => Constraint::Unique,
                "_PRIMARYKEY" | "_ROWID" => Constraint::PrimaryKey,
                "_FOREIGNKEY" => Constraint::ForeignKey,
                "_CHECK" => Constraint::Check,
                "_NOTNULL" => Constraint::NotNull,
                "_TRIGGER" => Constraint::Trigger,
                _ => Constraint::Other,
            });
        }
        let primary = name.split('_').take(2).collect::<Vec<_>>().join("_");
        match primary.as_str() {
            "SQLITE_ERROR" | "SQLITE_RANGE" => SqlKind::Statement,
            "SQLITE_TOOBIG" => SqlKind::TooBig,
            "SQLITE_MISMATCH" => SqlKind::Mismatch,
            "SQLITE_READONLY" | "SQLITE_AUTH" => SqlKind::NotAllowed,
            "SQLITE_BUSY" | "SQLITE_LOCKED" | "SQLITE_NOMEM" | "SQLITE_INTERRUPT"
            | "SQLITE_IOERR" | "SQLITE_CORRUPT" | "SQLITE_FULL" | "SQLITE_CANTOPEN"
            | "SQLITE_PROTOCOL" | "SQLITE_SCHEMA" | "SQLITE_NOLFS" => SqlKind::Transient,
            _ => SqlKind::Unknown,
        }
    }

    /// Whether retrying the same statement against the same database cannot succeed: a
    /// constraint, a statement the database cannot run as written, a value too big or of the
    /// wrong type. A replica that refuses a change this way waits for a fix (a migration, a
    /// dropped trigger), not for time.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            SqlKind::Constraint(_) | SqlKind::Statement | SqlKind::TooBig | SqlKind::Mismatch
        )
    }
}

impl SqlError {
    /// A failure with no SQLite code (the runtime's own, or the platform's).
    pub fn other(message: impl Into<String>) -> SqlError {
        SqlError {
            kind: SqlKind::Unknown,
            code: None,
            message: message.into(),
        }
    }

    /// A failure with SQLite's result code `name`.
    pub fn with_code(name: &str, message: impl Into<String>) -> SqlError {
        SqlError {
            kind: SqlKind::of_code(name),
            code: Some(name.to_owned()),
            message: message.into(),
        }
    }

    /// A failure as a JavaScript API reports it (the Durable Object's SQL API, D1): those give
    /// no code property, only a message that ends with the code's name
    /// (`D1_ERROR: UNIQUE constraint failed: t.a: SQLITE_CONSTRAINT`). The name is read once,
    /// here, where the platform hands the failure over; nothing downstream reads the text.
    pub fn from_platform(message: impl Into<String>) -> SqlError {
        let message = message.into();
        let code = message.rfind("SQLITE_").map(|at| {
            message[at..]
                .bytes()
                .take_while(|b| b.is_ascii_uppercase() || *b == b'_')
                .map(char::from)
                .collect::<String>()
        });
        match code {
            Some(code) if code.len() > "SQLITE_".len() => SqlError::with_code(&code, message),
            _ => SqlError::other(message),
        }
    }
}

impl From<String> for SqlError {
    fn from(message: String) -> SqlError {
        SqlError::other(message)
    }
}

impl From<&str> for SqlError {
    fn from(message: &str) -> SqlError {
        SqlError::other(message)
    }
}

impl Error {
    /// A replica's failure as what it means: a statement D1 cannot run, against a D1 without
    /// `_nt_rooms`, is [`Error::ReplicaNotMigrated`] (asked of the database, never read from the
    /// message); anything else is `self`.
    pub async fn of_replica<R: crate::replica::Replica + ?Sized>(self, replica: &R) -> Error {
        let statement = matches!(
            &self,
            Error::Replica(SqlError {
                kind: SqlKind::Statement,
                ..
            })
        );
        if statement && !crate::replica::has_tables(replica).await.unwrap_or(true) {
            return Error::ReplicaNotMigrated;
        }
        self
    }

    /// The SQL failure inside a [`Error::Primary`] or [`Error::Replica`].
    pub fn sql(&self) -> Option<&SqlError> {
        match self {
            Error::Primary(e) | Error::Replica(e) => Some(e),
            _ => None,
        }
    }
}

/// `Result` with nanotype's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
