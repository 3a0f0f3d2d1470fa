// The pieces of the end-to-end suite that are not checks: wrangler dev as a child process group,
// HTTP on 127.0.0.1, the local D1 read directly with `wrangler d1 execute`, bounded waits.
import { createHmac, createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { spawn, execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(EXAMPLE, "../..");
export const STATE = resolve(process.env.NT_E2E_STATE || join(ROOT, ".state/e2e"));
export const PERSIST = join(STATE, "persist");
export const MIGRATIONS = resolve(process.env.NT_MIGRATIONS_DIR || join(ROOT, "migrations"));
export const PORT = Number(process.env.NT_E2E_PORT || 18787);
export const BASE = `http://127.0.0.1:${PORT}`;
const WRANGLER = join(EXAMPLE, "node_modules/.bin/wrangler");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A keep-alive connection that wrangler's proxy closed while it sat idle in Node's pool fails the
// next request sent on it ("other side closed", before the request reached the Worker); that one
// request is sent once more, on a new connection. A check that idles for seconds (tsc, a fuzzer
// run) would otherwise fail its next call.
const poolFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  try {
    return await poolFetch(input, init);
  } catch (e) {
    if (e?.cause?.code === "UND_ERR_SOCKET" && !init?.signal?.aborted) return poolFetch(input, init);
    throw e;
  }
};

/// Test configs, written into the state dir from the example's wrangler.toml (never deployed):
/// `main`: the example's bindings; `offline`: the same Worker and Durable Objects with a D1
/// database that has no tables until the suite applies the migrations ("D1 unavailable");
/// `lazy`: the main bindings with a flush window so long that only the delivery alarm sends.
export const CONFIGS = {
  main: join(STATE, "wrangler.e2e.toml"),
  offline: join(STATE, "wrangler.offline.toml"),
  lazy: join(STATE, "lazy/wrangler.lazy.toml"),
  partial: join(STATE, "wrangler.partial.toml"),
  audit: join(STATE, "audit/wrangler.audit.toml"),
  shards: join(STATE, "shards/wrangler.shards.toml"),
};
/// The D1 bindings of the `shards` config: the replica over three local D1 databases, named by
/// configuration only (`NANOTYPE_D1_SHARDS`), the example's code unchanged.
export const SHARDS = ["DB", "DB_1", "DB_2"];
/// How often rooms audit their replica in the `audit` config.
export const AUDIT_EVERY_MS = 3000;
/// The tokens of the test `.dev.vars`: one for every room, one for rooms starting `alpha-`.
export const TOKENS = { all: "e2e-token-all", alpha: "e2e-token-alpha" };
/// Users' JWTs (the example's `USERS` policy): an HS256 secret and an RSA and an EC key pair
/// made by `prepare` for this state (kept in it, so the checks' process signs with the same),
/// whose public halves are the `JWKS` variable.
let jwtKeys = null;
function keys() {
  if (jwtKeys) return jwtKeys;
  const file = join(STATE, "jwt-keys.json");
  if (!existsSync(file)) {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = (k) => k.export({ type: "pkcs8", format: "pem" });
    mkdirSync(STATE, { recursive: true });
    writeFileSync(file, JSON.stringify({
      secret: randomBytes(32).toString("hex"),
      rsa: pem(rsa.privateKey),
      ec: pem(ec.privateKey),
      jwks: { keys: [
        { ...rsa.publicKey.export({ format: "jwk" }), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...ec.publicKey.export({ format: "jwk" }), kid: "ec-1", alg: "ES256", use: "sig" },
      ] },
    }));
  }
  const k = JSON.parse(readFileSync(file, "utf8"));
  jwtKeys = { ...k, rsa: createPrivateKey(k.rsa), ec: createPrivateKey(k.ec) };
  return jwtKeys;
}

/// A JWT signed here: `alg` HS256, RS256 or ES256, with `claims` (an hour's `exp` unless given).
export function jwt(alg, claims) {
  const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
  const kid = { RS256: "rsa-1", ES256: "ec-1" }[alg];
  const data = `${b64({ alg, typ: "JWT", ...(kid ? { kid } : {}) })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  const k = keys();
  const sig = alg === "HS256"
    ? createHmac("sha256", k.secret).update(data).digest()
    : alg === "RS256"
      ? sign("sha256", Buffer.from(data), k.rsa)
      : sign("sha256", Buffer.from(data), { key: k.ec, dsaEncoding: "ieee-p1363" });
  return `${data}.${sig.toString("base64url")}`;
}

/// The delivery alarm's delay in the `lazy` config.
export const LAZY_DELIVERY_MS = 1500;

export function writeConfigs() {
  mkdirSync(STATE, { recursive: true });
  const base = readFileSync(join(EXAMPLE, "wrangler.toml"), "utf8")
    .replace(/^main = .*$/m, `main = ${JSON.stringify(join(EXAMPLE, "build/index.js"))}`)
    .replace(/^migrations_dir = .*$/m, `migrations_dir = ${JSON.stringify(MIGRATIONS)}`);
  writeFileSync(CONFIGS.main, base);
  const offline = base
    .replace(/^database_name = .*$/m, 'database_name = "nanotype-tasks-offline"')
    .replace(/^database_id = .*$/m, 'database_id = "00000000-0000-4000-8000-0000000dead1"');
  if (offline === base) throw new Error("could not derive the offline config");
  writeFileSync(CONFIGS.offline, offline);
  // `partial`: a D1 whose `comments` lacks `body` (as if that migration had not been applied):
  // D1 refuses every comment for good until the column is added. Its migrations are the app's,
  // with the files that create `comments` replaced by those in `e2e/migrations-partial` (the
  // same files with that column left out), each of which must name one of the app's.
  const partialDir = join(STATE, "migrations-partial");
  const overrides = join(EXAMPLE, "e2e/migrations-partial");
  mkdirSync(partialDir, { recursive: true });
  const appFiles = readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql"));
  for (const f of readdirSync(overrides)) {
    if (!appFiles.includes(f)) throw new Error(`${overrides}/${f} replaces no migration of ${MIGRATIONS}`);
  }
  for (const f of appFiles) {
    const from = readdirSync(overrides).includes(f) ? join(overrides, f) : join(MIGRATIONS, f);
    writeFileSync(join(partialDir, f), readFileSync(from, "utf8"));
  }
  writeFileSync(CONFIGS.partial, base
    .replace(/^database_name = .*$/m, 'database_name = "nanotype-tasks-partial"')
    .replace(/^database_id = .*$/m, 'database_id = "00000000-0000-4000-8000-0000000dead2"')
    .replace(/^migrations_dir = .*$/m, `migrations_dir = ${JSON.stringify(partialDir)}`));
  // Secrets: wrangler dev reads `.dev.vars` next to the config.
  const devVars = `API_TOKENS="${TOKENS.all}=*,${TOKENS.alpha}=alpha-"\nJWT_SECRET="${keys().secret}"\nJWKS='${JSON.stringify(keys().jwks)}'\n`;
  writeFileSync(join(STATE, ".dev.vars"), devVars);
  mkdirSync(dirname(CONFIGS.lazy), { recursive: true });
  writeFileSync(join(dirname(CONFIGS.lazy), ".dev.vars"), devVars);
  writeFileSync(CONFIGS.lazy, base + `\n[vars]\nNANOTYPE_FLUSH_WINDOW_MS = "600000"\nNANOTYPE_DELIVERY_DELAY_MS = "${LAZY_DELIVERY_MS}"\n`);
  mkdirSync(dirname(CONFIGS.audit), { recursive: true });
  writeFileSync(join(dirname(CONFIGS.audit), ".dev.vars"), devVars);
  writeFileSync(CONFIGS.audit, base + `\n[vars]\nNANOTYPE_AUDIT_INTERVAL_MS = "${AUDIT_EVERY_MS}"\n`);
  // `shards`: the same Worker over three D1 databases of its own.
  mkdirSync(dirname(CONFIGS.shards), { recursive: true });
  writeFileSync(join(dirname(CONFIGS.shards), ".dev.vars"), devVars);
  const shardName = (i) => `database_name = "nanotype-tasks-shard${i}"`;
  const shardId = (i) => `database_id = "00000000-0000-4000-8000-0000000005d${i}"`;
  let shards = base.replace(/^database_name = .*$/m, shardName(0)).replace(/^database_id = .*$/m, shardId(0));
  if (!shards.includes(shardName(0)) || !shards.includes(shardId(0))) throw new Error("could not derive the shards config");
  for (const [i, b] of SHARDS.entries()) {
    if (i === 0) continue;
    shards += `\n[[d1_databases]]\nbinding = "${b}"\n${shardName(i)}\n${shardId(i)}\nmigrations_dir = ${JSON.stringify(MIGRATIONS)}\n`;
  }
  writeFileSync(CONFIGS.shards, shards + `\n[vars]\nNANOTYPE_D1_SHARDS = "${SHARDS.join(",")}"\n`);
}

function run(args, timeoutMs = 120000) {
  return new Promise((resolveRun, reject) => {
    execFile(WRANGLER, args, { cwd: STATE, env: process.env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`wrangler ${args.slice(0, 3).join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolveRun(stdout);
    });
  });
}

