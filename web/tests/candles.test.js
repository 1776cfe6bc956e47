import assert from "node:assert/strict";
import test from "node:test";

import { CandleSeries, SeriesCache, candlesPath, restoreTimeframe, toPoints } from "../lib/candles.js";

const candle = (minute, close = "100.5", extra = {}) => ({
  open_time: minute * 60_000,
  close_time: minute * 60_000 + 59_999,
  open: "100",
  high: "101",
  low: "99.5",
  close,
  volume: "12.25",
  trades: 3,
  closed: true,
  ...extra,
});

test("a candle becomes a bar and a volume column at its open time in seconds", () => {
  const colors = { up: "#0f0", down: "#f00", upVolume: "#0f08", downVolume: "#f008" };
  const { bar, volume } = toPoints(candle(2), colors);
  assert.deepEqual(bar, { time: 120, open: 100, high: 101, low: 99.5, close: 100.5 });
  assert.deepEqual(volume, { time: 120, value: 12.25, color: "#0f08" });
  assert.equal(toPoints(candle(2, "99.9"), colors).volume.color, "#f008");
});

test("live candles wait for the history, then lay over it", () => {
  const series = new CandleSeries(10, 2);
  assert.equal(series.apply(candle(5, "1", { closed: false })), "wait");
  assert.equal(series.apply(candle(5, "2", { closed: false })), "wait");
  series.load([candle(4), candle(3), candle(5, "0.5")]);
  assert.deepEqual(series.items.map((c) => [c.open_time / 60_000, c.close]), [[3, "100.5"], [4, "100.5"], [5, "2"]]);
});

test("the open candle is replaced, the next one appended, an older one ignored", () => {
  const series = new CandleSeries(10, 2);
  series.load([candle(1), candle(2, "1", { closed: false })]);
  assert.equal(series.apply(candle(2, "3")), "replace");
  assert.equal(series.apply(candle(3, "4", { closed: false })), "append");
  assert.equal(series.apply(candle(1, "9")), "ignore");
  assert.equal(series.items[0].close, "9"); // a closed one that arrived late still counts
  assert.equal(series.length, 3);
});

test("memory stays bounded: past cap + slack it drops back to cap", () => {
  const series = new CandleSeries(100, 20);
  series.load([]);
  const actions = [];
  for (let minute = 0; minute < 500; minute += 1) {
    actions.push(series.apply(candle(minute)));
    assert.ok(series.length <= 120);
  }
  assert.equal(actions.filter((action) => action === "trim").length, 19); // at 121, then every 21
  assert.equal(series.last.open_time, 499 * 60_000);
});

test("the cache keeps the most recently shown series and forgets a removed symbol", () => {
  const cache = new SeriesCache(2);
  const first = cache.get("AAPL", "1m");
  cache.get("MSFT", "1m");
  assert.equal(cache.get("AAPL", "1m"), first);
  cache.get("BTCUSDT", "1h"); // MSFT goes: it was used longest ago
  assert.equal(cache.peek("MSFT", "1m"), undefined);
  assert.equal(cache.peek("AAPL", "1m"), first);
  cache.forget("AAPL");
  assert.equal(cache.size, 1);
});

test("timeframes and the candles URL", () => {
  assert.equal(restoreTimeframe("15m"), "15m");
  assert.equal(restoreTimeframe("2m"), "1m");
  assert.equal(restoreTimeframe(null), "1m");
  assert.equal(candlesPath("BRK.B", "1d"), "/candles?symbol=BRK.B&interval=1d&limit=1500");
});
