import assert from "node:assert/strict";
import test from "node:test";

import { SparkSeries, sparkPath, trendOf } from "../lib/sparkline.js";

const STEP = 15 * 60 * 1000;
const candle = (index, close) => ({ open_time: index * STEP, close: String(close) });

test("the path spans the box: first value left, last right, lowest at the bottom, highest at the top", () => {
  assert.equal(sparkPath([1, 3, 2], 60, 20, 1), "M0 19L30 1L60 10");
  assert.equal(sparkPath([5, 5], 60, 20), "M0 10L60 10"); // flat: the middle
  assert.equal(sparkPath([7], 60, 20), "M0 10H60");
  assert.equal(sparkPath([], 60, 20), "");
  assert.equal(sparkPath([1, Number.NaN, 2], 10, 10, 0), "M0 10L10 0");
});

test("the trend is the last value against the first", () => {
  assert.equal(trendOf([1, 5, 2]), "up");
  assert.equal(trendOf([3, 5, 2]), "down");
  assert.equal(trendOf([3, 1, 3]), "flat");
  assert.equal(trendOf([3]), "flat");
});

test("candles seed the series; ticks update the last bucket or start the next; the oldest go past the cap", () => {
  const series = new SparkSeries(STEP, 3);
  series.load([candle(2, 12), candle(1, 11)], STEP); // any order
  assert.deepEqual(series.values(), [11, 12]);
  series.tick(2 * STEP + 5, 12.5);
  assert.deepEqual(series.values(), [11, 12.5]);
  series.tick(3 * STEP, 13);
  series.tick(4 * STEP + 1, 14);
  assert.deepEqual(series.values(), [12.5, 13, 14]);
  series.tick(Number.NaN, 1);
  assert.deepEqual(series.values(), [12.5, 13, 14]);
});

test("without history the ticks draw it, 5 s apart; loaded candles take over and the ticks fold into them", () => {
  const series = new SparkSeries();
  assert.equal(series.seeded, false);
  series.tick(5 * STEP + 1000, 49);
  series.tick(5 * STEP + 4000, 49.5); // same 5 s bucket
  series.tick(5 * STEP + 6000, 50);
  assert.deepEqual(series.values(), [49.5, 50]);
  series.load([candle(3, 30), candle(4, 40), candle(5, 45)]);
  assert.equal(series.seeded, true);
  assert.deepEqual(series.values(), [30, 40, 50]);
  series.tick(4 * STEP, 41); // late but within the window: fixes its bucket
  assert.deepEqual(series.values(), [30, 41, 50]);
});
