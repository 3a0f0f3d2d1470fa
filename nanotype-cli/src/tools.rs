//! `nanotype tools`: the two Rust tools a Worker build needs, installed once, pinned, with how long
//! each takes said before it starts: `worker-build` (`--locked`) and `wasm-bindgen-cli` at the
//! version the runtime's `wasm-bindgen` pin requires. A tool already installed at that version is
//! skipped. (wrangler, wasm-opt and esbuild come from the project's `package.json`: `npm install`.)

use std::path::PathBuf;
use std::process::Command;

/// One tool: its crate, the version, the binary that says it is there, and the install's time as
/// measured on 2 cores from an empty cargo cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// The crate `cargo install` takes.
    pub krate: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// The binary it installs.
    pub bin: &'static str,
    /// `--locked`: the crate's own lockfile (wasm-bindgen-cli's pins a crate the registry
    /// mirror here lacks, so it is installed without).
    pub locked: bool,
    /// Minutes the install took, measured.
    pub minutes: u32,
}

/// What a Worker build needs.
pub const TOOLS: [Tool; 2] = [
    Tool {
        krate: "worker-build",
        version: crate::scaffold::WORKER,
        bin: "worker-build",
        locked: true,
        // 441 s from an empty cargo cache on 2 cores (2026-12-03).
        minutes: 7,
    },
    Tool {
        krate: "wasm-bindgen-cli",
        version: crate::scaffold::WASM_BINDGEN,
        bin: "wasm-bindgen",
        locked: false,
        // 269 s, measured with worker-build's.
        minutes: 5,
    },
];

impl Tool {
    /// The `cargo install` arguments.
    pub fn install_args(&self) -> Vec<String> {
        let mut args = vec![
            "install".to_owned(),
            self.krate.to_owned(),
            "--version".to_owned(),
            format!("={}", self.version),
        ];
        if self.locked {
            args.push("--locked".to_owned());
        }
        args
    }

    /// Whether `bin --version` prints this version.
    pub fn installed(&self, bin: &std::path::Path) -> bool {
        Command::new(bin)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w == self.version)
            })
    }
}

/// Install what is missing with `cargo`, saying first what it will take; a line per tool.
pub fn install(cargo: &std::path::Path, out: &mut impl std::io::Write) -> Result<(), String> {
    let missing: Vec<&Tool> = TOOLS
        .iter()
        .filter(|t| !t.installed(&PathBuf::from(t.bin)))
        .collect();
    for t in TOOLS.iter().filter(|t| !missing.contains(t)) {
        let _ = writeln!(out, "{} {}: installed", t.bin, t.version);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let total: u32 = missing.iter().map(|t| t.minutes).sum();
    let _ = writeln!(
        out,
        "installing {} (about {total} minutes on 2 cores; once)",
        missing
            .iter()
            .map(|t| format!("{} {}", t.krate, t.version))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    for t in missing {
        let _ = writeln!(
            out,
            "cargo {}   # about {} minutes",
            t.install_args().join(" "),
            t.minutes
        );
        let status = Command::new(cargo)
            .args(t.install_args())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", cargo.display()))?;
        if !status.success() {
            return Err(format!("cargo install {} failed ({status})", t.krate));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installs_are_pinned_and_worker_build_locked() {
        assert_eq!(
            TOOLS[0].install_args(),
            ["install", "worker-build", "--version", "=0.8.7", "--locked"]
        );
        assert_eq!(
            TOOLS[1].install_args(),
            [
                "install",
                "wasm-bindgen-cli",
                "--version",
                &format!("={}", crate::scaffold::WASM_BINDGEN)
            ]
        );
    }

    #[test]
    fn a_tool_is_installed_only_at_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("tool");
        std::fs::write(&fake, "#!/bin/sh\necho worker-build 0.8.7\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(TOOLS[0].installed(&fake));
            std::fs::write(&fake, "#!/bin/sh\necho worker-build 0.8.6\n").unwrap();
            assert!(!TOOLS[0].installed(&fake));
        }
        assert!(!TOOLS[0].installed(&dir.path().join("absent")));
    }
}
