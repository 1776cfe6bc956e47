// The "Add symbol" search box's state, without the DOM: the query, the suggestions that answer it, which one is
// active, and what a key does (ARIA combobox with list autocomplete and automatic selection).

export const SEARCH_DEBOUNCE_MS = 150;
export const SEARCH_LIMIT = 12;
const SYMBOL_TEXT = /^[A-Z0-9.:_/-]{1,32}$/; // what the server accepts as a symbol or a query (docs/protocol.md)

/** The typed text as the server reads a symbol or query: trimmed and upper-cased; null when it cannot be one. */
export function normalQuery(text) {
  const query = String(text ?? "").trim().toUpperCase();
  return SYMBOL_TEXT.test(query) ? query : null;
}

/** `/symbols?q=...&limit=...` for a query. */
export function searchPath(query, limit = SEARCH_LIMIT) {
  return `/symbols?${new URLSearchParams({ q: query, limit: String(limit) })}`;
}

/**
 * The suggestions to show for a query: the server's listings (its ranking kept) or, for an empty query, the
 * always-on listings not on the board yet. Duplicates are dropped; each item says whether it is on the board.
 */
export function suggestions(listings, onBoard, query = "") {
  const shown = new Set(onBoard);
  const seen = new Set();
  const items = [];
  for (const listing of listings) {
    if (seen.has(listing.symbol) || (!query && shown.has(listing.symbol))) continue;
    seen.add(listing.symbol);
    items.push({ ...listing, onBoard: shown.has(listing.symbol) });
  }
  return items;
}

/**
 * One search box. `input(text)` and `results(query, items)` change what is shown; `key(name)` returns what the
 * key does: `{handled, choose}` where `choose` is a symbol to add (or undefined), and `handled` says the page
 * should not also do the key's default. Results only count for the query they answer, so a slow answer to an
 * earlier query never puts its symbols under a newer one, and Enter before the answer waits for it.
 */
export class SuggestState {
  constructor() {
    this.query = "";
    this.items = [];
    this.itemsFor = null; // the query `items` answer
    this.active = -1;
    this.open = false;
    this.enterPending = false; // Enter pressed before the current query's answer arrived
  }

  /** The text changed: returns the query to search for, or null (nothing to ask: empty or not a symbol). */
  input(text) {
    this.query = normalQuery(text) ?? "";
    this.enterPending = false;
    this.open = true;
    if (!this.query) this.itemsFor = null;
    return this.query || null;
  }

  /** An answer to `query`; returns a symbol to add when an Enter was waiting for it, else undefined. */
  results(query, items) {
    if (query !== this.query) return undefined;
    const activeSymbol = this.items[this.active]?.symbol;
    this.items = items;
    this.itemsFor = query;
    const kept = items.findIndex((item) => item.symbol === activeSymbol);
    this.active = items.length ? Math.max(kept, 0) : -1;
    if (!this.enterPending) return undefined;
    this.enterPending = false;
    return this.chooseActive();
  }

  /** Whether the shown items answer the current text. */
  get current() {
    return this.itemsFor === this.query;
  }

  get activeItem() {
    return this.open && this.current ? this.items[this.active] : undefined;
  }

  key(name) {
    switch (name) {
      case "ArrowDown":
      case "ArrowUp": {
        if (!this.open) {
          this.open = true;
          return { handled: true };
        }
        if (!this.items.length || !this.current) return { handled: true };
        const step = name === "ArrowDown" ? 1 : -1;
        this.active = (this.active + step + this.items.length) % this.items.length;
        return { handled: true };
      }
      case "Enter": {
        if (!this.query && !this.activeItem) return { handled: true };
        if (this.query && !this.current) {
          this.enterPending = true; // the answer is on its way: choose from it
          return { handled: true };
        }
        return { handled: true, choose: this.chooseActive() };
      }
      case "Escape":
        if (this.open) {
          this.open = false;
          return { handled: true };
        }
        return { handled: false };
      default:
        return { handled: false };
    }
  }

  /** The active suggestion, else the typed symbol itself (a symbol no listing shows: the server decides). */
  chooseActive() {
    const chosen = this.activeItem?.symbol ?? (this.query || undefined);
    if (chosen) this.open = false;
    return chosen;
  }

  /** Show the empty query's list (focus or click on an empty box). */
  setEmptyItems(items) {
    if (this.query) return;
    this.items = items;
    this.itemsFor = "";
    this.active = items.length ? 0 : -1;
  }

  close() {
    this.open = false;
    this.enterPending = false;
  }

  clear() {
    this.query = "";
    this.items = [];
    this.itemsFor = null;
    this.active = -1;
    this.open = false;
    this.enterPending = false;
  }
}
