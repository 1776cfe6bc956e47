// Reconnect delays: a quick phase of short waits (a restarting server is back within seconds), then exponential
// backoff; every wait has "equal jitter" (half fixed, half random), and the longest is capped.

export const DEFAULT_BACKOFF = Object.freeze({ quickMs: 1500, quickAttempts: 10, capMs: 30000 });

/**
 * The step of reconnect attempt `attempt` (0-based): `quickMs` for the first `quickAttempts` attempts (about
 * 11 s of an outage), then doubling from there up to `capMs`.
 */
export function backoffStep(attempt, { quickMs, quickAttempts, capMs } = DEFAULT_BACKOFF) {
  const beyond = Math.max(0, attempt - quickAttempts + 1);
  return Math.min(capMs, quickMs * 2 ** Math.min(beyond, 30));
}

/**
 * Delay before attempt `attempt`: the first half of the step is fixed and the second half random, so clients
 * that lost the same server spread out but none retries at once. In the quick phase a server that is back is
 * reached within one step (1.5 s).
 */
export function backoffDelay(attempt, options = DEFAULT_BACKOFF, random = Math.random) {
  const step = backoffStep(attempt, options);
  return step / 2 + random() * (step / 2);
}

/** Counts failed attempts; `reset()` once a connection has proved itself, or when the user asks to retry now. */
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
