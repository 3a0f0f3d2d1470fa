// The replica over three local D1 databases (the `shards` config: three bindings and
// NANOTYPE_D1_SHARDS, the example's code unchanged), in workerd: rooms spread over the shards
// with each room's rows on its own shard only, a query across rooms equal to the union of the
// rooms' strong reads, a prefix token bounded across every shard, and read tokens.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { d1, http, ok, pool, waitFor, BASE, SHARDS, STATE, TOKENS } from "./harness.mjs";

/// The client module exactly as the Worker serves it.
async function servedClient() {
  const r = await fetch(`${BASE}/_nanotype/client.js`);
  assert.equal(r.status, 200);
  const file = join(STATE, `client-shards-${Date.now()}.mjs`);
  writeFileSync(file, await r.text());
  return import(pathToFileURL(file).href);
}

const SHARD_ROOMS = Number(process.env.SHARD_ROOMS || 1000);
const SHARD_WRITES = Number(process.env.SHARD_WRITES || 10);

/// `GET /_across/tasks` followed to its end, with `token`: `[room, id, title]` in order.
async function across(query, token = TOKENS.all) {
  const out = [];
  let after = null;
  for (let i = 0; i < 1000; i++) {
    const res = await http("GET", `/_across/tasks?limit=1000${query}${after ? `&after=${encodeURIComponent(after)}` : ""}`, undefined, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const r of res.body.rows) out.push([r.room, r.row.id, r.row.title]);
    if (!res.body.next) return out;
    after = res.body.next;
  }
  throw new Error("too many pages");
}

const byRoomKey = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]);

