import assert from "node:assert/strict";
import test from "node:test";

import { SeqTracker } from "../lib/seq.js";

test("consecutive numbers are 'next'; a jump counts the skipped ticks", () => {
  const tracker = new SeqTracker();
  assert.deepEqual(tracker.observe("AAPL", 7), { kind: "first", missed: 0 });
  assert.deepEqual(tracker.observe("AAPL", 8), { kind: "next", missed: 0 });
  assert.deepEqual(tracker.observe("AAPL", 12), { kind: "gap", missed: 3 });
  assert.deepEqual(tracker.observe("AAPL", 13), { kind: "next", missed: 0 });
  assert.equal(tracker.missed, 3);
});

test("symbols are tracked separately", () => {
  const tracker = new SeqTracker();
  tracker.observe("AAPL", 1);
  tracker.observe("MSFT", 50);
  assert.equal(tracker.observe("AAPL", 2).kind, "next");
  assert.deepEqual(tracker.observe("MSFT", 52), { kind: "gap", missed: 1 });
});

test("a snapshot after reconnect with nothing new is a repeat, with progress it is a gap", () => {
  const tracker = new SeqTracker();
  tracker.observe("BTCUSDT", 40);
  assert.equal(tracker.observe("BTCUSDT", 40, { afterReconnect: true }).kind, "repeat");
  assert.deepEqual(tracker.observe("BTCUSDT", 45, { afterReconnect: true }), { kind: "gap", missed: 4 });
});

test("an older number mid-connection is a late duplicate, after reconnect it is a restarted server", () => {
  const tracker = new SeqTracker();
  tracker.observe("ETHUSDT", 300);
  assert.equal(tracker.observe("ETHUSDT", 299).kind, "repeat");
  assert.equal(tracker.observe("ETHUSDT", 1).kind, "reset");
  assert.equal(tracker.observe("ETHUSDT", 2).kind, "next");

  const restarted = new SeqTracker();
  restarted.observe("ETHUSDT", 300);
  assert.equal(restarted.observe("ETHUSDT", 25, { afterReconnect: true }).kind, "reset");
  assert.equal(restarted.observe("ETHUSDT", 26).kind, "next");
  assert.equal(tracker.missed + restarted.missed, 0);
});

test("forget starts a symbol over (unsubscribed, then subscribed again)", () => {
  const tracker = new SeqTracker();
  tracker.observe("AAPL", 3);
  tracker.forget("AAPL");
  assert.equal(tracker.observe("AAPL", 90).kind, "first");
});
