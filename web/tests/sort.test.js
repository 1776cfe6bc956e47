import assert from "node:assert/strict";
import test from "node:test";

import { nextSort, restoreSort, sortSymbols } from "../lib/sort.js";

const prices = { AAPL: 189.5, BTCUSDT: 96000, ETHUSDT: 3400, MSFT: 417 };
const valueOf = (symbol, column) => (column === "symbol" ? symbol : prices[symbol]);

test("a header click cycles ascending, descending, then the user's own order", () => {
  const first = nextSort(null, "price");
  assert.deepEqual(first, { column: "price", direction: "ascending" });
  const second = nextSort(first, "price");
  assert.deepEqual(second, { column: "price", direction: "descending" });
  assert.equal(nextSort(second, "price"), null);
  assert.deepEqual(nextSort(second, "symbol"), { column: "symbol", direction: "ascending" });
});

test("symbols sort by name or by value, either way; null keeps the user's order", () => {
  const symbols = ["MSFT", "BTCUSDT", "AAPL", "ETHUSDT"];
  assert.deepEqual(sortSymbols(symbols, { column: "symbol", direction: "ascending" }, valueOf), ["AAPL", "BTCUSDT", "ETHUSDT", "MSFT"]);
  assert.deepEqual(sortSymbols(symbols, { column: "price", direction: "descending" }, valueOf), ["BTCUSDT", "ETHUSDT", "MSFT", "AAPL"]);
  assert.deepEqual(sortSymbols(symbols, null, valueOf), symbols);
});

test("a row without a price yet sorts last both ways, and ties keep the user's order", () => {
  const values = { A: 1, B: undefined, C: 1, D: 2 };
  const byValue = (symbol) => values[symbol];
  assert.deepEqual(sortSymbols(["B", "A", "C", "D"], { column: "price", direction: "ascending" }, byValue), ["A", "C", "D", "B"]);
  assert.deepEqual(sortSymbols(["B", "A", "C", "D"], { column: "price", direction: "descending" }, byValue), ["D", "A", "C", "B"]);
});

test("a saved order is restored only when it is one of ours", () => {
  assert.deepEqual(restoreSort('{"column":"change_percent","direction":"descending"}'), { column: "change_percent", direction: "descending" });
  assert.deepEqual(restoreSort('{"column":"volume","direction":"ascending"}'), { column: "volume", direction: "ascending" });
  for (const text of [null, "", "{", '{"column":"updated","direction":"ascending"}', '{"column":"price","direction":"up"}', "[]"]) {
    assert.equal(restoreSort(text), null, String(text));
  }
});
