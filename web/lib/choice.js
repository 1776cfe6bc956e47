// The user's symbol choice, as saved in localStorage: parsed defensively; the server says which it no longer serves.

import { normalQuery } from "./suggest.js";

export const STORAGE_KEY = "trio_ticker.choice.v1";

/**
 * What to show, from the saved text (or null) and the server's always-on symbols and default.
 * Saved symbols come back as saved (any catalogue symbol, not just the always-on ones; one the server no longer
 * serves is refused with `unknown_symbol` and dropped then); text that cannot be a symbol, and duplicates, are
 * dropped. Unreadable or missing text means the first visit: every always-on symbol, the default charted.
 */
export function restoreChoice(savedText, known, defaultSymbol) {
  const served = new Set(known);
  const fallbackSelected = served.has(defaultSymbol) ? defaultSymbol : known[0] ?? null;
  let saved = null;
  try {
    saved = savedText ? JSON.parse(savedText) : null;
  } catch {
    saved = null;
  }
  if (!saved || typeof saved !== "object" || !Array.isArray(saved.symbols)) {
    return { symbols: [...known], selected: fallbackSelected };
  }
  const symbols = [...new Set(saved.symbols.filter((symbol) => normalQuery(symbol) === symbol))];
  const selected = symbols.includes(saved.selected) ? saved.selected : symbols[0] ?? null;
  return { symbols, selected };
}

export function saveChoice(symbols, selected) {
  return JSON.stringify({ symbols: [...symbols], selected });
}
