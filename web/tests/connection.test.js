import assert from "node:assert/strict";
import test from "node:test";

// connection.js runs in a browser: give it the little of one it touches.
globalThis.window = { addEventListener() {}, location: { protocol: "http:", host: "board.test" } };
globalThis.navigator = { onLine: true };

class FakeSocket {
  static OPEN = 1;
  static made = [];
  constructor(url, protocols) {
    Object.assign(this, { url, protocols, readyState: 0, sent: [] });
    FakeSocket.made.push(this);
  }
  send(text) {
    this.sent.push(text);
  }
  refuse() {
    this.onclose({ code: 1006 });
  }
}
globalThis.WebSocket = FakeSocket;

const { TickerConnection } = await import("../connection.js");
const { Backoff } = await import("../lib/backoff.js");

function connection() {
  const states = [];
  const ticker = new TickerConnection(
    { onOpen() {}, onMessages() {}, onState: (state) => states.push(state), onFrameError() {} },
    { backoff: new Backoff(undefined, () => 1) }, // the longest wait of every step
  );
  return { ticker, states };
}

test("every refused attempt waits; Retry now opens at once and starts the backoff over", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
  FakeSocket.made = [];
  const { ticker, states } = connection();
  ticker.start();
  assert.equal(states.at(-1).state, "connecting");
  for (let refused = 0; refused < 12; refused += 1) {
    FakeSocket.made.at(-1).refuse();
    const { state, retryAt } = states.at(-1);
    assert.equal(state, "reconnecting");
    t.mock.timers.tick(retryAt - Date.now());
    assert.deepEqual(states.at(-1), { state: "reconnecting", retryAt: null, attempt: refused + 1 });
  }
  assert.equal(ticker.backoff.attempt, 12); // past the quick phase: the next wait is longer

  FakeSocket.made.at(-1).refuse();
  assert.ok(states.at(-1).retryAt - Date.now() > 1500);
  const before = FakeSocket.made.length;
  for (let press = 0; press < 5; press += 1) {
    ticker.retryNow();
    assert.equal(FakeSocket.made.length, before + press + 1); // opened at once
    FakeSocket.made.at(-1).refuse();
    assert.equal(states.at(-1).retryAt - Date.now(), 1500); // never longer than the quick phase's wait
  }
});

test("retryNow does nothing while a socket is open or opening", () => {
  FakeSocket.made = [];
  const { ticker } = connection();
  ticker.start();
  ticker.retryNow();
  assert.equal(FakeSocket.made.length, 1);
});
