// Reconnect delays: exponential backoff with "equal jitter" (half fixed, half random), capped.

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 1000, capMs: 30000 });

/**
 * Delay before reconnect attempt `attempt` (0-based): the exponential step min(cap, base * 2^attempt),
 * of which the first half is fixed and the second half random, so clients that lost the same server
 * spread out but none retries at once.
 */
export function backoffDelay(attempt, { baseMs, capMs } = DEFAULT_BACKOFF, random = Math.random) {
  const step = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return step / 2 + random() * (step / 2);
}

/** Counts failed attempts; `reset()` once a connection has proved itself. */
export class Backoff {
  constructor(options = DEFAULT_BACKOFF, random = Math.random) {
    this.options = options;
    this.random = random;
    this.attempt = 0;
  }

  nextDelay() {
    const delay = backoffDelay(this.attempt, this.options, this.random);
    this.attempt += 1;
    return delay;
  }

  reset() {
    this.attempt = 0;
  }
}
