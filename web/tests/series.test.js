import assert from "node:assert/strict";
import test from "node:test";

import { BoundedSeries } from "../lib/series.js";

test("one point per second: a later tick in the same second replaces the point", () => {
  const series = new BoundedSeries(10, 2);
  assert.deepEqual(series.add(1_000_100, 5), { action: "append", point: { time: 1000, value: 5 } });
  assert.deepEqual(series.add(1_000_900, 6), { action: "replace", point: { time: 1000, value: 6 } });
  assert.deepEqual(series.add(1_001_000, 7), { action: "append", point: { time: 1001, value: 7 } });
  assert.deepEqual(series.points(), [
    { time: 1000, value: 6 },
    { time: 1001, value: 7 },
  ]);
});

test("a tick older than the last point is ignored (the chart cannot go back)", () => {
  const series = new BoundedSeries(10, 2);
  series.add(5_000, 1);
  assert.equal(series.add(3_000, 2).action, "ignore");
  assert.equal(series.length, 1);
});

test("memory stays bounded: past cap + slack it drops back to the newest cap points", () => {
  const series = new BoundedSeries(100, 20);
  const actions = [];
  for (let second = 0; second < 1000; second += 1) {
    actions.push(series.add(second * 1000, second).action);
    assert.ok(series.length <= 120);
  }
  // The first trim comes with point 121; each later one slack + 1 points after the last.
  const trims = actions.flatMap((action, index) => (action === "trim" ? [index] : []));
  assert.deepEqual(trims.slice(0, 3), [120, 141, 162]);
  assert.equal(trims.length, 42);
  assert.equal(trims.at(-1), 981);
  assert.equal(series.length, 100 + (999 - 981));
  assert.equal(series.oldestTime, 882);
  assert.equal(series.points().at(-1).value, 999);
});

test("points() is a copy, so a caller cannot grow the series behind its back", () => {
  const series = new BoundedSeries(3, 1);
  series.add(0, 1);
  series.points().push({ time: 99, value: 9 });
  assert.equal(series.length, 1);
});

test("a cap below one is refused", () => {
  assert.throws(() => new BoundedSeries(0), RangeError);
});
