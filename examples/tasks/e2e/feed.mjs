// The change feed in local workerd, through the client the Worker serves (/_nanotype/client.js),
// with Node's `ws` as the WebSocket: clients receive every write in order; one killed mid-stream
// resumes with no gap and no duplicate; clients resume after `wrangler dev` is killed and
// restarted; a client that does not read is closed with its reason while writes go on.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import WebSocket from "ws";
import { BASE, EXAMPLE, STATE, TOKENS, http, ok, pool, sleep, waitFor } from "./harness.mjs";

/// The client module exactly as the Worker serves it.
async function servedClient() {
  const r = await fetch(`${BASE}/_nanotype/client.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /javascript/);
  const file = join(STATE, `client-${Date.now()}.mjs`);
  writeFileSync(file, await r.text());
  return import(pathToFileURL(file).href);
}

/// A subscriber that records what it receives; `sockets` are its WebSockets, to kill them.
function recorder(subscribe, room, opts = {}) {
  const got = [], sockets = [], statuses = [];
  let resets = 0;
  class Tracked extends WebSocket {
    constructor(...a) { super(...a); sockets.push(this); }
  }
  const sub = subscribe(room, {
    url: BASE, token: TOKENS.all, since: 0, WebSocket: Tracked,
    onChange: (c) => got.push({ ...c, at: performance.now() }),
    onReset: async (r) => { resets++; if (opts.onReset) await opts.onReset(r); },
    onStatus: (s, d) => statuses.push({ s, ...d }),
    ...opts.extra,
  });
  return { sub, got, sockets, statuses, get resets() { return resets; } };
}

function assertInOrderOnce(got, from, to, who) {
  const seqs = got.map((c) => c.seq);
  const want = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.deepEqual(seqs, want, `${who}: every change once, in seq order`);
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

export async function feedChecks({ check, room }) {
  const { subscribe } = await servedClient();

  await check("feed 0. typed rows: the served client.d.ts and the generated tables.d.ts type-check a subscriber (tsc --strict)", async () => {
    const dir = join(STATE, "ts");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "client.d.ts"), await (await fetch(`${BASE}/_nanotype/client.d.ts`)).text());
    copyFileSync(join(EXAMPLE, "client/tables.d.ts"), join(dir, "tables.d.ts"));
    const app = `import { subscribe } from "./client";
import type { Tables } from "./tables";
subscribe<Tables>("demo", { onChange: (c) => {
  if (c.table === "tasks" && c.op === "upsert" && c.row) { const title: string = c.row.title; const done: boolean = c.row.done; void title; void done; }
  if (c.table === "comments" && c.op === "upsert" && c.row) { const n: number = c.row.task_id; void n; }
} });
`;
    writeFileSync(join(dir, "app.ts"), app);
    const tsc = join(EXAMPLE, "node_modules/.bin/tsc");
    execFileSync(tsc, ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", join(dir, "app.ts")], { encoding: "utf8" });
    // The guide's feed chapter, as written, against the same declarations.
    const guide = readFileSync(join(EXAMPLE, "../../docs/guide/05-feed.md"), "utf8");
    const block = guide.match(/<!-- guide:feed-ts -->\n```ts\n([\s\S]*?)```\n<!-- \/guide:feed-ts -->/);
    assert.ok(block, "the guide's feed block, between its markers");
    writeFileSync(join(dir, "guide.ts"), block[1]);
    execFileSync(tsc, ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", "--lib", "es2022,dom", join(dir, "guide.ts")], { encoding: "utf8" });
    // And a wrong field is an error: the types are real.
    writeFileSync(join(dir, "bad.ts"), app.replace("c.row.title", "c.row.titel"));
    let out = "";
    try { execFileSync(tsc, ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", join(dir, "bad.ts")], { encoding: "utf8" }); }
    catch (e) { out = String(e.stdout); }
    assert.match(out, /titel/);
  });

  await check("feed cascade: deleting a task sends its comments' and watchers' deletes too, in order with no gap; a reconnecting client gets them from the log; its state equals a strong read", async () => {
    const R = room("feed-cascade");
    const state = new Map(); // "table key" -> row
    const apply = (c) => { const k = `${c.table} ${JSON.stringify(c.key)}`; if (c.op === "delete") state.delete(k); else state.set(k, c.row); };
    const live = recorder(subscribe, R, { extra: { onChange: (c) => { live.got.push(c); apply(c); } } });
    await waitFor("the client live", async () => live.statuses.some((s) => s.s === "live"));
    const task = (await http("POST", `/rooms/${R}/tasks`, { title: "parent" })).body.row;
    for (const body of ["one", "two"]) assert.equal((await http("POST", `/rooms/${R}/comments`, { task_id: task.id, body })).status, 201);
    for (const user of ["ada", "bo"]) assert.equal((await http("PUT", `/rooms/${R}/watchers/${task.id}/${user}`, {})).status, 200);
    const del = await http("DELETE", `/rooms/${R}/tasks/${task.id}`);
    assert.equal(del.status, 200);
    const last = del.body.seq;
    await waitFor("every change up to the delete", async () => live.sub.seq === last, 10000);
    assertInOrderOnce(live.got, 1, last, "live");
    const ops = live.got.map((c) => `${c.seq} ${c.table} ${c.op}`);
    assert.equal(live.got.filter((c) => c.op === "delete").length, 5, `the task, two comments, two watchers: ${ops.join(", ")}`);
    assert.equal(state.size, 0, "the client holds no deleted row");
    // A client that connects from seq 0 gets the same changes from the room's log.
    const late = recorder(subscribe, R);
    await waitFor("the late client caught up", async () => late.sub.seq === last, 10000);
    assertInOrderOnce(late.got, 1, last, "late");
    live.sub.close(); late.sub.close();
    return { seqs: last };
  });

  await check("feed subprotocols: a client offering only bearer.<token> is served (the protocol echoed); the header is no credential on plain HTTP", async () => {
    const R = room("subproto");
    await ok("POST", `/rooms/${R}/tasks`, { title: "one" });
    const ws = new WebSocket(`${BASE.replace("http", "ws")}/rooms/${R}/_feed?since=0`, [`bearer.${TOKENS.all}`]);
    const first = await new Promise((ok, fail) => {
      ws.once("message", (m) => ok(JSON.parse(String(m))));
      ws.once("error", fail);
      ws.once("close", (code) => fail(new Error(`closed ${code}`)));
    });
    assert.equal(ws.protocol, `bearer.${TOKENS.all}`);
    assert.equal(first.type, "change");
    ws.close();
    const plain = await http("GET", `/rooms/${R}/tasks`, undefined, { token: null, headers: { "sec-websocket-protocol": `bearer.${TOKENS.all}` } });
    assert.equal(plain.status, 401, JSON.stringify(plain.body));
    const notAllowed = await http("DELETE", `/rooms/${R}/tasks`);
    assert.equal(notAllowed.status, 405);
    assert.equal(notAllowed.headers.get("allow"), "GET, HEAD, POST");
  });

  await check("feed 1. two clients get 500 writes in order; one killed mid-stream resumes with no gap, no duplicate", async () => {
    const R = room("feed");
    const a = recorder(subscribe, R), b = recorder(subscribe, R);
    await waitFor("both clients live", async () => a.statuses.some((s) => s.s === "live") && b.statuses.some((s) => s.s === "live"));
    // Paced writes (about 100/s, 4 in flight): the latency is measured below saturation.
    const sent = new Map();
    const N = 500, RATE = 100, t0 = performance.now();
    await pool(Array.from({ length: N }, (_, i) => i), 4, async (i) => {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const start = performance.now();
      const res = await http("POST", `/rooms/${R}/tasks`, { title: `feed ${i}` });
      assert.equal(res.status, 201);
      sent.set(res.body.seq, { start, row: res.body.row });
      if (i === 150) b.sockets.at(-1).terminate(); // dropped without a close handshake
    });
    const rate = N / ((performance.now() - t0) / 1000);
    await waitFor("both clients to have all 500", async () => a.got.length >= N && b.sub.seq === N, 20000);
    // A sentinel write after them: anything extra (a duplicate) would arrive before it.
    assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: "sentinel" })).status, 201);
    await waitFor("the sentinel at both", async () => a.got.some((c) => c.seq === N + 1) && b.got.some((c) => c.seq === N + 1));
    assertInOrderOnce(a.got, 1, N + 1, "client A");
    assertInOrderOnce(b.got, 1, N + 1, "client B (killed and reconnected)");
    assert.ok(b.sockets.length >= 2, "client B reconnected");
    assert.ok(b.statuses.some((s) => s.s === "reconnecting" && s.code === 1006));
    // The change carries the row as the API returns it.
    const c = a.got[41];
    assert.equal(c.table, "tasks");
    assert.equal(c.op, "upsert");
    assert.deepEqual(c.row, sent.get(c.seq).row);
    // Latency: from the write request's start to the change at client A (an upper bound of
    // commit to client: the request's own trip is included).
    const lat = a.got.filter((c) => sent.has(c.seq)).map((c) => c.at - sent.get(c.seq).start);
    a.sub.close(); b.sub.close();
    return { writesPerS: +rate.toFixed(0), latencyMs: { p50: +pct(lat, 0.5).toFixed(1), p99: +pct(lat, 0.99).toFixed(1), max: +Math.max(...lat).toFixed(1) }, reconnects: b.sockets.length - 1 };
  });

  await check("feed 2. a client whose seq is older or ahead is told to reset, reloads a snapshot, then gets live changes", async () => {
    const R = room("feedreset");
    for (let i = 0; i < 5; i++) assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: `r${i}` })).status, 201);
    let snapshot = null;
    const a = recorder(subscribe, R, {
      extra: { since: 999 },
      onReset: async ({ seq }) => {
        const page = await http("GET", `/rooms/${R}/tasks?consistency=strong&limit=500`);
        snapshot = { seq, rows: page.body.rows.length };
      },
    });
    await waitFor("the reset", async () => snapshot);
    assert.deepEqual(snapshot, { seq: 5, rows: 5 });
    assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: "after" })).status, 201);
    await waitFor("the live change", async () => a.got.length === 1);
    assert.equal(a.got[0].seq, 6);
    // The policy decides who may subscribe, as for every route.
    const refused = await new Promise((resolve) => {
      const ws = new WebSocket(`${BASE.replace("http", "ws")}/rooms/${R}/_feed`, ["nanotype", `bearer.${TOKENS.alpha}`]);
      ws.on("unexpected-response", (_, res) => resolve(res.statusCode));
      ws.on("open", () => resolve("open"));
    });
    assert.equal(refused, 403);
    const plain = await http("GET", `/rooms/${R}/_feed`);
    assert.equal(plain.status, 426);
    a.sub.close();
    return { snapshot, refused, withoutUpgrade: plain.status };
  });

  await check("feed 5. rows changed by a custom route's raw SQL reach the feed with their new state", async () => {
    const R = room("feedraw");
    const a = recorder(subscribe, R);
    await waitFor("live", async () => a.statuses.some((s) => s.s === "live"));
    for (let i = 0; i < 6; i++) assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: `r${i}`, status: i % 3 === 0 ? "done" : "open" })).status, 201);
    const res = await http("POST", `/rooms/${R}/archive`);
    assert.equal(res.body.archived, 2);
    await waitFor("8 changes", async () => a.got.length >= 8);
    assertInOrderOnce(a.got, 1, 8, "the client");
    assert.deepEqual(a.got.slice(6).map((c) => c.row.status), ["archived", "archived"]);
    a.sub.close();
  });

  await check("feed 4. a client that does not read is closed with its reason; writes and the other client go on", async () => {
    const R = room("feedslow");
    const normal = recorder(subscribe, R);
    // A raw client that stops reading its socket at once: it never acknowledges anything.
    const stuck = new WebSocket(`${BASE.replace("http", "ws")}/rooms/${R}/_feed?since=0`, ["nanotype", `bearer.${TOKENS.all}`]);
    await new Promise((res, rej) => { stuck.on("open", res); stuck.on("error", rej); });
    stuck._socket.pause();
    let closed = null, stuckGot = 0;
    stuck.on("message", () => stuckGot++);
    stuck.on("close", (code, reason) => { closed = { code, reason: reason.toString() }; });
    await waitFor("the normal client live", async () => normal.statuses.some((s) => s.s === "live"));
    const N = 1300, t0 = performance.now();
    await pool(Array.from({ length: N }, (_, i) => i), 8, async (i) => {
      const res = await http("POST", `/rooms/${R}/tasks`, { title: `s${i}` });
      assert.equal(res.status, 201);
    });
    const rate = N / ((performance.now() - t0) / 1000);
    await waitFor("the normal client to have every change", async () => normal.got.length === N, 20000);
    assertInOrderOnce(normal.got, 1, N, "the reading client");
    stuck._socket.resume();
    await waitFor("the stuck client's close", async () => closed, 20000);
    assert.equal(closed.code, 4008);
    assert.match(closed.reason, /unacknowledged: reconnect with since=0/);
    normal.sub.close();
    return { writesPerS: +rate.toFixed(0), stuckReceivedBeforeClose: stuckGot, close: closed };
  });
}

/// The feed's check that kills and restarts `wrangler dev`: run with the other such checks, after
/// the ones that share the instance.
export async function feedRestartChecks({ check, room, restart }) {
  const { subscribe } = await servedClient();

  await check("feed 3. wrangler dev killed and restarted: the clients resume from their seq", async () => {
    const R = room("feedkill");
    const a = recorder(subscribe, R), b = recorder(subscribe, R);
    await waitFor("live", async () => a.statuses.some((s) => s.s === "live") && b.statuses.some((s) => s.s === "live"));
    for (let i = 0; i < 40; i++) assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: `k${i}` })).status, 201);
    await waitFor("40 changes", async () => a.got.length === 40 && b.got.length === 40);
    await restart();
    for (let i = 40; i < 80; i++) assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: `k${i}` })).status, 201);
    await waitFor("80 changes at both", async () => a.got.length >= 80 && b.got.length >= 80, 30000);
    // The sentinel: a duplicate or a stray change would arrive before it.
    assert.equal((await http("POST", `/rooms/${R}/tasks`, { title: "sentinel" })).status, 201);
    await waitFor("the sentinel at both", async () => a.got.some((c) => c.seq === 81) && b.got.some((c) => c.seq === 81));
    assertInOrderOnce(a.got, 1, 81, "client A");
    assertInOrderOnce(b.got, 1, 81, "client B");
    a.sub.close(); b.sub.close();
    return { reconnectsA: a.sockets.length - 1, reconnectsB: b.sockets.length - 1 };
  });
}
