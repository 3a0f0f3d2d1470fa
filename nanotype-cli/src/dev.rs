//! `nanotype dev`: the edit loop in one command. Generates the migrations from the structs,
//! builds the Worker (`worker-build --dev`: unoptimised, a change rebuilds in seconds; or
//! `--release`), applies the D1 migrations to every local shard,
//! runs `wrangler dev` and prints the URL, the local token and the dashboard's link; then watches
//! the crate's sources and, on a change, does it again, restarting `wrangler dev` on the same
//! local state (rooms and D1 are kept; each room applies its new migrations on its next request).
//!
//! The running server keeps serving while a change builds; a change that does not build (or
//! whose migration is refused) is reported and the old server goes on until the next change.
//! Files are watched by polling their modification times every 300 ms: a few dozen files, and no
//! platform watcher to install.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

/// What `nanotype dev` runs, and where.
#[derive(Debug, Clone)]
pub struct Dev {
    /// The Worker crate's folder.
    pub crate_dir: PathBuf,
    /// The port `wrangler dev` listens on, on 127.0.0.1.
    pub port: u16,
    /// Local state (rooms' SQLite and D1), kept across restarts.
    pub persist_to: PathBuf,
    /// The wrangler executable.
    pub wrangler: PathBuf,
    /// The worker-build executable.
    pub worker_build: PathBuf,
    /// Stop after the first start (for scripts): build, migrate, serve, print, return.
    pub once: bool,
    /// Build with `--release` (optimised, wasm-opt) instead of `--dev`, which rebuilds a
    /// one-field change in seconds rather than a minute.
    pub release: bool,
}

/// The running `wrangler dev`.
struct Server {
    child: Child,
}

