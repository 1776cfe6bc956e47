import assert from "node:assert/strict";
import test from "node:test";

import { Backoff, DEFAULT_BACKOFF, backoffDelay, backoffStep } from "../lib/backoff.js";

const options = { quickMs: 1500, quickAttempts: 10, capMs: 30000 };

test("the quick phase waits 0.75 to 1.5 s per attempt, so a server that is back is reached within 1.5 s", () => {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    assert.equal(backoffDelay(attempt, options, () => 0), 750);
    assert.equal(backoffDelay(attempt, options, () => 0.999999), 750 + 0.999999 * 750);
  }
  assert.deepEqual(DEFAULT_BACKOFF, options);
});

test("after the quick phase the step doubles up to the cap", () => {
  const steps = [10, 11, 12, 13, 14, 15, 16].map((attempt) => backoffStep(attempt, options));
  assert.deepEqual(steps, [3000, 6000, 12000, 24000, 30000, 30000, 30000]);
});

test("jitter spreads clients: different random draws give different delays within the bounds", () => {
  const delays = [0.1, 0.4, 0.9].map((draw) => backoffDelay(12, options, () => draw));
  assert.deepEqual(delays, [6600, 8400, 11400]);
});

test("a huge or negative attempt count stays within the bounds (no overflow to Infinity or NaN)", () => {
  assert.equal(backoffDelay(5000, options, () => 1), 30000);
  assert.equal(backoffDelay(-3, options, () => 0), 750);
});

test("Backoff counts attempts and starts over after reset", () => {
  const backoff = new Backoff({ quickMs: 1000, quickAttempts: 1, capMs: 30000 }, () => 0);
  assert.deepEqual([backoff.nextDelay(), backoff.nextDelay(), backoff.nextDelay()], [500, 1000, 2000]);
  assert.equal(backoff.attempt, 3);
  backoff.reset();
  assert.equal(backoff.nextDelay(), 500);
});
