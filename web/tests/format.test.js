import assert from "node:assert/strict";
import test from "node:test";

import {
  decimalsFor,
  direction,
  formatChange,
  formatClock,
  formatDecimals,
  formatPercent,
  formatPrice,
  formatVolume,
  priceDecimals,
  signOf,
} from "../lib/format.js";

test("prices show cents, with more places below one dollar", () => {
  assert.equal(formatPrice(96500), "96,500.00");
  assert.equal(formatPrice(189.5), "189.50");
  assert.equal(formatPrice(0.1234567), "0.1235");
  assert.equal(formatPrice(0.000012345), "0.00001235");
  assert.equal(priceDecimals(0), 2);
});

test("a missing or broken number shows a dash, not NaN", () => {
  assert.equal(formatPrice(undefined), "—");
  assert.equal(formatPrice(Number.NaN), "—");
  assert.equal(formatChange(null, 10), "—");
  assert.equal(formatPercent(Number.POSITIVE_INFINITY), "—");
  assert.equal(formatClock(undefined), "—");
});

test("changes and percentages carry a sign except at zero", () => {
  assert.equal(formatChange(1.5, 189.5), "+1.50");
  assert.equal(formatChange(-0.25, 189.5), "-0.25");
  assert.equal(formatChange(0, 189.5), "0.00");
  assert.equal(formatChange(0.0012, 0.5), "+0.0012");
  assert.equal(formatPercent(1.23456), "+1.23%");
  assert.equal(formatPercent(-0.5), "-0.50%");
  assert.equal(formatPercent(0), "0.00%");
});

test("the clock is 24 h to the second in the given zone", () => {
  const ts = Date.UTC(2026, 10, 21, 15, 4, 5, 678);
  assert.equal(formatClock(ts, "en-US", "UTC"), "15:04:05");
  assert.equal(formatClock(Date.UTC(2026, 0, 1, 0, 0, 9), "en-GB", "UTC"), "00:00:09");
});

test("direction compares two prices; the first price is flat", () => {
  assert.equal(direction(10, 11), "up");
  assert.equal(direction(10, 9.99), "down");
  assert.equal(direction(10, 10), "flat");
  assert.equal(direction(undefined, 10), "flat");
  assert.equal(signOf(-1), "down");
  assert.equal(signOf(2), "up");
  assert.equal(signOf(0), "flat");
});

test("axis prices have the table's thousands separators at the series' precision", () => {
  assert.equal(formatDecimals(96240, 2), "96,240.00");
  assert.equal(formatDecimals(-1234.5, 2), "-1,234.50");
  assert.equal(formatDecimals(0.5, 4), "0.5000");
  assert.equal(formatDecimals(96240, 2, "de-DE"), "96.240,00");
  assert.equal(formatDecimals(Number.NaN, 2), "—");
});

test("a symbol's precision decides the decimals; without one the size of the price does", () => {
  assert.equal(formatPrice(0.14825, "en-US", 5), "0.14825");
  assert.equal(formatPrice(0.1482, "en-US", 5), "0.14820");
  assert.equal(formatPrice(96500.1, "en-US", 2), "96,500.10");
  assert.equal(formatPrice(7.123, "en-US", 0), "7");
  assert.equal(formatPrice(0.14825, "en-US", null), "0.1483"); // unknown: the guess
  assert.equal(decimalsFor(1, 2.5), 2);
  assert.equal(decimalsFor(1, 13), 2);
  assert.equal(formatChange(0.00012, 0.14825, "en-US", 5), "+0.00012");
  assert.equal(formatVolume(18234.1234), "18.23K");
  assert.equal(formatVolume(1_234_567), "1.23M");
  assert.equal(formatVolume(950.5), "950.5");
  assert.equal(formatVolume(0.01234), "0.0123");
  assert.equal(formatVolume(null), "—");
});
