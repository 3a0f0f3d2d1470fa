// `nanotype new` used as a user would, outside this repository (in a temporary folder):
//   the project is created, built to wasm, its D1 migrations applied to a local D1, served by
//   `wrangler dev`; a row is created and read back over HTTP with the generated token; then a
//   `nanotype dev` serves it, a field is added to the struct while it runs, and it writes the
//   next migrations, rebuilds and restarts by itself: the old row reads back with the new field;
//   then a
//   unique index that one room's rows cannot take: that room answers 503 `migration_failed`,
//   the others go on.
// Run by scripts/test.sh after scripts/setup-tools.sh (worker-build, wasm-bindgen, wrangler).
// Prints "N passed, N failed".
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TOOLS = join(ROOT, "examples/tasks/node_modules");
const WRANGLER = join(TOOLS, ".bin/wrangler");
const PORT = Number(process.env.NT_SCAFFOLD_PORT || 18797);
const BASE = `http://127.0.0.1:${PORT}`;
const work = mkdtempSync(join(tmpdir(), "nanotype-new-"));
const app = join(work, "notes-app");
const persist = join(work, "state");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let passed = 0, failed = 0, dev = null;

function run(cmd, args, opts = {}) {
  const t0 = Date.now();
  const out = execFileSync(cmd, args, { cwd: app, env: process.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20, ...opts });
  console.log(`   ${cmd.split("/").pop()} ${args.slice(0, 3).join(" ")} (${Date.now() - t0} ms)`);
  return out;
}

function build() {
  // The project's own target dir is this repository's (a symlink): the dependencies it shares
  // with the workspace are already compiled. LTO off: a test build, not a deploy.
  run("worker-build", ["--release"], { env: { ...process.env, CARGO_PROFILE_RELEASE_LTO: "false" } });
}

