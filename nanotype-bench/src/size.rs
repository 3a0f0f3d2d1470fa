//! Part 5, size: the example Worker's wasm (raw and gzip) against the minimal Durable Object + D1
//! Worker in `../shared/reference/workerd-spike/`, both built the same way: `worker-build
//! --release` with the same tools and the same release profile (the spike's: opt-level "s",
//! LTO, one codegen unit, debuginfo stripped, given to both through `CARGO_PROFILE_RELEASE_*`).
//! The spike is copied to a scratch directory and built there; its source never enters the
//! repository.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::report::{Amount, Figure, Outcome, Target};
use crate::{target_dir, workspace_root, Sizes};

fn skipped(reason: impl Into<String>) -> Vec<Outcome> {
    vec![Outcome::Skipped {
        part: "size",
        reason: reason.into(),
    }]
}

fn tools_dir() -> PathBuf {
    std::env::var_os("NANOTYPE_TOOLS").map_or_else(
        || {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/nanotype/tools")
        },
        PathBuf::from,
    )
}

pub(crate) struct Tools {
    worker_build: PathBuf,
    wasm_bindgen: PathBuf,
    wasm_opt: PathBuf,
    esbuild: PathBuf,
}

pub(crate) fn tools() -> Result<Tools, String> {
    let t = tools_dir();
    let bin = workspace_root().join("examples/tasks/node_modules/.bin");
    let tools = Tools {
        worker_build: t.join("worker-build-0.8.7/bin/worker-build"),
        wasm_bindgen: t.join("wasm-bindgen-0.2.130/bin/wasm-bindgen"),
        wasm_opt: bin.join("wasm-opt"),
        esbuild: bin.join("esbuild"),
    };
    for p in [
        &tools.worker_build,
        &tools.wasm_bindgen,
        &tools.wasm_opt,
        &tools.esbuild,
    ] {
        if !p.exists() {
            return Err(format!(
                "{} not found (scripts/setup-tools.sh installs the Worker tools)",
                p.display()
            ));
        }
    }
    Ok(tools)
}

fn spike_dir() -> PathBuf {
    workspace_root().join("../shared/reference/workerd-spike")
}

/// `from` relative to `base` (both absolute): worker-build takes its output directory relative
/// to the crate.
fn relative(from: &Path, base: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = f.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &f[common..] {
        out.push(c);
    }
    out
}

/// Build the crate in `krate` into `out` with worker-build; the wasm's path.
pub(crate) fn build(
    tools: &Tools,
    krate: &Path,
    out: &Path,
    log: &Path,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let path = format!(
        "{}:{}:{}",
        tools.wasm_bindgen.parent().unwrap().display(),
        tools.esbuild.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let result = Command::new(&tools.worker_build)
        .current_dir(krate)
        .arg("--release")
        .arg("--out-dir")
        .arg(relative(out, krate))
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", target_dir().join("nanotype-bench-wasm"))
        .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
        .env("WASM_OPT_BIN", &tools.wasm_opt)
        .env("ESBUILD_BIN", &tools.esbuild)
        // The same release profile for both (the spike's own).
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .output()
        .map_err(|e| format!("could not run worker-build: {e}"))?;
    let _ = std::fs::write(log, [&result.stdout[..], &result.stderr[..]].concat());
    let wasm = out.join("index_bg.wasm");
    if !result.status.success() || !wasm.exists() {
        return Err(format!(
            "worker-build --release in {} failed (log: {})",
            krate.display(),
            log.display()
        ));
    }
    Ok(wasm)
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip").len()
}

fn copy_spike(to: &Path) -> Result<(), String> {
    let from = spike_dir();
    std::fs::create_dir_all(to.join("src")).map_err(|e| e.to_string())?;
    for f in ["Cargo.toml", "src/lib.rs"] {
        std::fs::copy(from.join(f), to.join(f)).map_err(|e| format!("copy {f}: {e}"))?;
    }
    // The copy may sit inside this workspace's target dir: make it a workspace of its own, or
    // cargo takes it for an unlisted member of nanotype's workspace and refuses to build it.
    let manifest = to.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
    if !text.contains("[workspace]") {
        std::fs::write(&manifest, format!("{text}\n[workspace]\n")).map_err(|e| e.to_string())?;
    }
    // The workspace's lockfile pins the same worker / wasm-bindgen versions, so nothing new
    // is resolved.
    let _ = std::fs::copy(workspace_root().join("Cargo.lock"), to.join("Cargo.lock"));
    Ok(())
}

pub fn run(sizes: &Sizes, dir: &Path) -> Vec<Outcome> {
    if sizes.quick {
        return skipped("--quick: two release wasm builds take minutes; run without --quick");
    }
    let tools = match tools() {
        Ok(t) => t,
        Err(why) => return skipped(why),
    };
    if !spike_dir().join("src/lib.rs").exists() {
        return skipped(format!(
            "the reference Worker is not at {}",
            spike_dir().display()
        ));
    }
    let example = workspace_root().join("examples/tasks");
    let example_wasm = match build(
        &tools,
        &example,
        &dir.join("example-build"),
        &dir.join("example-build.log"),
    ) {
        Ok(w) => w,
        Err(why) => return skipped(why),
    };
    let spike = dir.join("spike");
    if let Err(why) = copy_spike(&spike) {
        return skipped(why);
    }
    let spike_wasm = match build(
        &tools,
        &spike,
        &spike.join("build"),
        &dir.join("spike-build.log"),
    ) {
        Ok(w) => w,
        Err(why) => return skipped(why),
    };
    let (e, s) = (
        std::fs::read(&example_wasm).expect("read wasm"),
        std::fs::read(&spike_wasm).expect("read wasm"),
    );
    let (eg, sg) = (gzip_len(&e), gzip_len(&s));
    let raw = format!(
        "`worker-build --release` (0.8.7, wasm-bindgen 0.2.130, wasm-opt from binaryen 132), both with \
         CARGO_PROFILE_RELEASE_OPT_LEVEL=s, _LTO=true, _CODEGEN_UNITS=1, _STRIP=debuginfo (the spike's \
         profile; the workspace sets none, so these env overrides make the builds alike). gzip: \
         level 9.\n\n- example `index_bg.wasm`: {} bytes raw, {} bytes gzip\n- reference DO + D1 Worker \
         `index_bg.wasm`: {} bytes raw, {} bytes gzip",
        e.len(),
        eg,
        s.len(),
        sg
    );
    vec![
        Outcome::Figure(Figure {
            part: "size",
            measure: "example wasm vs minimal DO + D1 Worker, raw".into(),
            subject: Amount::new(e.len() as f64 / 1024.0, "KiB"),
            baseline: Some((
                "reference Worker".into(),
                Amount::new(s.len() as f64 / 1024.0, "KiB"),
            )),
            target: Target::RatioAtMost(1.5),
            raw: raw.clone(),
        }),
        Outcome::Figure(Figure {
            part: "size",
            measure: "example wasm vs minimal DO + D1 Worker, gzip".into(),
            subject: Amount::new(eg as f64 / 1024.0, "KiB"),
            baseline: Some((
                "reference Worker".into(),
                Amount::new(sg as f64 / 1024.0, "KiB"),
            )),
            target: Target::RatioAtMost(1.5),
            raw,
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/t/b/out"), Path::new("/w/ex/tasks")),
            PathBuf::from("../../../t/b/out")
        );
        assert_eq!(
            relative(Path::new("/w/a/b"), Path::new("/w/a")),
            PathBuf::from("b")
        );
    }
}
