import assert from "node:assert/strict";
import test from "node:test";

import { otherTheme, resolveTheme } from "../lib/theme.js";

test("without a saved choice the system's preference decides", () => {
  assert.equal(resolveTheme(null, true), "light");
  assert.equal(resolveTheme(null, false), "dark");
  assert.equal(resolveTheme("sepia", true), "light"); // not one of ours: ignored
});

test("a saved choice wins over the system's preference", () => {
  assert.equal(resolveTheme("dark", true), "dark");
  assert.equal(resolveTheme("light", false), "light");
  assert.equal(otherTheme("light"), "dark");
  assert.equal(otherTheme("dark"), "light");
});
