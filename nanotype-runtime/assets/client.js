// nanotype's feed client: a room's changes, live, over a WebSocket that resumes where it left off.
// Served by the Worker at /_nanotype/client.js; no build step, no dependencies.
//
//   import { subscribe } from "/_nanotype/client.js";
//   const sub = subscribe("demo", {
//     token,                                  // the policy's bearer token
//     since: localStorage.seq,                // the last seq this client applied, if any
//     onReset: async ({ seq }) => { /* reload a snapshot (read with consistency=strong) */ },
//     onChange: (c) => { /* {seq, table, op: "upsert"|"delete", key, row} */ localStorage.seq = c.seq },
//   });
//   sub.close();
//
// Every change reaches onChange once, in seq order, also across reconnects: the client sends the
// last seq it applied when it reconnects, and drops anything at or below it. Seqs are
// contiguous: a change that skips one closes the socket (CLOSE_GAP) and the client resumes from
// its seq at once. When the server no longer keeps the changes after that seq, onReset runs
// (awaited) before the changes that follow.

const CLOSE_BEHIND = 4008;
const CLOSE_GAP = 4009;
const FATAL = new Set([1008, 4001, 4003, 4029, 4400, 4404]);

/**
 * Subscribe to a room's change feed.
 * @param {string} room
 * @param {object} opts see client.d.ts
 */
export function subscribe(room, opts = {}) {
  const base = opts.url ?? (typeof location !== "undefined" ? location.origin : "");
  const wsBase = base.replace(/^http/, "ws");
  const ackEvery = opts.ackEvery ?? 64;
  const maxBackoff = opts.maxBackoffMs ?? 10_000;
  let seq = opts.since == null || opts.since === "" ? null : Number(opts.since);
  let ws = null, closed = false, attempt = 0, unacked = 0, ackTimer = null, retryTimer = null;
  // Which socket is current: messages of a socket given up on are ignored.
  let generation = 0;
  // Messages are applied one at a time, in order, even when a handler is async.
  let chain = Promise.resolve();
  const status = (s, detail) => opts.onStatus?.(s, detail);

  function connect() {
    if (closed) return;
    const q = seq == null ? "" : `?since=${seq}`;
    const protocols = ["nanotype"];
    if (opts.token) protocols.push(`bearer.${opts.token}`);
    const WS = opts.WebSocket ?? globalThis.WebSocket;
    const socket = new WS(`${wsBase}/rooms/${encodeURIComponent(room)}/_feed${q}`, protocols);
    const gen = ++generation;
    ws = socket;
    status("connecting", { seq });
    socket.onmessage = (ev) => {
      const text = typeof ev.data === "string" ? ev.data : String(ev.data);
      chain = chain
        .then(() => (gen === generation ? handle(JSON.parse(text), socket) : undefined))
        .catch((e) => opts.onError?.(e));
    };
    socket.onclose = (ev) => {
      if (gen !== generation) return;
      clearTimeout(ackTimer);
      ackTimer = null;
      if (closed) return;
      if (FATAL.has(ev.code)) {
        status("closed", { code: ev.code, reason: ev.reason });
        closed = true;
        return;
      }
      // Behind, dropped, or the server restarted: come back from the last seq applied.
      const delay = ev.code === CLOSE_BEHIND || ev.code === CLOSE_GAP ? 0 : Math.min(maxBackoff, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt++;
      status("reconnecting", { code: ev.code, reason: ev.reason, delay, seq });
      retryTimer = setTimeout(connect, delay);
    };
    socket.onerror = () => {};
  }

  async function handle(m, socket) {
    if (m.type === "change") {
      if (seq != null && m.seq <= seq) return; // already applied: once only
      if (seq != null && m.seq !== seq + 1) {
        // A change is missing: give this socket up and resume from the last seq applied.
        status("gap", { seq, got: m.seq });
        generation++;
        clearTimeout(ackTimer);
        ackTimer = null;
        try { socket.close(CLOSE_GAP, "gap"); } catch {}
        if (!closed) retryTimer = setTimeout(connect, 0);
        return;
      }
      await opts.onChange?.(m);
      seq = m.seq;
      if (++unacked >= ackEvery) ack();
      else if (!ackTimer) ackTimer = setTimeout(ack, 200);
    } else if (m.type === "reset") {
      await opts.onReset?.({ seq: m.seq, reason: m.reason });
      seq = m.seq;
      attempt = 0;
      ack();
      status("live", { seq, reset: true });
    } else if (m.type === "live") {
      attempt = 0;
      status("live", { seq: m.seq });
    }
  }

  function ack() {
    clearTimeout(ackTimer);
    ackTimer = null;
    unacked = 0;
    if (ws && ws.readyState === 1 && seq != null) ws.send(JSON.stringify({ type: "ack", seq }));
  }

  connect();
  return {
    /** The last seq applied. */
    get seq() { return seq; },
    /** Stop, and do not reconnect. */
    close() {
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(ackTimer);
      ws?.close(1000, "client closed");
    },
  };
}

/**
 * The app's REST API, for a caller with `token`. Each room's last read token
 * (`x-nanotype-token`) is kept and sent with that room's next request, so a read after a write
 * (or after another read) never sees an older state of the room, whichever Worker, D1 replica
 * or shard answers it.
 *
 *   import { connect } from "/_nanotype/client.js";
 *   const api = connect({ token });
 *   const { row } = await api.post("demo", "tasks", { title: "hi" });
 *   const { rows } = await api.get("demo", "tasks");        // sees the task just made
 *
 * @param {object} opts see client.d.ts
 */
export function connect(opts = {}) {
  const base = opts.url ?? (typeof location !== "undefined" ? location.origin : "");
  const doFetch = opts.fetch ?? globalThis.fetch;
  const tokens = new Map();
  async function request(method, room, path, body) {
    const headers = { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
    const held = tokens.get(room);
    if (held) headers["x-nanotype-token"] = held;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await doFetch(`${base}/rooms/${encodeURIComponent(room)}/${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const token = res.headers.get("x-nanotype-token");
    // Keep the newest: a token with a lower seq never replaces a higher one.
    if (token && (!held || Number(token.split(":")[0]) >= Number(held.split(":")[0]))) tokens.set(room, token);
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error(json?.error?.message ?? `${method} ${path}: ${res.status}`);
      err.status = res.status;
      err.code = json?.error?.code;
      throw err;
    }
    return json;
  }
  return {
    get: (room, path) => request("GET", room, path),
    post: (room, path, body) => request("POST", room, path, body ?? {}),
    put: (room, path, body) => request("PUT", room, path, body ?? {}),
    patch: (room, path, body) => request("PATCH", room, path, body ?? {}),
    delete: (room, path) => request("DELETE", room, path),
    /** The token sent with the room's next request. */
    token: (room) => tokens.get(room) ?? null,
  };
}