/// Applies the D1 migrations to the local D1 file. When workerd is running it shares the file:
/// a moment when it holds the lock (SQLITE_BUSY, seen in CI while a room's alarm retried D1) is
/// waited out as `d1` does, a bounded number of times. Each migration is its own transaction and
/// is recorded once applied, so a retry applies only the ones that did not land.
export async function applyMigrations(config = "main", binding = "DB") {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(["d1", "migrations", "apply", binding, "--local", "--persist-to", PERSIST, "--config", CONFIGS[config]]);
    } catch (e) {
      if (attempt >= 5 || !/SQLITE_BUSY|database is locked/.test(String(e.message))) throw e;
      await sleep(200 * attempt);
    }
  }
}

/// Rows of the (last) statement in `sql`, read from the local D1 file directly. The file is
/// shared with the running workerd: a moment when it holds the write lock (SQLITE_BUSY) is
/// waited out, a bounded number of times.
export async function d1(sql, config = "main", binding = "DB") {
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await run(["d1", "execute", binding, "--local", "--persist-to", PERSIST, "--config", CONFIGS[config], "--command", sql, "--json"]);
      const parsed = JSON.parse(out.slice(out.indexOf("[")));
      return parsed[parsed.length - 1].results;
    } catch (e) {
      if (attempt >= 5 || !/SQLITE_BUSY|database is locked/.test(String(e.message))) throw e;
      await sleep(200 * attempt);
    }
  }
}

