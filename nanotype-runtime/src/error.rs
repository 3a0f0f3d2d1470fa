//! The runtime's one error type.

/// Everything that can go wrong in nanotype's runtime. Messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite (the room's primary or the native replica) refused a statement.
    #[error("SQLite error in the room's database: {0}")]
    Primary(String),
    /// The replica (D1, or the native replica file) failed. A write's change stays in the outbox
    /// and is retried; a read falls back to the primary where the caller allows it.
    #[error("replica unavailable: {0}")]
    Replica(String),
    /// An integer outside what a JavaScript number holds exactly.
    #[error("column `{column}`: integer {value} is outside ±(2^53 − 1), the range that travels exactly through JavaScript (Durable Object and D1 APIs); store it as a String")]
    IntegerOutOfRange {
        /// The column.
        column: String,
        /// The value, as text.
        value: String,
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

/// `Result` with nanotype's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
