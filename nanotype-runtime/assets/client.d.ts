// Declarations of /_nanotype/client.js. gen-migrations writes the schema's row types
// (`Tables`, with `types = "..."` in [package.metadata.nanotype]), so that
// `subscribe<Tables>(...)` gives typed rows.

/** A change of one row, in seq order. */
export type Change<Tables = Record<string, unknown>> = {
  [T in keyof Tables & string]:
    | { type: "change"; seq: number; table: T; op: "upsert"; key: unknown; row: Tables[T] | null; rowOmitted?: true }
    | { type: "change"; seq: number; table: T; op: "delete"; key: unknown };
}[keyof Tables & string];

export interface SubscribeOptions<Tables> {
  /** The Worker's origin (default: the page's). */
  url?: string;
  /** The policy's bearer token, sent as the WebSocket subprotocol `bearer.<token>`. */
  token?: string;
  /** The last seq this client applied; omitted, the client starts with onReset. */
  since?: number | string | null;
  /** Each change, once, in seq order (awaited before the next). */
  onChange?: (change: Change<Tables>) => void | Promise<void>;
  /** Reload a snapshot: the changes after `seq` follow (awaited before them). */
  onReset?: (reset: { seq: number; reason: string }) => void | Promise<void>;
  /** connecting, live, reconnecting, closed. */
  onStatus?: (status: "connecting" | "live" | "reconnecting" | "gap" | "closed", detail: unknown) => void;
  onError?: (error: unknown) => void;
  /** Acknowledge after this many changes (64), or 200 ms after the first unacknowledged one. */
  ackEvery?: number;
  /** Longest wait between reconnects (10 s). */
  maxBackoffMs?: number;
  /** A WebSocket class (Node: the `ws` package). */
  WebSocket?: unknown;
}

export interface Subscription {
  /** The last seq applied. */
  readonly seq: number | null;
  close(): void;
}

export function subscribe<Tables = Record<string, unknown>>(room: string, opts?: SubscribeOptions<Tables>): Subscription;

export interface ConnectOptions {
  /** The Worker's origin (default: the page's). */
  url?: string;
  /** The policy's bearer token. */
  token?: string;
  /** A fetch function (default: the global one). */
  fetch?: typeof fetch;
}

/** A failed request: the API's `{"error": {"code", "message"}}`. */
export interface ApiError extends Error {
  status: number;
  code?: string;
}

/** The app's REST API; each room's read token is kept and sent back by itself. */
export interface Api {
  get<T = unknown>(room: string, path: string): Promise<T>;
  post<T = unknown>(room: string, path: string, body?: unknown): Promise<T>;
  put<T = unknown>(room: string, path: string, body?: unknown): Promise<T>;
  patch<T = unknown>(room: string, path: string, body?: unknown): Promise<T>;
  delete<T = unknown>(room: string, path: string): Promise<T>;
  /** The token sent with the room's next request (`x-nanotype-token`), if any. */
  token(room: string): string | null;
}

export function connect(opts?: ConnectOptions): Api;