export class Wrangler {
  constructor(config = "main") {
    this.config = config;
    this.log = "";
    this.child = null;
  }
  async start(timeoutMs = 60000) {
    const t0 = performance.now();
    this.child = spawn(
      WRANGLER,
      ["dev", "--local", "--ip", "127.0.0.1", "--port", String(PORT), "--inspector-port", String(PORT + 1000),
        "--persist-to", PERSIST, "--config", CONFIGS[this.config], "--show-interactive-dev-session=false", "--log-level", process.env.NT_E2E_LOG_LEVEL || "info"],
      { cwd: STATE, stdio: ["ignore", "pipe", "pipe"], env: process.env, detached: true },
    );
    const keep = (d) => { this.log = (this.log + d).slice(-400000); if (process.env.VERBOSE) process.stderr.write(d); };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error("wrangler dev exited early:\n" + this.log.slice(-4000));
      try {
        const r = await fetch(`${BASE}/health`, { signal: AbortSignal.timeout(2000) });
        await r.text();
        if (r.ok) return performance.now() - t0;
      } catch {}
      await sleep(100);
    }
    throw new Error("wrangler dev not ready:\n" + this.log.slice(-4000));
  }
  get running() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null;
  }
  /// Stops wrangler and workerd: the whole process group (SIGKILL when `hard`).
  async stop(hard = false) {
    if (!this.child) return;
    const child = this.child;
    const signal = (s) => { try { process.kill(-child.pid, s); } catch {} };
    signal(hard ? "SIGKILL" : "SIGINT");
    const t = Date.now();
    while (child.exitCode === null && child.signalCode === null && Date.now() - t < 10000) await sleep(50);
    signal("SIGKILL"); // whatever of the group is left
    await waitPortFree();
    this.child = null;
  }
}

async function waitPortFree() {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${BASE}/health`, { signal: AbortSignal.timeout(500) });
    } catch {
      return;
    }
    await sleep(100);
  }
}

/// One HTTP call; `{status, headers, body}` with the body parsed as JSON when it is JSON.
export async function http(method, path, body, { raw = false, timeoutMs = 30000, headers = {}, token = TOKENS.all } = {}) {
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  const init = { method, headers: { ...auth, ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = raw ? body : JSON.stringify(body);
    init.headers["content-type"] ??= "application/json";
  }
  const r = await fetch(BASE + path, init);
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, headers: r.headers, body: json };
}

/// Like `http`, but the status must be 2xx.
export async function ok(method, path, body) {
  const r = await http(method, path, body);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/// Polls `fn` until it returns a truthy value, at most `timeoutMs`.
export async function waitFor(label, fn, timeoutMs = 30000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

/// Runs `fn` over `items` with at most `limit` in flight.
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/// How many room Durable Objects hold nanotype's tables (a migration ledger), read from their
/// SQLite files with the sqlite3 CLI. (Miniflare gives every object it addresses a file with a
/// table of its own, `__miniflare_do_name`; production stores nothing for an object that never
/// wrote.)
export async function roomsWithState() {
  const dir = join(PERSIST, "v3/do/nanotype-tasks-Room");
  let files;
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  } catch {
    return 0;
  }
  let n = 0;
  for (const f of files) {
    // A room busy writing holds its file's lock for a moment: SQLite's busy handler waits.
    const out = await new Promise((ok, fail) => execFile("sqlite3", ["-readonly", "-cmd", ".timeout 10000", join(dir, f),
      "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '\\_nt\\_%' ESCAPE '\\'"],
      (err, stdout) => (err ? fail(err) : ok(stdout))));
    if (Number(out.trim()) > 0) n++;
  }
  return n;
}
