// The user's symbol choice, as saved in localStorage: parsed defensively, checked against the server's list.

export const STORAGE_KEY = "trio_ticker.choice.v1";

/**
 * What to show, from the saved text (or null) and the server's `{symbols, default}`.
 * A symbol the server no longer serves is dropped; unreadable or missing text means the first visit:
 * every symbol, with the server's default selected for the chart.
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
  const symbols = [...new Set(saved.symbols.filter((symbol) => served.has(symbol)))];
  const selected = symbols.includes(saved.selected) ? saved.selected : symbols[0] ?? null;
  return { symbols, selected };
}

export function saveChoice(symbols, selected) {
  return JSON.stringify({ symbols: [...symbols], selected });
}
