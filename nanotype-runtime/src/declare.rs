//! The two declarations an app makes: its schema ([`crate::schema!`]) and its room Durable
//! Object class ([`crate::room!`]).

/// Declares an app's schema: a unit struct implementing [`Schema`](crate::Schema) with the listed tables and the
/// Durable Object migrations embedded from a folder (relative to the crate's `Cargo.toml`).
///
/// ```
/// #[nanotype::table(name = "tasks")]
/// #[derive(serde::Serialize, serde::Deserialize)]
/// pub struct Task {
///     #[nanotype(primary_key)]
///     pub id: i64,
///     pub title: String,
/// }
///
/// // An app embeds its rooms' migrations too: `, migrations = "../../migrations/do"`.
/// nanotype::schema!(pub App = [Task]);
/// assert_eq!(<App as nanotype::Schema>::TABLES.len(), 1);
/// ```
///
/// Without `migrations = ..` the schema has none (tests, apps that migrate by other means).
/// Every listed struct must be a `#[nanotype::table]` that also derives `Serialize` and
/// `Deserialize` (the gateway speaks JSON): anything else is a compile error on its name.
#[macro_export]
macro_rules! schema {
    ($vis:vis $name:ident = [$($table:ty),+ $(,)?] $(, migrations = $dir:literal)? $(,)?) => {
        /// The app's schema (declared with `nanotype::schema!`).
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name;

        impl $crate::Schema for $name {
            const TABLES: &'static [$crate::registry::TableEntry] =
                &[$($crate::registry::TableEntry::of::<$table>()),+];
            const MIGRATIONS: &'static [$crate::migrate::Migration] =
                $crate::__schema_migrations!($($dir)?);
        }

        // A `references` to a table not listed, to a column that is not its key, or of another
        // type fails the build here, with the reference in the message.
        const _: () = {
            if let ::core::option::Option::Some(problem) = $crate::schema::check::reference_problem(
                &[$(<$table as $crate::Table>::DEF),+],
            ) {
                ::core::panic!("{}", problem);
            }
        };
    };
}

/// The migrations of [`schema!`]: embedded from the folder, or none.
#[doc(hidden)]
#[macro_export]
macro_rules! __schema_migrations {
    () => {
        &[]
    };
    ($dir:literal) => {
        $crate::migrations!($dir, crate = $crate)
    };
}

/// Declares the app's room Durable Object class: `nanotype::room!(Room, App)` or, with the app's
/// hooks (validation, custom routes, read-only SQL), `nanotype::room!(Room, App, Hooks)`.
///
/// The class is exported for workers-rs (the crate depends on `worker`); bind it in
/// `wrangler.toml` as `ROOM`, a SQLite class (`new_sqlite_classes`), next to the D1 binding `DB`.
/// Off wasm32 it expands to nothing, so the crate's native tests still build.
///
/// ```
/// #[nanotype::table(name = "notes")]
/// #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
/// pub struct Note { #[nanotype(primary_key)] pub id: i64, pub text: String }
///
/// nanotype::schema!(pub App = [Note]);
///
/// /// Validation, custom routes and timers: every method has a default.
/// #[derive(Default)]
/// pub struct Hooks;
/// impl nanotype::api::RoomHooks for Hooks {}
///
/// nanotype::room!(Room, App, Hooks);
/// ```
///
/// The Worker variables `NANOTYPE_FLUSH_WINDOW_MS`, `NANOTYPE_DELIVERY_DELAY_MS`,
/// `NANOTYPE_AUDIT_INTERVAL_MS` (0: no scheduled audits) and `NANOTYPE_BACKFILL_PAGE` override
/// the flush window, the delivery alarm's delay, the audit interval and the rows per backfill
/// page ([`SyncConfig`](crate::sync::SyncConfig)).
#[macro_export]
macro_rules! room {
    ($name:ident, $schema:ty) => {
        $crate::room!($name, $schema, ());
    };
    ($name:ident, $schema:ty, $hooks:ty) => {
        /// The room Durable Object (declared with `nanotype::room!`).
        #[cfg(target_arch = "wasm32")]
        #[::worker::durable_object]
        pub struct $name {
            room: $crate::worker::RoomObject<$schema, $hooks>,
        }

        #[cfg(target_arch = "wasm32")]
        impl ::worker::DurableObject for $name {
            fn new(state: ::worker::State, env: ::worker::Env) -> Self {
                $name {
                    room: $crate::worker::RoomObject::new(state, env),
                }
            }
            async fn fetch(&self, req: ::worker::Request) -> ::worker::Result<::worker::Response> {
                self.room.fetch(req).await
            }
            async fn alarm(&self) -> ::worker::Result<::worker::Response> {
                self.room.alarm().await
            }
            async fn websocket_message(
                &self,
                ws: ::worker::WebSocket,
                message: ::worker::WebSocketIncomingMessage,
            ) -> ::worker::Result<()> {
                self.room.websocket_message(ws, message).await
            }
            async fn websocket_close(
                &self,
                ws: ::worker::WebSocket,
                code: usize,
                reason: ::std::string::String,
                was_clean: bool,
            ) -> ::worker::Result<()> {
                self.room.websocket_close(ws, code, reason, was_clean).await
            }
            async fn websocket_error(
                &self,
                _ws: ::worker::WebSocket,
                _error: ::worker::Error,
            ) -> ::worker::Result<()> {
                ::std::result::Result::Ok(())
            }
        }
    };
}

/// Declares the Worker's `fetch` entry: every request served by `nanotype::worker::serve` for the
/// schema, under the app's authorization policy (`nanotype::worker!(App, TOKENS)`). The same one
/// routing call an app would write by hand, so the app need not.
///
/// Like [`crate::room!`], it needs the crate to depend on `worker`, and off wasm32 it expands to
/// nothing.
///
/// ```
/// # #[nanotype::table(name = "notes")]
/// # #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
/// # pub struct Note { #[nanotype(primary_key)] pub id: i64 }
/// # nanotype::schema!(pub App = [Note]);
/// pub const TOKENS: nanotype::api::RoomTokens = nanotype::api::RoomTokens::from_var("API_TOKENS");
/// nanotype::worker!(App, TOKENS);
/// ```
#[macro_export]
macro_rules! worker {
    ($schema:ty, $policy:expr) => {
        /// The Worker's entry (declared with `nanotype::worker!`).
        #[cfg(target_arch = "wasm32")]
        #[::worker::event(fetch)]
        async fn fetch(
            req: ::worker::Request,
            env: ::worker::Env,
            _: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            $crate::worker::serve::<$schema>(req, &env, &$policy).await
        }
    };
}