impl Dev {
    fn manifest(&self) -> Result<PathBuf, String> {
        crate::config::find_manifest(&self.crate_dir).ok_or_else(|| {
            format!(
                "no Cargo.toml with [package.metadata.nanotype] at or above {}",
                self.crate_dir.display()
            )
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// gen-migrations (in this process), then the Worker's build. The server keeps running.
    fn build(&self, log: &mut impl Write) -> Result<Vec<(&'static str, Duration)>, String> {
        let mut times = Vec::new();
        let t = Instant::now();
        let manifest = self.manifest()?;
        let args = crate::command::Args::parse_from([
            "gen-migrations".as_ref(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ]);
        match crate::command::run(&args) {
            Ok(code) if code == std::process::ExitCode::SUCCESS => {}
            Ok(_) => return Err("gen-migrations refused the change (above)".into()),
            Err(e) => return Err(format!("gen-migrations: {}", e.trim_end())),
        }
        times.push(("gen-migrations", t.elapsed()));
        let t = Instant::now();
        let profile = if self.release { "--release" } else { "--dev" };
        let _ = writeln!(log, "[nanotype dev] worker-build {profile}");
        let mut build = Command::new(&self.worker_build);
        build.arg(profile).current_dir(&self.crate_dir);
        // worker-build fetches these tools unless told where they are: the installed
        // wasm-bindgen, and the crate's npm wasm-opt and esbuild, when the caller set none.
        let tools = [
            ("WASM_BINDGEN_BIN", on_path("wasm-bindgen")),
            (
                "WASM_OPT_BIN",
                Some(self.crate_dir.join("node_modules/.bin/wasm-opt")),
            ),
            (
                "ESBUILD_BIN",
                Some(self.crate_dir.join("node_modules/.bin/esbuild")),
            ),
        ];
        for (var, path) in tools {
            if let (None, Some(path)) = (std::env::var_os(var), path.filter(|p| p.exists())) {
                build.env(var, path);
            }
        }
        let status = build
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.worker_build.display()))?;
        if !status.success() {
            return Err(format!("worker-build failed ({status})"));
        }
        times.push(("build", t.elapsed()));
        Ok(times)
    }

    /// The D1 migrations applied to every local shard.
    fn migrate(&self) -> Result<Duration, String> {
        let t = Instant::now();
        let manifest = self.manifest()?;
        let config = crate::config::load(&manifest)?;
        crate::shards::migrate(&crate::shards::Migrate {
            wrangler: self.crate_dir.join("wrangler.toml"),
            migrations: config.migrations,
            remote: false,
            persist_to: Some(self.persist_to.clone()),
            bin: self.wrangler.clone(),
        })?;
        Ok(t.elapsed())
    }

    fn start(&self) -> Result<(Server, Duration), String> {
        let t = Instant::now();
        let child = Command::new(&self.wrangler)
            .args(["dev", "--local", "--ip", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--persist-to")
            .arg(&self.persist_to)
            .arg("--show-interactive-dev-session=false")
            .current_dir(&self.crate_dir)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.wrangler.display()))?;
        let mut server = Server { child };
        let deadline = Instant::now() + Duration::from_mins(2);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("wrangler dev exited ({status})"));
            }
            if health(self.port) {
                return Ok((server, t.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server.stop(self.port);
        Err("wrangler dev did not answer /health within 120 s".into())
    }

    fn banner(&self, log: &mut impl Write) {
        let token = local_token(&self.crate_dir.join(".dev.vars"));
        let url = self.url();
        let _ = writeln!(log, "\n  nanotype dev: {url}");
        match token {
            Some(t) => {
                let _ = writeln!(log, "  token:        {t}   (from .dev.vars)");
                let _ = writeln!(log, "  dashboard:    {url}/_nanotype/dashboard#token={t}");
                let _ = writeln!(log, "  try:          curl -H 'authorization: Bearer {t}' {url}/_nanotype/openapi.json");
            }
            None => {
                let _ = writeln!(
                    log,
                    "  dashboard:    {url}/_nanotype/dashboard (no API_TOKENS in .dev.vars)"
                );
            }
        }
        let _ = writeln!(log, "  watching src/ and Cargo.toml; Ctrl-C stops\n");
    }
}

impl Server {
    /// SIGINT, so wrangler stops its workerd too; then the port is free.
    fn stop(&mut self, port: u16) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        #[cfg(not(unix))]
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(15);
        while health(port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Run the loop. It returns only on an error before the first start, or with `once`; later, a
/// change that fails (to build, to migrate D1, to start) is reported and the loop goes on.
pub fn run(dev: &Dev, log: &mut impl Write) -> Result<(), String> {
    let t0 = Instant::now();
    let mut times = dev.build(log)?;
    times.push(("D1 migrations", dev.migrate()?));
    let (server, started) = dev.start()?;
    let mut server = Some(server);
    times.push(("wrangler dev", started));
    let _ = writeln!(
        log,
        "[nanotype dev] ready in {} ({})",
        secs(t0.elapsed()),
        steps(&times)
    );
    dev.banner(log);
    if dev.once {
        if let Some(mut s) = server {
            s.stop(dev.port);
        }
        return Ok(());
    }
    let mut seen = snapshot(&dev.crate_dir);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = snapshot(&dev.crate_dir);
        if now == seen {
            continue;
        }
        // Let an editor finish writing: wait until nothing changed for 200 ms (bounded).
        let mut settled = now;
        for _ in 0..25 {
            std::thread::sleep(Duration::from_millis(200));
            let again = snapshot(&dev.crate_dir);
            if again == settled {
                break;
            }
            settled = again;
        }
        seen = settled;
        let t = Instant::now();
        let _ = writeln!(
            log,
            "[nanotype dev] change seen: rebuilding (the server keeps serving)"
        );
        let mut times = match dev.build(log) {
            Ok(times) => times,
            Err(e) => {
                let _ = writeln!(log, "[nanotype dev] not restarted: {e}\n[nanotype dev] watching for the next change");
                continue;
            }
        };
        if let Some(mut old) = server.take() {
            old.stop(dev.port);
        }
        // A D1 migration D1 refuses is reported; the Worker starts anyway, as a deploy would
        // (each room migrates itself and says what failed).
        match dev.migrate() {
            Ok(m) => times.push(("D1 migrations", m)),
            Err(e) => {
                let _ = writeln!(
                    log,
                    "[nanotype dev] the local D1 refused its migrations: {e}"
                );
            }
        }
        match dev.start() {
            Ok((s, started)) => {
                server = Some(s);
                times.push(("wrangler dev", started));
                let _ = writeln!(
                    log,
                    "[nanotype dev] serving the change at {} in {} ({})",
                    dev.url(),
                    secs(t.elapsed()),
                    steps(&times)
                );
            }
            Err(e) => {
                let _ = writeln!(
                    log,
                    "[nanotype dev] not serving: {e}\n[nanotype dev] watching for the next change"
                );
            }
        }
        // What gen-migrations wrote is not a change of ours.
        seen = snapshot(&dev.crate_dir);
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn steps(times: &[(&str, Duration)]) -> String {
    times
        .iter()
        .map(|(what, d)| format!("{what} {}", secs(*d)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every watched file (`src/**`, `Cargo.toml`) with its modification time, sorted.
fn snapshot(crate_dir: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![crate_dir.join("src")];
    let mut budget = 10_000;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            budget -= 1;
            if budget == 0 {
                break;
            }
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = e.metadata().and_then(|m| m.modified()).ok();
                out.push((path, modified));
            }
        }
    }
    let manifest = crate_dir.join("Cargo.toml");
    let modified = std::fs::metadata(&manifest).and_then(|m| m.modified()).ok();
    out.push((manifest, modified));
    out.sort();
    out
}

/// `name` in a folder of `$PATH`, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether `GET /health` on 127.0.0.1:`port` answers 200.
fn health(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The first token of `API_TOKENS` in a `.dev.vars` file (`API_TOKENS="token=prefix,…"`).
pub fn local_token(dev_vars: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dev_vars).ok()?;
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("API_TOKENS="))?;
    let value = line.trim().trim_matches('"');
    let (token, _) = value.split(',').next()?.split_once('=')?;
    Some(token.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_token_is_read_from_dev_vars() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".dev.vars");
        std::fs::write(&f, "JWT_SECRET=x\nAPI_TOKENS=\"local-abc=*,other=team-\"\n").unwrap();
        assert_eq!(local_token(&f).as_deref(), Some("local-abc"));
        std::fs::write(&f, "JWT_SECRET=x\n").unwrap();
        assert_eq!(local_token(&f), None);
    }

    #[test]
    fn a_changed_source_changes_the_snapshot_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/bin")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "// a").unwrap();
        let before = snapshot(dir.path());
        assert_eq!(before.len(), 2);
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
        std::fs::write(dir.path().join("migrations/0001.sql"), "--").unwrap();
        assert_eq!(
            snapshot(dir.path()),
            before,
            "migrations are outputs, not watched"
        );
        std::fs::write(dir.path().join("src/bin/x.rs"), "// new").unwrap();
        assert_ne!(snapshot(dir.path()), before, "a new file under src");
    }
}
