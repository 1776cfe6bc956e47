import assert from "node:assert/strict";
import test from "node:test";

import { connectionText, statusView } from "../lib/status_view.js";

const sources = (entries) => new Map(Object.entries(entries));

test("live with every source live: a green dot and 'Live'", () => {
  const view = statusView({ state: "live" }, sources({ demo: "live" }));
  assert.deepEqual(view, { dot: "live", text: "Live", chips: [{ source: "demo", state: "live", text: "demo feed: live" }] });
});

test("live with a source down: the dot turns amber and the banner names the source, as its chip does", () => {
  const view = statusView({ state: "live" }, sources({ demo: "live", binance: "reconnecting" }));
  assert.equal(view.dot, "degraded");
  assert.equal(view.text, "Live · binance feed: reconnecting");
  assert.deepEqual(view.chips.map((chip) => chip.state), ["live", "reconnecting"]);
  const two = statusView({ state: "live" }, sources({ finnhub: "rate_limited", binance: "reconnecting" }));
  assert.equal(two.text, "Live · 2 feeds not live");
});

test("while not live every chip says unknown, whatever the sources said before", () => {
  for (const connection of [
    { state: "reconnecting", retryAt: 10_400 },
    { state: "connecting" },
    { state: "offline" },
    { state: "unauthorized" },
  ]) {
    const view = statusView(connection, sources({ demo: "live", binance: "reconnecting" }), 10_000);
    assert.equal(view.dot, connection.state);
    assert.deepEqual(view.chips.map((chip) => chip.text), ["demo feed: unknown", "binance feed: unknown"]);
  }
});

test("a source not yet reported on this connection is unknown and does not make the dot amber", () => {
  const view = statusView({ state: "live" }, sources({ demo: null }));
  assert.equal(view.dot, "live");
  assert.equal(view.chips[0].text, "demo feed: unknown");
});

test("the banner counts down to the next attempt in whole seconds and says when an attempt is under way", () => {
  assert.equal(connectionText({ state: "reconnecting", retryAt: 11_500 }, 10_000), "Reconnecting in 2 s");
  assert.equal(connectionText({ state: "reconnecting", retryAt: 9_000 }, 10_000), "Reconnecting in 0 s");
  assert.equal(connectionText({ state: "reconnecting", retryAt: null }, 10_000), "Reconnecting…");
  assert.equal(connectionText({ state: "offline" }, 0), "Offline: waiting for the network");
});
