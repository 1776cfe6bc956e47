import assert from "node:assert/strict";
import test from "node:test";

import { ResumePoint } from "../lib/resume.js";

test("the first welcome, the same stream again, and a restarted one", () => {
  const point = new ResumePoint();
  assert.equal(point.welcome("a1"), "first");
  assert.equal(point.welcome("a1"), "same");
  assert.equal(point.welcome("b2"), "restarted");
  assert.equal(point.epoch, "b2");
});

test("a reconnect asks for what it missed, in the epoch its seqs belong to", () => {
  const point = new ResumePoint();
  point.welcome("a1");
  const last = new Map([["AAPL", 1042], ["MSFT", 7]]);
  assert.deepEqual(point.subscribe(["AAPL", "MSFT", "BTCUSDT"], last), {
    action: "subscribe",
    symbols: ["AAPL", "MSFT", "BTCUSDT"],
    since: { AAPL: 1042, MSFT: 7 },
    epoch: "a1",
  });
});

test("nothing to resume: a plain subscribe", () => {
  const point = new ResumePoint();
  assert.deepEqual(point.subscribe(["AAPL"], new Map([["AAPL", 3]])), { action: "subscribe", symbols: ["AAPL"] });
  point.welcome("a1");
  assert.deepEqual(point.subscribe(["AAPL"], new Map()), { action: "subscribe", symbols: ["AAPL"] });
  assert.deepEqual(point.subscribe(["AAPL"], new Map([["AAPL", -1]])), { action: "subscribe", symbols: ["AAPL"] });
});

test("a server without epochs (no welcome epoch) is never asked to resume", () => {
  const point = new ResumePoint();
  point.welcome(undefined);
  assert.deepEqual(point.subscribe(["AAPL"], new Map([["AAPL", 3]])), { action: "subscribe", symbols: ["AAPL"] });
});
