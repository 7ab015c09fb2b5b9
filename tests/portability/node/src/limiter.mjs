// One request budget per destination organization: requests paced evenly (no burst), and a
// pause gate closed by the server's own signals (a 429 and its Retry-After). The component runs
// synchronously (its wasi-http calls block), so the host sleeps synchronously too.

/** Headroom under the nominal limit, as in the Rust host: arrival jitter must not bunch requests. */
const PACING_HEADROOM = 0.98;
/** A 429 without Retry-After holds the organization back one server window. */
const DEFAULT_429_PAUSE_MS = 1000;
/** The longest a server's Retry-After may hold an organization back (the answer is untrusted). */
export const MAX_SERVER_PAUSE_MS = 60_000;

/** Blocks the thread for `ms` milliseconds. */
export function sleepSync(ms) {
  if (ms > 0) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.ceil(ms));
  }
}

/**
 * `Retry-After` in seconds or as an HTTP date, capped at MAX_SERVER_PAUSE_MS; `undefined` when
 * absent or unreadable (a negative, non-finite or garbled value reads as absent).
 */
export function parseRetryAfterMs(value, now = Date.now()) {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  let ms;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Number.isFinite(ms) ? Math.min(ms, MAX_SERVER_PAUSE_MS) : MAX_SERVER_PAUSE_MS;
}

export class OrgLimiter {
  /** @param {number} perSecond requests allowed per second (at least 1) */
  constructor(perSecond) {
    this.intervalMs = 1000 / (Math.max(1, perSecond) * PACING_HEADROOM);
    this.nextAt = 0;
    this.pausedUntil = 0;
  }

  /** Waits for a permit to send one request. */
  acquire() {
    const now = performance.now();
    const at = Math.max(now, this.nextAt, this.pausedUntil);
    sleepSync(at - now);
    this.nextAt = at + this.intervalMs;
  }

  /** Feeds what a response said: a 429 closes the gate for its Retry-After (or one window). */
  observe(status, retryAfter) {
    if (status !== 429) return;
    const pause = parseRetryAfterMs(retryAfter) ?? DEFAULT_429_PAUSE_MS;
    this.pausedUntil = Math.max(this.pausedUntil, performance.now() + pause);
  }
}
