import assert from "node:assert/strict";
import test from "node:test";

import { Backoff, backoffDelay } from "../lib/backoff.js";

const options = { baseMs: 1000, capMs: 30000 };

test("the delay doubles per attempt between half and all of the step", () => {
  const steps = [1000, 2000, 4000, 8000, 16000, 30000, 30000];
  steps.forEach((step, attempt) => {
    assert.equal(backoffDelay(attempt, options, () => 0), step / 2);
    assert.equal(backoffDelay(attempt, options, () => 0.5), step * 0.75);
    assert.equal(backoffDelay(attempt, options, () => 0.999999), step / 2 + 0.999999 * (step / 2));
  });
});

test("jitter spreads clients: different random draws give different delays within the bounds", () => {
  const delays = [0.1, 0.4, 0.9].map((draw) => backoffDelay(3, options, () => draw));
  assert.deepEqual(delays, [4400, 5600, 7600]);
});

test("a huge attempt count stays at the cap (no overflow to Infinity or NaN)", () => {
  assert.equal(backoffDelay(5000, options, () => 1), 30000);
  assert.equal(backoffDelay(-3, options, () => 0), 500);
});

test("Backoff counts attempts and starts over after reset", () => {
  const backoff = new Backoff(options, () => 0);
  assert.deepEqual([backoff.nextDelay(), backoff.nextDelay(), backoff.nextDelay()], [500, 1000, 2000]);
  assert.equal(backoff.attempt, 3);
  backoff.reset();
  assert.equal(backoff.nextDelay(), 500);
});
