// The dashboard in a real browser: headless Chromium (Debian's `chromium`, or CHROMIUM_PATH)
// driven by playwright-core. Idle rooms are not asked for their status each poll; a write made
// over HTTP shows on the page once it replicates; the resync
// button resyncs the room; the rows in the DO and in D1 agree; a screenshot is saved.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { BASE, LAZY_DELIVERY_MS, STATE, TOKENS, http, ok, waitFor } from "./harness.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const SCREENSHOT = join(STATE, "dashboard.png");

export async function dashboardChecks({ check, room }) {
  await check("dashboard: idle rooms are not woken by its polls, a write shows once replicated, the resync button resyncs, DO and D1 rows agree; screenshot saved", async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
    const R = room("dash"), Q = room("dashq");
    for (let i = 0; i < 3; i++) await ok("POST", `/rooms/${R}/tasks`, { title: `d${i}` });
    for (let i = 0; i < 2; i++) await ok("POST", `/rooms/${Q}/tasks`, { title: `q${i}` });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1600, height: 300 } });
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      // `full=8000`: each room's own status at least every 8 s (30 s unless told), so that what D1
      // cannot show (a feed client) reaches the page within the check's time.
      await page.goto(`${BASE}/_nanotype/dashboard#token=${TOKENS.all}&rooms=${R},${Q}&full=8000`);
      const cell = (r, k) => page.locator(`tr[data-room="${r}"] [data-k="${k}"]`);
      await waitFor("the room's seq on the page", async () => (await cell(R, "seq").textContent().catch(() => null)) === "3", 10000);
      // Idle rooms are not woken each poll: once both rooms are shown healthy, polls read D1's
      // list and ask no room for its status (until the page's full period).
      await waitFor("both rooms idle on the page", async () => (await cell(Q, "lag").textContent().catch(() => null)) === "0" && (await cell(R, "lag").textContent()) === "0", 10000);
      const syncs = [];
      page.on("request", (r) => { if (/\/_sync(\?|$)/.test(r.url())) syncs.push(r.url()); });
      const updated = async () => Number(await page.evaluate(() => document.body.dataset.updated));
      const before3 = await updated();
      await waitFor("about three more polls", async () => (await updated()) - before3 >= 2500, 10000, 100);
      assert.equal(await page.evaluate(() => document.body.dataset.asked), "0");
      assert.deepEqual(syncs, [], "no room's _sync asked while both are idle");
      // A write over HTTP: D1's watermark moves once it replicates, and the page asks that room.
      const t0 = performance.now();
      const w = await http("POST", `/rooms/${R}/tasks`, { title: "seen in the browser" });
      assert.equal(w.status, 201);
      await waitFor("the write on the page", async () => (await cell(R, "seq").textContent()) === "4", LAZY_DELIVERY_MS + 3000, 50);
      const shownMs = performance.now() - t0;
      assert.ok(syncs.every((u) => u.includes(`/rooms/${R}/`)), `only the written room was asked: ${syncs}`);
      // Row counts read every row: none until asked, then the DO's and D1's, equal once replicated.
      assert.equal(await cell(R, "rows").textContent(), "", "no row counts unless asked");
      const count = async () => {
        await page.locator(`button[data-count="${R}"]`).click();
        return /tasks 4 \/ 4/.test(await cell(R, "rows").textContent());
      };
      await waitFor("rows DO = D1", count, 15000, 500);
      // The resync button.
      const before = (await ok("GET", `/rooms/${R}/_sync`)).health.totalSyncs;
      await page.locator(`button[data-resync="${R}"]`).click();
      await waitFor("the page to say the resync started", async () => /resync started/.test(await cell(R, "status").textContent()), 5000);
      const h = await waitFor("the resync to finish", async () => {
        const s = (await ok("GET", `/rooms/${R}/_sync`)).health;
        return !s.resyncInProgress && s.totalSyncs > before && s.lag === 0 && s;
      }, 15000);
      await waitFor("rows DO = D1 after the resync", count, 15000, 500);
      // A feed client of the room shows in its row.
      const feed = new WebSocket(`${BASE.replace("http", "ws")}/rooms/${R}/_feed?since=0`, ["nanotype", `bearer.${TOKENS.all}`]);
      await new Promise((res, rej) => { feed.on("open", res); feed.on("error", rej); });
      await waitFor("the feed client on the page", async () => (await cell(R, "clients").textContent()) === "1", 12000);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      // A laptop's width and a phone's: every column stays reachable (the table scrolls inside
      // its frame, the page does not), the Resync button included.
      const shots = {};
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: 480 });
        await page.evaluate(() => { document.querySelector("main").scrollLeft = 0; });
        const path = SCREENSHOT.replace(/\.png$/, `-${width}.png`);
        await page.screenshot({ path, fullPage: true });
        shots[width] = path;
        const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(pageWidth <= width + 1, `the page itself does not scroll sideways at ${width} px (${pageWidth})`);
        // The page redraws its rows on every poll: scroll and look in one step inside the page, so
        // a redraw between the two cannot detach what is looked at.
        await waitFor(`Resync reachable at ${width} px`, () => page.evaluate((room) => {
          const b = document.querySelector(`button[data-resync="${room}"]`);
          if (!b) return false;
          b.scrollIntoView({ block: "nearest", inline: "nearest" });
          const r = b.getBoundingClientRect();
          return r.width > 0 && r.height > 0 && r.right <= innerWidth + 1 && r.bottom <= innerHeight + 1 && r.left >= -1 && r.top >= -1;
        }, R), 5000);
      }
      feed.close();
      // The page holds no data without a token: the policy refuses its requests.
      const anon = await browser.newPage();
      await anon.goto(`${BASE}/_nanotype/dashboard#rooms=${R}`);
      await waitFor("the refusal on the page", async () => /unauthorized/.test(await anon.locator(`tr[data-room="${R}"]`).textContent().catch(() => "")), 5000);
      // The room list the page uses when no rooms are named: only rooms the token may see.
      const all = [];
      for (let after = null, i = 0; i < 50; i++) {
        const page = (await http("GET", `/_rooms?limit=100${after ? `&after=${after}` : ""}`)).body;
        all.push(...page.rooms.map((r) => r.room));
        if (!page.next) break;
        after = page.next;
      }
      assert.equal(new Set(all).size, all.length, "no room twice across pages");
      assert.ok(all.includes(R) && all.includes(Q), "both rooms listed for the all-rooms token");
      const alpha = await http("GET", "/_rooms", undefined, { token: TOKENS.alpha });
      assert.equal(alpha.status, 200);
      assert.ok(alpha.body.rooms.every((r) => r.room.startsWith("alpha")), "another token sees only its rooms");
      assert.deepEqual(errors, [], "no script errors on the page");
      return { shownAfterMs: +shownMs.toFixed(0), syncsAskedForTheWrite: syncs.length, resyncSyncs: h.totalSyncs - before, screenshot: SCREENSHOT, shots };
    } finally {
      await browser.close();
    }
  });
}
