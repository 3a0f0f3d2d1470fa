//! The runtime's static files, served by the Worker at `/_nanotype/{name}` with no policy: they
//! hold no data, and every request they make goes through the app's policy like any other.
//!
//! * `client.js`: the feed client, an ES module with no build step ([`CLIENT_JS`]);
//! * `client.d.ts`: its TypeScript declarations (the schema's row types come from
//!   gen-migrations, with `types = "…"` in the nanotype metadata);
//! * `dashboard`: the replication dashboard, plain HTML, CSS and JS (no CDN).

/// One static file.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// Its name under `/_nanotype/`.
    pub name: &'static str,
    /// Its `content-type`.
    pub content_type: &'static str,
    /// Its text.
    pub body: &'static str,
}

/// The feed client (`subscribe(room, {since, token, onChange, onReset})`).
pub const CLIENT_JS: &str = include_str!("../../assets/client.js");

/// Every static file.
pub static ASSETS: [Asset; 3] = [
    Asset {
        name: "client.js",
        content_type: "text/javascript; charset=utf-8",
        body: CLIENT_JS,
    },
    Asset {
        name: "client.d.ts",
        content_type: "application/typescript; charset=utf-8",
        body: include_str!("../../assets/client.d.ts"),
    },
    Asset {
        name: "dashboard",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../assets/dashboard.html"),
    },
];

/// The static file called `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
