import assert from "node:assert/strict";
import test from "node:test";

import { SuggestState, normalQuery, searchPath, suggestions } from "../lib/suggest.js";

const listing = (symbol) => ({ symbol, name: symbol, source: "demo", precision: 2, base: "", quote: "" });
const DO = [listing("DOTUSDT"), listing("DOGEUSDT"), listing("ADBE")];

test("the typed text is read as the server reads a symbol", () => {
  assert.equal(normalQuery("  doge "), "DOGE");
  assert.equal(normalQuery("brk.b"), "BRK.B");
  assert.equal(normalQuery(""), null);
  assert.equal(normalQuery("a b"), null);
  assert.equal(normalQuery("x".repeat(33)), null);
  assert.equal(searchPath("DO"), "/symbols?q=DO&limit=12");
});

test("an empty query lists the always-on symbols not on the board; a search marks those on it", () => {
  const known = [listing("AAPL"), listing("MSFT"), listing("AAPL")];
  assert.deepEqual(suggestions(known, ["AAPL"]).map((item) => item.symbol), ["MSFT"]);
  const found = suggestions([listing("AAPL"), listing("AAPLX")], ["AAPL"], "AAPL");
  assert.deepEqual(found.map((item) => [item.symbol, item.onBoard]), [["AAPL", true], ["AAPLX", false]]);
});

test("the first suggestion is active; arrows move and wrap; Enter adds the active one", () => {
  const state = new SuggestState();
  assert.equal(state.input("do"), "DO");
  assert.equal(state.results("DO", DO), undefined);
  assert.equal(state.activeItem.symbol, "DOTUSDT");
  assert.deepEqual(state.key("ArrowDown"), { handled: true });
  assert.equal(state.activeItem.symbol, "DOGEUSDT");
  state.key("ArrowDown");
  state.key("ArrowDown");
  assert.equal(state.activeItem.symbol, "DOTUSDT"); // wrapped
  state.key("ArrowUp");
  assert.equal(state.activeItem.symbol, "ADBE");
  assert.deepEqual(state.key("Enter"), { handled: true, choose: "ADBE" });
  assert.equal(state.open, false);
});

test("an answer to an older query is ignored, and a newer answer keeps the active symbol if it is still there", () => {
  const state = new SuggestState();
  state.input("D");
  state.input("DO");
  state.results("D", [listing("DIS")]);
  assert.equal(state.current, false);
  assert.equal(state.activeItem, undefined);
  state.results("DO", DO);
  state.key("ArrowDown");
  state.input("DOG");
  state.results("DOG", [listing("DOGEUSDT")]);
  assert.equal(state.activeItem.symbol, "DOGEUSDT");
});

test("Enter before the answer waits for it, then adds its first suggestion", () => {
  const state = new SuggestState();
  state.input("DO");
  state.results("DO", DO);
  state.input("DOGE"); // typed on quickly: DOTUSDT must not be added for "DOGE"
  assert.deepEqual(state.key("Enter"), { handled: true });
  assert.equal(state.results("DOGE", [listing("DOGEUSDT")]), "DOGEUSDT");
});

test("a symbol no listing shows is added as typed: the server says whether it exists", () => {
  const state = new SuggestState();
  state.input("zzzz");
  state.results("ZZZZ", []);
  assert.deepEqual(state.key("Enter"), { handled: true, choose: "ZZZZ" });
});

test("Escape closes the list first and then lets the page have the key; arrows open it again", () => {
  const state = new SuggestState();
  state.input("DO");
  state.results("DO", DO);
  assert.deepEqual(state.key("Escape"), { handled: true });
  assert.equal(state.open, false);
  assert.equal(state.activeItem, undefined);
  assert.deepEqual(state.key("Escape"), { handled: false });
  state.key("ArrowDown");
  assert.equal(state.open, true);
  assert.equal(state.activeItem.symbol, "DOTUSDT");
  assert.deepEqual(state.key("Tab"), { handled: false });
});

test("Enter on an empty box with its list open adds the active always-on symbol; closed, it does nothing", () => {
  const state = new SuggestState();
  state.setEmptyItems([listing("MSFT"), listing("AMZN")]);
  assert.deepEqual(state.key("Enter"), { handled: true });
  state.key("ArrowDown"); // opens
  state.key("ArrowDown");
  assert.deepEqual(state.key("Enter"), { handled: true, choose: "AMZN" });
});
