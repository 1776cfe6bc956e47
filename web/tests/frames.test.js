import assert from "node:assert/strict";
import test from "node:test";

import { parseFrame, socketUrl } from "../lib/frames.js";

test("a batch frame is an array of messages", () => {
  const frame = '[{"type":"subscribed","symbols":["AAPL"]},{"type":"tick","ticker":"AAPL","seq":1}]';
  const { messages, error } = parseFrame(frame);
  assert.equal(error, null);
  assert.deepEqual(
    messages.map((message) => message.type),
    ["subscribed", "tick"],
  );
});

test("a single object frame is one message", () => {
  assert.deepEqual(parseFrame('{"type":"pong","ts":5}'), { messages: [{ type: "pong", ts: 5 }], error: null });
});

test("garbage never throws: bad JSON and non-messages are reported and skipped", () => {
  assert.deepEqual(parseFrame("not json"), { messages: [], error: "frame is not valid JSON" });
  const { messages, error } = parseFrame('[1, null, {"no":"type"}, {"type":"pong"}]');
  assert.deepEqual(messages, [{ type: "pong" }]);
  assert.equal(error, "frame holds items that are not messages");
});

test("the socket URL follows the page: same host and port, wss on https", () => {
  assert.equal(socketUrl({ protocol: "http:", host: "127.0.0.1:8123" }), "ws://127.0.0.1:8123/ws?batch=1");
  assert.equal(socketUrl({ protocol: "https:", host: "ticker.example" }), "wss://ticker.example/ws?batch=1");
});
