import assert from "node:assert/strict";
import test from "node:test";

import { TOKEN_KEY, authHeaders, hashWithoutToken, readToken, socketProtocols } from "../lib/token.js";

class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
}

test("a token in the fragment is used and kept for the tab; later loads without it reuse it", () => {
  const storage = new MemoryStorage();
  assert.equal(readToken("#token=abc-DEF_123.456~xyz", storage), "abc-DEF_123.456~xyz");
  assert.equal(storage.getItem(TOKEN_KEY), "abc-DEF_123.456~xyz");
  assert.equal(readToken("", storage), "abc-DEF_123.456~xyz");
  assert.equal(readToken("#token=newer-token-0123456", storage), "newer-token-0123456");
});

test("no token anywhere: null, and nothing is stored", () => {
  const storage = new MemoryStorage();
  assert.equal(readToken("", storage), null);
  assert.equal(readToken("#other=1", storage), null);
  assert.equal(storage.items.size, 0);
});

test("the token leaves the fragment; other fragment parameters stay", () => {
  assert.equal(hashWithoutToken("#token=abc"), "");
  assert.equal(hashWithoutToken("#token=abc&view=chart"), "#view=chart");
  assert.equal(hashWithoutToken(""), "");
});

test("the socket asks for the full protocol; the token goes as a bearer subprotocol and header, or not at all", () => {
  assert.deepEqual(socketProtocols("abc"), ["trio-ticker.v1", "bearer.abc"]);
  assert.deepEqual(socketProtocols(null), ["trio-ticker.v1"]);
  assert.deepEqual(authHeaders("abc"), { Authorization: "Bearer abc" });
  assert.deepEqual(authHeaders(null), {});
});