export async function shardChecks({ check, room, start }) {
  const rooms = Array.from({ length: SHARD_ROOMS }, (_, i) => room(`sh${String(i).padStart(4, "0")}`));
  // Rooms of earlier checks share the Durable Objects' state: those that recorded `DB` replicate
  // to this config's `DB` when their alarms fire. Each check reads only its own rooms.
  const ours = new Set(rooms);
  const shardOf = new Map();
  let strong = [];

  await check(`12. shards: three D1 shards by configuration: ${SHARD_ROOMS} rooms × ${SHARD_WRITES} writes, every room's D1 rows equal its Durable Object's, on its own shard only`, async () => {
    await start();
    const jobs = rooms.flatMap((r) => Array.from({ length: SHARD_WRITES }, (_, n) => [r, n]));
    const t0 = Date.now();
    await pool(jobs, 16, async ([r, n]) => {
      const res = await http("POST", `/rooms/${r}/tasks`, { title: `${r} #${n}` });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const shard = res.headers.get("x-nanotype-shard");
      assert.ok(SHARDS.includes(shard), `shard ${shard}`);
      assert.equal(shardOf.get(r) ?? shard, shard, `${r} answered from two shards`);
      shardOf.set(r, shard);
    });
    const writeMs = Date.now() - t0;
    const perShard = Object.fromEntries(SHARDS.map((s) => [s, rooms.filter((r) => shardOf.get(r) === s).length]));
    for (const s of SHARDS) assert.ok(perShard[s] > SHARD_ROOMS / 6, `rooms per shard ${JSON.stringify(perShard)}`);
    // Every write reaches its room's shard (flushes after each write's window).
    const total = SHARD_ROOMS * SHARD_WRITES;
    const d1Rows = {};
    await waitFor("every write on a shard", async () => {
      let n = 0;
      for (const s of SHARDS) {
        d1Rows[s] = (await d1("SELECT room_id, id, title FROM tasks ORDER BY room_id, id", "shards", s))
          .filter((t) => ours.has(t.room_id));
        n += d1Rows[s].length;
      }
      return n >= total;
    }, 180000, 1000);
    strong = (await pool(rooms, 16, async (r) => {
      const page = await ok("GET", `/rooms/${r}/tasks?consistency=strong&limit=500`);
      assert.equal(page.rows.length, SHARD_WRITES, r);
      return page.rows.map((t) => [r, t.id, t.title]);
    })).flat().sort(byRoomKey);
    for (const s of SHARDS) {
      const here = d1Rows[s].map((t) => [t.room_id, t.id, t.title]);
      for (const [r] of here) assert.equal(shardOf.get(r), s, `a row of ${r} on ${s}`);
      const expected = strong.filter(([r]) => shardOf.get(r) === s);
      assert.deepEqual(here, expected, `shard ${s} holds exactly its rooms' rows`);
    }
    return { rooms: SHARD_ROOMS, writes: total, perShard, writeMs, writesPerSecond: Math.round(total / (writeMs / 1000)) };
  });

  await check("13. shards: a query across rooms (GET /_across/tasks) over three shards equals the union of the rooms' strong reads", async () => {
    assert.ok(strong.length > 0, "check 22 ran");
    const t0 = Date.now();
    const every = await across("");
    const ms = Date.now() - t0;
    const all = every.filter(([r]) => ours.has(r));
    assert.deepEqual(all, strong);
    const open = (await across("&status=open")).filter(([r]) => ours.has(r));
    assert.deepEqual(open, strong, "every task starts open");
    assert.deepEqual((await across("&status=done")).filter(([r]) => ours.has(r)), []);
    return { rows: all.length, otherRooms: every.length - all.length, pages: Math.ceil(every.length / 1000), ms };
  });

  await check("14. shards: a token limited to a prefix sees only its rooms across every shard", async () => {
    const mine = Array.from({ length: 30 }, (_, i) => `alpha-${room(`shx${i}`)}`);
    await pool(mine, 8, async (r) => { await ok("POST", `/rooms/${r}/tasks`, { title: `${r} only` }); });
    const mineSet = new Set(mine);
    let all = [];
    const seen = await waitFor("alpha rooms on their shards", async () => {
      all = await across("", TOKENS.alpha);
      const got = all.filter(([r]) => mineSet.has(r));
      return got.length >= mine.length && got;
    }, 30000, 500);
    assert.ok(all.every(([r]) => r.startsWith("alpha-")), "only alpha- rooms");
    assert.deepEqual(seen.map(([r]) => r), [...mine].sort());
    const shards = new Set(await pool(mine, 8, async (r) => (await http("GET", `/rooms/${r}/_sync`)).headers.get("x-nanotype-shard")));
    assert.equal(shards.size, SHARDS.length, "the prefix's rooms are on every shard");
    assert.equal((await http("GET", "/_across/tasks", undefined, { token: "nope" })).status, 401);
    return { rooms: mine.length, shards: [...shards] };
  });

  await check("15. shards: read tokens in workerd: D1 sessions give bookmarks, and a read with a DELETE's token never returns the deleted row", async () => {
    const r = room("token");
    const made = await http("POST", `/rooms/${r}/tasks`, { title: "to delete" });
    assert.equal(made.status, 201);
    const id = made.body.row.id;
    const read = await waitFor("the replica to have the row", async () => {
      const res = await http("GET", `/rooms/${r}/tasks/${id}`, undefined, { headers: { "x-nanotype-token": made.headers.get("x-nanotype-token") } });
      return res.headers.get("x-nanotype-source") === "replica" && res;
    }, 20000, 200);
    const [seq, shard, bookmark] = read.headers.get("x-nanotype-token").split(":");
    assert.ok(Number(seq) >= made.body.seq);
    assert.equal(shard, read.headers.get("x-nanotype-shard"));
    assert.ok(bookmark.length > 0, "local D1 returns a bookmark");
    const deleted = await http("DELETE", `/rooms/${r}/tasks/${id}`);
    assert.equal(deleted.status, 200);
    const token = deleted.headers.get("x-nanotype-token");
    for (let i = 0; i < 20; i++) {
      const after = await http("GET", `/rooms/${r}/tasks/${id}`, undefined, { headers: { "x-nanotype-token": token } });
      assert.equal(after.status, 404, `read ${i} after the delete: ${JSON.stringify(after.body)}`);
    }
    const bad = await http("GET", `/rooms/${r}/tasks`, undefined, { headers: { "x-nanotype-token": "not a token" } });
    assert.equal(bad.status, 400);
    // The served client keeps each room's token and sends it back by itself: every read right
    // after a write or a delete sees it.
    const { connect } = await servedClient();
    const api = connect({ url: BASE, token: TOKENS.all });
    const c = room("client");
    for (let i = 0; i < 10; i++) {
      const { row } = await api.post(c, "tasks", { title: `c${i}` });
      assert.ok(Number(api.token(c).split(":")[0]) >= 1, "the write's token is kept");
      const { rows } = await api.get(c, "tasks");
      assert.ok(rows.some((t) => t.id === row.id), `read ${i} sees the write just made`);
      await api.delete(c, `tasks/${row.id}`);
      const left = await api.get(c, "tasks");
      assert.ok(!left.rows.some((t) => t.id === row.id), `read ${i} does not see the row just deleted`);
    }
    return { token: read.headers.get("x-nanotype-token").slice(0, 60) };
  });

  await check("16. shards: a room moved between shards while 4 clients write to it and 2 read it in a loop: nothing lost, no read short of rows it had shown", async () => {
    const M = room("moving");
    for (let i = 0; i < 20; i++) await ok("POST", `/rooms/${M}/tasks`, { title: `before ${i}` });
    const from = (await http("GET", `/rooms/${M}/_sync`)).headers.get("x-nanotype-shard");
    const to = SHARDS.find((s) => s !== from);
    await waitFor("the room on its first shard", async () => (await d1(`SELECT COUNT(*) AS n FROM tasks WHERE room_id = '${M}'`, "shards", from))[0].n === 20, 20000, 250);
    let writing = true;
    const acked = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 25; i++) {
        const res = await http("POST", `/rooms/${M}/tasks`, { title: `w${w} ${i}` });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        acked.push(res.body.row.id);
      }
    });
    const reads = { n: 0, sources: {} };
    const readers = Array.from({ length: 2 }, async () => {
      let token = null;
      const seen = new Set();
      for (let i = 0; writing && i < 100000; i++) {
        const res = await http("GET", `/rooms/${M}/tasks?limit=500`, undefined, { headers: token ? { "x-nanotype-token": token } : {} });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const ids = new Set(res.body.rows.map((t) => t.id));
        for (const id of seen) assert.ok(ids.has(id), `read ${i} lost row ${id} it had shown (source ${res.headers.get("x-nanotype-source")})`);
        for (const id of ids) seen.add(id);
        token = res.headers.get("x-nanotype-token") ?? token;
        reads.n++;
        const src = res.headers.get("x-nanotype-source");
        reads.sources[src] = (reads.sources[src] ?? 0) + 1;
      }
    });
    await waitFor("some writes before the move", async () => acked.length >= 20, 20000, 20);
    const moved = await http("POST", `/rooms/${M}/_move`, { to });
    assert.equal(moved.status, 202, JSON.stringify(moved.body));
    await Promise.all(writers);
    const done = await waitFor("the move to end", async () => {
      const s = await ok("GET", `/rooms/${M}/_sync`);
      return s.move === null && s.health.lag === 0 && s;
    }, 60000, 250);
    writing = false;
    await Promise.all(readers);
    assert.equal(done.shard, to);
    const strongIds = (await ok("GET", `/rooms/${M}/tasks?consistency=strong&limit=500`)).rows.map((t) => t.id);
    assert.equal(strongIds.length, 120);
    for (const id of acked) assert.ok(strongIds.includes(id), `acknowledged write ${id} lost`);
    const onNew = (await d1(`SELECT id FROM tasks WHERE room_id = '${M}' ORDER BY id`, "shards", to)).map((r) => r.id);
    assert.deepEqual(onNew, [...strongIds].sort((a, b) => a - b));
    const onOld = await d1(`SELECT COUNT(*) AS n FROM tasks WHERE room_id = '${M}'`, "shards", from);
    assert.equal(onOld[0].n, 0, "the old copy is deleted");
    const mark = await d1(`SELECT watermark FROM _nt_rooms WHERE room_id = '${M}'`, "shards", from);
    assert.equal(mark[0].watermark, -3, "the old shard says moved");
    return { from, to, writes: acked.length, reads: reads.n, sources: reads.sources };
  });
}
