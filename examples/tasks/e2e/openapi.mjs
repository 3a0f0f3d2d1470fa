// The API's OpenAPI description, as outside tools use it against the Worker in local workerd:
// Schemathesis (PyPI) fuzzes every operation and follows the create → get/patch/delete links,
// and openapi-typescript turns it into types that a client type-checks against.
// Env: SCHEMATHESIS_BIN (scripts/e2e.sh installs it), OPENAPI_EXAMPLES (cases per operation).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BASE, EXAMPLE, STATE, TOKENS, http } from "./harness.mjs";

const EXAMPLES = Number(process.env.OPENAPI_EXAMPLES || 20);
const CLIENT = join(EXAMPLE, "client/openapi");

// Checks left out, each for a reason the description cannot express (docs/openapi.md):
//  positive_data_acceptance: a body the schema allows may still be refused with a 400 by what
//    only code decides: the app's validation (`rejected`), a key in the body that differs from
//    the path's, a `#[nanotype(json)]` field's Rust type, an Idempotency-Key reused for another
//    request (422), and integers written as `1.0`, which JSON Schema counts as integers and serde
//    does not.
//  use_after_free: a read after a delete is answered by the D1 replica unless it sends the
//    delete's token back (the documented default, `consistency=replica`), so it may see the row
//    for the few milliseconds before the delete replicates.
const EXCLUDED = ["positive_data_acceptance", "use_after_free"];

/// Runs `bin args`, resolving with its exit code and output (bounded by `timeoutMs`).
function run(bin, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: STATE, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { out += d; });
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`${bin} ran over ${timeoutMs} ms:\n${out.slice(-4000)}`)); }, timeoutMs);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

export async function openapiChecks({ check }) {
  await check("openapi: the description is served behind the policy and describes every table route", async () => {
    assert.equal((await http("GET", "/_nanotype/openapi.json", undefined, { token: null })).status, 401);
    const res = await http("GET", "/_nanotype/openapi.json", undefined, { token: TOKENS.alpha });
    assert.equal(res.status, 200);
    const doc = res.body;
    assert.equal(doc.openapi, "3.1.0");
    for (const t of ["tasks", "comments", "watchers"]) assert.ok(doc.paths[`/rooms/{room}/${t}`], t);
    assert.deepEqual(doc.paths["/rooms/{room}/_move"].post.requestBody.content["application/json"].schema.properties.to.enum, ["DB"], "the shards of this Worker's NANOTYPE_D1_SHARDS (unset: DB)");
    return { operations: Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0) };
  });

  await check(`openapi: Schemathesis fuzzes every operation (${EXAMPLES} cases each, stateful links followed): no 5xx, every answer as described`, async () => {
    const bin = process.env.SCHEMATHESIS_BIN;
    assert.ok(bin && existsSync(bin), "SCHEMATHESIS_BIN (scripts/e2e.sh installs Schemathesis)");
    const report = join(STATE, "schemathesis");
    mkdirSync(report, { recursive: true });
    const { code, out } = await run(bin, [
      "run", `${BASE}/_nanotype/openapi.json`,
      "-H", `Authorization: Bearer ${TOKENS.all}`,
      "--max-examples", String(EXAMPLES),
      "--seed", "20261202",
      // One worker: with two, Hypothesis parses sources on two threads at once, and Python 3.11's
      // parser is not safe for that ("AST constructor recursion depth mismatch", a tool error).
      "--workers", "1",
      "--request-timeout", "30",
      "--exclude-checks", EXCLUDED.join(","),
      "--report", "junit", "--report-dir", report,
    ], 15 * 60 * 1000);
    writeFileSync(join(report, "output.txt"), out);
    const summary = out.split("\n").filter((l) => /generated|passed|failed|failures|Failures|❌|API Links/.test(l)).slice(-12);
    assert.equal(code, 0, `Schemathesis failed (whole output in ${report}/output.txt):\n${out.slice(-6000)}`);
    return summary.map((l) => l.trim());
  });

  await check("openapi: openapi-typescript makes types from the description, and a client using them type-checks (a wrong field does not)", async () => {
    if (!existsSync(join(CLIENT, "node_modules/.bin/openapi-typescript"))) {
      execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: CLIENT, stdio: "inherit" });
    }
    const dir = join(STATE, "openapi-ts");
    mkdirSync(dir, { recursive: true });
    const doc = await http("GET", "/_nanotype/openapi.json");
    writeFileSync(join(dir, "openapi.json"), JSON.stringify(doc.body));
    execFileSync(join(CLIENT, "node_modules/.bin/openapi-typescript"), [join(dir, "openapi.json"), "--default-non-nullable", "false", "-o", join(dir, "api.d.ts")], { encoding: "utf8" });
    assert.match(readFileSync(join(dir, "api.d.ts"), "utf8"), /"\/rooms\/\{room\}\/tasks"/);
    const app = `import type { paths, components } from "./api";
type Create = paths["/rooms/{room}/tasks"]["post"]["requestBody"]["content"]["application/json"];
type Created = paths["/rooms/{room}/tasks"]["post"]["responses"]["201"]["content"]["application/json"];
const body: Create = { title: "typed", assignee: null }; // what has a default may be left out
declare const answer: Created;
const title: string = answer.row.title;
const done: boolean = answer.row.done;
const code: components["schemas"]["Error"]["error"]["code"] = "not_found";
void body; void title; void done; void code;
`;
    writeFileSync(join(dir, "app.ts"), app);
    const tsc = join(CLIENT, "node_modules/.bin/tsc");
    const args = (f) => ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", join(dir, f)];
    execFileSync(tsc, args("app.ts"), { encoding: "utf8" });
    writeFileSync(join(dir, "bad.ts"), app.replace('title: "typed"', 'titel: "typed"'));
    let out = "";
    try { execFileSync(tsc, args("bad.ts"), { encoding: "utf8" }); } catch (e) { out = String(e.stdout); }
    assert.match(out, /titel/);
  });
}
