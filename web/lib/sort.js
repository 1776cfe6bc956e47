// The table's sort order: which column, which way, the cycle a header click walks, and the saved form.

export const SORT_KEY = "trio_ticker.sort.v1";
export const SORT_COLUMNS = ["symbol", "price", "change", "change_percent", "high", "low", "volume"];

/**
 * The order after a click on `column`'s header: a new column starts ascending (A to Z, low to high), a second
 * click turns it descending, a third goes back to the user's own order (null).
 */
export function nextSort(current, column) {
  if (!current || current.column !== column) return { column, direction: "ascending" };
  return current.direction === "ascending" ? { column, direction: "descending" } : null;
}

/** The saved order if it is one of ours, else null (the user's own order). */
export function restoreSort(savedText) {
  try {
    const saved = JSON.parse(savedText ?? "null");
    if (SORT_COLUMNS.includes(saved?.column) && ["ascending", "descending"].includes(saved?.direction)) {
      return { column: saved.column, direction: saved.direction };
    }
  } catch {
    // Unreadable: the user's own order.
  }
  return null;
}

/**
 * `symbols` in `sort` order (stable: ties keep the user's order); `valueOf(symbol, column)` gives a string or
 * a number, or undefined before the first price, which sorts last either way.
 */
export function sortSymbols(symbols, sort, valueOf) {
  if (!sort) return [...symbols];
  const sign = sort.direction === "ascending" ? 1 : -1;
  const keyed = symbols.map((symbol, index) => ({ symbol, index, value: valueOf(symbol, sort.column) }));
  keyed.sort((a, b) => {
    const missingA = a.value === undefined || Number.isNaN(a.value);
    const missingB = b.value === undefined || Number.isNaN(b.value);
    if (missingA || missingB) return missingA === missingB ? a.index - b.index : missingA ? 1 : -1;
    const order = typeof a.value === "string" ? a.value.localeCompare(b.value) : a.value - b.value;
    return order * sign || a.index - b.index;
  });
  return keyed.map((item) => item.symbol);
}
