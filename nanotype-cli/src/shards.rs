//! `nanotype migrate-d1`: one set of D1 migrations applied to every shard of the replica, then
//! each shard's applied list compared with the migration files, so that every shard is known to
//! be at the same version (the runtime's gateway reads them all in one query across rooms).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where and how to apply.
#[derive(Clone, Debug)]
pub struct Migrate {
    /// The wrangler config naming the shards (`[vars]` `NANOTYPE_D1_SHARDS`, `DB` by default).
    pub wrangler: PathBuf,
    /// The D1 migration files (`migrations_dir`), to compare with what each shard applied.
    pub migrations: PathBuf,
    /// The deployed databases (`--remote`) instead of the local ones.
    pub remote: bool,
    /// wrangler's `--persist-to` for local state.
    pub persist_to: Option<PathBuf>,
    /// The wrangler executable (`$WRANGLER`, else `wrangler` on the PATH).
    pub bin: PathBuf,
}

/// Apply the migrations to each shard in turn and check it; a line per shard, or what failed.
pub fn migrate(m: &Migrate) -> Result<Vec<String>, String> {
    let shards = crate::doctor::shards_of(&m.wrangler)?;
    let want = migration_names(&m.migrations)?;
    let mut out = Vec::new();
    for shard in &shards {
        wrangler(m, &["d1", "migrations", "apply", shard])?;
        let listed = wrangler(
            m,
            &[
                "d1",
                "execute",
                shard,
                "--json",
                "--command",
                "SELECT name FROM d1_migrations ORDER BY id",
            ],
        )?;
        let applied = applied_names(&listed).ok_or_else(|| {
            format!("D1 `{shard}`: cannot read its applied migrations:\n{listed}")
        })?;
        if applied != want {
            return Err(format!(
                "D1 `{shard}` has applied {} of {} migrations ({}); its migrations table disagrees with {}",
                applied.len(),
                want.len(),
                applied.last().map_or("none", String::as_str),
                m.migrations.display()
            ));
        }
        out.push(format!(
            "D1 `{shard}`: {} migration(s), the last {}",
            applied.len(),
            applied.last().map_or("none", String::as_str)
        ));
    }
    Ok(out)
}

/// `NNNN_name.sql` files of `dir`, in order.
fn migration_names(dir: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("sql"))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// The `name`s of `wrangler d1 execute --json`'s last result.
fn applied_names(json_text: &str) -> Option<Vec<String>> {
    let start = json_text.find('[')?;
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&json_text[start..]).ok()?;
    let rows = parsed.last()?.get("results")?.as_array()?;
    rows.iter()
        .map(|r| r.get("name")?.as_str().map(str::to_owned))
        .collect()
}

fn wrangler(m: &Migrate, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(&m.bin);
    cmd.args(args)
        .arg(if m.remote { "--remote" } else { "--local" })
        .arg("--config")
        .arg(&m.wrangler);
    if let (false, Some(dir)) = (m.remote, &m.persist_to) {
        cmd.arg("--persist-to").arg(dir);
    }
    let shown = format!("{} {}", m.bin.display(), args.join(" "));
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e} (install wrangler, or set WRANGLER)"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{shown} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for wrangler that records its calls and answers `execute` with what the
    /// shard's file says it applied (the real one is run by the e2e suite, on three local D1s).
    fn fake_wrangler(dir: &Path) -> PathBuf {
        let bin = dir.join("wrangler");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\necho \"$@\" >> {calls}\nif [ \"$2\" = execute ]; then\n  names=$(cat {dir}/applied-$3 2>/dev/null || cat {dir}/applied)\n  echo \"[{{\\\"results\\\": [$names]}}]\"\nfi\n",
                calls = dir.join("calls").display(),
                dir = dir.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&bin)
            .status()
            .unwrap();
        bin
    }

    #[test]
    fn applies_to_every_shard_and_finds_one_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let migrations = dir.join("migrations");
        std::fs::create_dir(&migrations).unwrap();
        for f in ["0001_a.sql", "0002_b.sql"] {
            std::fs::write(migrations.join(f), "SELECT 1;").unwrap();
        }
        let wrangler = dir.join("wrangler.toml");
        std::fs::write(&wrangler, "[vars]\nNANOTYPE_D1_SHARDS = \"DB,DB_1\"\n").unwrap();
        std::fs::write(
            dir.join("applied"),
            r#"{"name":"0001_a.sql"},{"name":"0002_b.sql"}"#,
        )
        .unwrap();
        let m = Migrate {
            wrangler: wrangler.clone(),
            migrations,
            remote: false,
            persist_to: Some(dir.join("state")),
            bin: fake_wrangler(dir),
        };
        let lines = migrate(&m).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].starts_with("D1 `DB_1`: 2 migration(s), the last 0002_b.sql"),
            "{lines:?}"
        );
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
        let applies: Vec<&str> = calls
            .lines()
            .filter(|l| l.contains("migrations apply"))
            .collect();
        assert_eq!(applies.len(), 2, "{calls}");
        assert!(
            applies[1].starts_with("d1 migrations apply DB_1 --local --config"),
            "{calls}"
        );
        assert!(applies[1].contains("--persist-to"), "{calls}");

        std::fs::write(dir.join("applied-DB_1"), r#"{"name":"0001_a.sql"}"#).unwrap();
        let err = migrate(&m).unwrap_err();
        assert!(
            err.contains("D1 `DB_1` has applied 1 of 2 migrations (0001_a.sql)"),
            "{err}"
        );
    }
}
