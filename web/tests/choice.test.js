import assert from "node:assert/strict";
import test from "node:test";

import { restoreChoice, saveChoice } from "../lib/choice.js";

const known = ["AAPL", "MSFT", "BTCUSDT"];

test("first visit: every symbol, the server's default selected", () => {
  assert.deepEqual(restoreChoice(null, known, "BTCUSDT"), { symbols: known, selected: "BTCUSDT" });
});

test("a saved choice comes back as saved", () => {
  const saved = saveChoice(["MSFT", "AAPL"], "AAPL");
  assert.deepEqual(restoreChoice(saved, known, "BTCUSDT"), { symbols: ["MSFT", "AAPL"], selected: "AAPL" });
});

test("an empty saved choice stays empty (the user removed everything)", () => {
  assert.deepEqual(restoreChoice(saveChoice([], null), known, "BTCUSDT"), { symbols: [], selected: null });
});

test("catalogue symbols beyond the always-on ones are kept; duplicates and non-symbols are dropped", () => {
  const saved = JSON.stringify({ symbols: ["DOGEUSDT", "AAPL", "AAPL", "not a symbol", 7, "msft"], selected: "DOGEUSDT" });
  assert.deepEqual(restoreChoice(saved, known, "BTCUSDT"), { symbols: ["DOGEUSDT", "AAPL"], selected: "DOGEUSDT" });
});

test("unreadable storage falls back to the first-visit choice", () => {
  for (const text of ["{not json", "42", '{"symbols":"AAPL"}', "null", '"x"']) {
    assert.deepEqual(restoreChoice(text, known, "BTCUSDT"), { symbols: known, selected: "BTCUSDT" }, text);
  }
});

test("a default the server does not serve falls back to its first symbol", () => {
  assert.deepEqual(restoreChoice(null, known, "NOPE"), { symbols: known, selected: "AAPL" });
});
