//! Where the structs and the migrations are: `[workspace.metadata.nanotype]` in the workspace's
//! `Cargo.toml` (or `[package.metadata.nanotype]` in a single crate's).
//!
//! ```toml
//! [workspace.metadata.nanotype]
//! sources = ["examples/tasks/src/schema.rs"]   # files holding #[nanotype::table] structs
//! migrations = "migrations"                    # D1 here, the Durable Object's in <dir>/do
//! types = "client/tables.d.ts"                 # optional: TypeScript declarations of the rows
//! ```
//!
//! Paths are relative to the manifest's folder.

use std::path::{Path, PathBuf};

/// The folder of the D1 migrations when the manifest names none.
pub const DEFAULT_MIGRATIONS: &str = "migrations";

/// What the manifest says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The manifest read.
    pub manifest: PathBuf,
    pub sources: Vec<PathBuf>,
    pub migrations: PathBuf,
    /// Where the tables' TypeScript declarations go, if anywhere.
    pub types: Option<PathBuf>,
}

/// The nearest `Cargo.toml` from `start` upwards that has a `nanotype` metadata section.
pub fn find_manifest(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join("Cargo.toml")).find(|p| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|t| section(&t).is_some())
    })
}

fn section(doc: &toml::Table) -> Option<&toml::Table> {
    ["workspace", "package"]
        .iter()
        .find_map(|top| doc.get(*top)?.get("metadata")?.get("nanotype")?.as_table())
}

/// Read the `nanotype` metadata of `manifest`.
pub fn load(manifest: &Path) -> Result<Config, String> {
    let shown = manifest.display();
    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{shown} is not valid TOML: {e}"))?;
    let Some(meta) = section(&doc) else {
        return Err(format!(
            "{shown} has no [workspace.metadata.nanotype] section; add one with \
             `sources = [\"path/to/schema.rs\"]` and `migrations = \"migrations\"`, or pass --source"
        ));
    };
    let base = manifest.parent().unwrap_or(Path::new("."));
    let sources = match meta.get("sources") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or_else(|| format!("{shown}: `sources` must be a list of paths"))?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(|s| base.join(s))
                    .ok_or_else(|| format!("{shown}: `sources` must be a list of paths"))
            })
            .collect::<Result<_, _>>()?,
    };
    let migrations = match meta.get("migrations") {
        None => base.join(DEFAULT_MIGRATIONS),
        Some(v) => base.join(
            v.as_str()
                .ok_or_else(|| format!("{shown}: `migrations` must be a path"))?,
        ),
    };
    let types = match meta.get("types") {
        None => None,
        Some(v) => Some(
            base.join(
                v.as_str()
                    .ok_or_else(|| format!("{shown}: `types` must be a path"))?,
            ),
        ),
    };
    for key in meta.keys() {
        if !["sources", "migrations", "types"].contains(&key.as_str()) {
            return Err(format!(
                "{shown}: unknown key `{key}` in [workspace.metadata.nanotype]; expected `sources`, `migrations` or `types`"
            ));
        }
    }
    Ok(Config {
        manifest: manifest.to_owned(),
        sources,
        migrations,
        types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_section() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[workspace]\n[workspace.metadata.nanotype]\nsources = [\"a.rs\"]\nmigrations = \"m\"\n",
        )
        .unwrap();
        let c = load(&manifest).unwrap();
        assert_eq!(c.sources, vec![dir.path().join("a.rs")]);
        assert_eq!(c.migrations, dir.path().join("m"));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(
            find_manifest(&dir.path().join("sub")),
            Some(manifest.clone())
        );
        std::fs::write(&manifest, "[workspace.metadata.nanotype]\nsource = []\n").unwrap();
        assert!(load(&manifest)
            .unwrap_err()
            .contains("unknown key `source`"));
    }
}