async function startDev() {
  dev = spawn(WRANGLER, ["dev", "--local", "--ip", "127.0.0.1", "--port", String(PORT), "--inspector-port", String(PORT + 1000),
    "--persist-to", persist, "--show-interactive-dev-session=false"], { cwd: app, env: process.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  dev.stdout.on("data", (d) => (log += d));
  dev.stderr.on("data", (d) => (log += d));
  for (let i = 0; i < 600; i++) {
    if (dev.exitCode !== null) throw new Error("wrangler dev exited:\n" + log.slice(-3000));
    try {
      const r = await fetch(`${BASE}/health`, { signal: AbortSignal.timeout(1000) });
      await r.text();
      if (r.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error("wrangler dev not ready:\n" + log.slice(-3000));
}

async function stopDev() {
  if (!dev) return;
  try { process.kill(-dev.pid, "SIGINT"); } catch {}
  for (let i = 0; i < 100 && dev.exitCode === null && dev.signalCode === null; i++) await sleep(50);
  try { process.kill(-dev.pid, "SIGKILL"); } catch {}
  for (let i = 0; i < 100; i++) {
    try { await fetch(`${BASE}/health`, { signal: AbortSignal.timeout(300) }); } catch { break; }
    await sleep(100);
  }
  dev = null;
}

async function http(method, path, body, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json };
}

async function waitFor(label, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn().catch((e) => e);
    if (last && !(last instanceof Error)) return last;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${label}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)${note ? "  " + JSON.stringify(note) : ""}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

try {
  await check("the README's 'Using it' commands, as written, from a fresh clone in a temporary folder", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = readme.slice(readme.indexOf("## Using it")).match(/```sh\n([\s\S]*?)```/)[1];
    const place = join(work, "readme");
    mkdirSync(place);
    execFileSync("git", ["clone", "-q", ROOT, join(place, "nanotype")]);
    const bin = join(place, "cargo-root");
    // The commands' own text, unchanged; the environment keeps the install out of ~/.cargo, shares
    // this workspace's compiled dependencies, and makes the install's release build a quick one.
    const env = {
      ...process.env, CARGO_INSTALL_ROOT: bin, PATH: `${join(bin, "bin")}:${process.env.PATH}`,
      CARGO_TARGET_DIR: join(ROOT, "target"), CARGO_PROFILE_RELEASE_OPT_LEVEL: "0",
      CARGO_PROFILE_RELEASE_LTO: "false", CARGO_PROFILE_RELEASE_CODEGEN_UNITS: "256", CARGO_PROFILE_RELEASE_DEBUG: "false",
    };
    const out = run("bash", ["-euo", "pipefail", "-c", block], { cwd: join(place, "nanotype"), env });
    assert.match(out, /match the structs/);
    assert.ok(existsSync(join(place, "my-app", "Cargo.lock")), "the checkout's lockfile came along");
    // Inside a workspace (the checkout), the scaffold refuses and says where instead.
    let refusal = "";
    try {
      execFileSync(join(bin, "bin", "nanotype"), ["new", "inside", "--nanotype-path", "."], { cwd: join(place, "nanotype"), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) { refusal = String(e.stderr); }
    assert.match(refusal, /inside the Cargo workspace .*nanotype new \.\.\/inside/s);
    assert.ok(!existsSync(join(place, "nanotype", "inside")), "nothing written inside the checkout");
    return { commands: block.trim().split("\n").length };
  });

  let token;
  await check("nanotype new writes a project that builds and serves its table", async () => {
    const printed = execFileSync(join(ROOT, "target/debug/nanotype"), ["new", app, "--nanotype-path", ROOT], { encoding: "utf8" });
    console.log(printed);
    // The deploy steps it prints: D1's migrations go out before the Worker that needs them.
    const remote = printed.indexOf("npx wrangler d1 migrations apply DB --remote"), deploy = printed.indexOf("npx wrangler deploy");
    assert.ok(printed.includes("npx wrangler d1 create notes-app\n") && remote > 0 && deploy > remote, printed);
    token = readFileSync(join(app, ".dev.vars"), "utf8").match(/API_TOKENS="([^=]+)=/)[1];
    assert.match(token, /^local-[0-9a-f]{24}$/);
    // Offline-friendly: the workspace's lockfile pins the same dependencies; its tools and
    // compiled dependencies are reused.
    cpSync(join(ROOT, "Cargo.lock"), join(app, "Cargo.lock"));
    symlinkSync(join(ROOT, "target"), join(app, "target"));
    symlinkSync(TOOLS, join(app, "node_modules"));
    assert.match(run("cargo", ["run", "-q", "--bin", "gen-migrations", "--", "--check"]), /match the structs/);
    assert.match(run(join(ROOT, "target/debug/nanotype"), ["doctor"]), /agrees with the code/);
    // The tools step it prints: what is installed at its pinned version is skipped.
    const tools = run(join(ROOT, "target/debug/nanotype"), ["tools"]);
    assert.match(tools, /worker-build 0\.8\.7: installed/);
    assert.match(tools, /wasm-bindgen [0-9.]+: installed/);
    build();
    run(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
    await startDev();
    assert.equal((await http("GET", "/rooms/demo/notes")).status, 401, "no token, no data");
    const created = await http("POST", "/rooms/demo/notes", { text: "first" }, token);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const strong = await http("GET", "/rooms/demo/notes?consistency=strong", undefined, token);
    assert.deepEqual(strong.body.rows, [{ id: 1, text: "first" }]);
    const replica = await waitFor("the note in D1", async () => {
      const r = await http("GET", "/rooms/demo/notes", undefined, token);
      return r.body.source === "replica" && r.body.rows.length === 1 && r;
    });
    return { id: created.body.row.id, replica: replica.body.rows };
  });

  await check("nanotype dev: serves the app, and a field added to the struct is served (migrated, rebuilt, restarted on the same state) with no command typed", async () => {
    await stopDev();
    // The edit loop as a user runs it: one command, left running.
    const t0 = Date.now();
    dev = spawn(join(ROOT, "target/debug/nanotype"), ["dev", "--port", String(PORT), "--persist-to", persist], {
      cwd: app, env: { ...process.env, WRANGLER, CARGO_PROFILE_RELEASE_LTO: "false" }, stdio: ["ignore", "pipe", "pipe"], detached: true,
    });
    let log = "";
    dev.stdout.on("data", (d) => (log += d));
    dev.stderr.on("data", (d) => (log += d));
    const printed = (re, ms) => waitFor(`nanotype dev to print ${re}`, async () => {
      if (dev.exitCode !== null) throw new Error("nanotype dev exited:\n" + log.slice(-3000));
      return re.test(log) && log;
    }, ms);
    await printed(/nanotype dev: http:\/\/127\.0\.0\.1:\d+[\s\S]*dashboard: +http[^\n]*#token=local-/, 300000);
    const firstStartMs = Date.now() - t0;
    assert.ok(log.includes(`token:        ${token}`), log.slice(-2000));
    const before = await http("GET", "/rooms/demo/notes?consistency=strong", undefined, token);
    assert.deepEqual(before.body.rows, [{ id: 1, text: "first" }], "the state of the earlier run is kept");
    // The one-field change, saved as an editor would; nothing else is typed.
    const t1 = Date.now();
    const schema = join(app, "src/schema.rs");
    writeFileSync(schema, readFileSync(schema, "utf8").replace(
      "    pub text: String,\n",
      "    pub text: String,\n    #[nanotype(default = \"inbox\")]\n    pub folder: String,\n",
    ));
    await printed(/serving the change at/, 300000);
    const strong = await waitFor("the new field served", async () => {
      const r = await http("GET", "/rooms/demo/notes?consistency=strong", undefined, token);
      return r.status === 200 && r.body.rows?.[0]?.folder === "inbox" && r;
    }, 30000);
    const loopMs = Date.now() - t1;
    assert.deepEqual(strong.body.rows, [{ id: 1, text: "first", folder: "inbox" }]);
    assert.match(log, /0002_\w+\.sql/, "the migration was written");
    const replica = await waitFor("D1 migrated too", async () => {
      const r = await http("GET", "/rooms/demo/notes", undefined, token);
      return r.body.source === "replica" && r.body.rows?.[0]?.folder === "inbox" && r;
    });
    const second = await http("POST", "/rooms/demo/notes", { text: "second", folder: "work" }, token);
    assert.equal(second.status, 201);
    const timing = log.match(/serving the change at [^\n]*/)[0];
    return { firstStartMs, loopMs, timing, replica: replica.body.rows.length };
  });

  await check("a migration that fails in one room: that room refuses to open with a clear error, other rooms go on, nothing half-applied", async () => {
    // Room `dups` holds two notes with the same text; room `clean` does not.
    for (const text of ["same", "same"]) assert.equal((await http("POST", "/rooms/dups/notes", { text }, token)).status, 201);
    assert.equal((await http("POST", "/rooms/clean/notes", { text: "only" }, token)).status, 201);
    await waitFor("both rooms in D1", async () => {
      const a = await http("GET", "/rooms/dups/notes", undefined, token), b = await http("GET", "/rooms/clean/notes", undefined, token);
      return a.body.source === "replica" && a.body.rows.length === 2 && b.body.source === "replica" && b.body.rows.length === 1;
    });
    await stopDev();
    // The text becomes unique: a unique index the duplicates in `dups` cannot take.
    const schema = join(app, "src/schema.rs");
    writeFileSync(schema, readFileSync(schema, "utf8").replace("    pub text: String,\n", "    #[nanotype(unique)]\n    pub text: String,\n"));
    assert.match(run("cargo", ["run", "-q", "--bin", "gen-migrations", "--", "--name", "unique_note_text"]), /0003_unique_note_text/);
    build();
    // D1 refuses it first, as a deploy would find (D1 before the Worker), and keeps nothing.
    let d1Error = "";
    try { run(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]); }
    catch (e) { d1Error = String(e.stderr || e.stdout || e.message); }
    assert.match(d1Error, /UNIQUE constraint failed/);
    // Deployed anyway: each room's Durable Object runs the migration on its first request.
    await startDev();
    const status = await http("GET", "/rooms/dups/_sync", undefined, token);
    assert.equal(status.status, 503, JSON.stringify(status.body));
    assert.equal(status.body.error.code, "migration_failed");
    assert.match(status.body.error.message, /0003_unique_note_text failed: .*UNIQUE constraint failed/);
    const write = await http("POST", "/rooms/dups/notes", { text: "another" }, token);
    assert.equal(write.status, 503);
    assert.equal(write.body.error.code, "migration_failed");
    // The other room migrates and works, reads and writes.
    const ok = await http("POST", "/rooms/clean/notes", { text: "second" }, token);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const dup = await http("POST", "/rooms/clean/notes", { text: "second" }, token);
    assert.equal(dup.status, 409, "the new index holds in the room that has it");
    assert.equal(dup.body.error.code, "constraint_violation");
    const cleanStatus = await http("GET", "/rooms/clean/_sync", undefined, token);
    assert.equal(cleanStatus.status, 200);
    // The failing room's rows are whole: D1 still serves them.
    const rows = await http("GET", "/rooms/dups/notes", undefined, token);
    assert.equal(rows.status, 200);
    assert.deepEqual(rows.body.rows.map((r) => r.text), ["same", "same"]);
    return { status: status.status, message: status.body.error.message.slice(0, 120), otherRoom: ok.status };
  });
} finally {
  await stopDev();
  rmSync(work, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
