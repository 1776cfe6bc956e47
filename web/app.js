// The price board's wiring: symbol choice (saved), server messages to table, chart and banner.

import { Board } from "./board.js";
import { CandleChart } from "./candle_chart.js";
import { TickerConnection } from "./connection.js";
import { Backoff } from "./lib/backoff.js";
import { TIMEFRAME_KEY, candlesPath, restoreTimeframe } from "./lib/candles.js";
import { STORAGE_KEY, restoreChoice, saveChoice } from "./lib/choice.js";
import { ResumePoint } from "./lib/resume.js";
import { SeqTracker } from "./lib/seq.js";
import { SORT_KEY, nextSort, restoreSort } from "./lib/sort.js";
import { SPARK_INTERVAL, SPARK_POINTS } from "./lib/sparkline.js";
import { searchPath } from "./lib/suggest.js";
import { THEME_KEY } from "./lib/theme.js";
import { authHeaders, hashWithoutToken, readToken, socketProtocols } from "./lib/token.js";
import { useTrueDevicePixels } from "./device_pixels.js";
import { StatusBar } from "./status.js";
import { SymbolSearch } from "./symbol_search.js";
import { ThemeToggle } from "./theme_toggle.js";

const locale = navigator.language || "en-US";
const byId = (id) => document.getElementById(id);

class TickerApp {
  constructor() {
    this.listings = []; // the always-on symbols' listings, from GET /symbols
    this.chosen = [];
    this.selected = null;
    this.seq = new SeqTracker();
    this.resume = new ResumePoint(); // the stream the seqs belong to: a reconnect asks for what it missed
    this.connections = 0;
    this.awaitingSnapshot = new Set(); // symbols whose next tick is the snapshot of a new connection
    this.unseeded = new Set(); // rows whose sparkline waits for their first tick (then the server has the symbol)
    this.status = new StatusBar({
      banner: byId("connection"),
      bannerText: byId("connection-text"),
      retryButton: byId("retry"),
      sources: byId("sources"),
      mode: byId("mode"),
      announcer: byId("announcer"),
      notice: byId("notice"),
      noticeText: byId("notice-text"),
      noticeClose: byId("notice-close"),
    });
    this.board = new Board(byId("rows").closest("table"), byId("empty"), {
      locale,
      onSelect: (symbol) => this.select(symbol),
      onRemove: (symbol) => this.remove(symbol),
      onSort: (column) => this.sortBy(column),
    });
    this.board.setSort(restoreSort(readSaved(SORT_KEY)));
    this.token = readToken(window.location.hash, window.sessionStorage);
    this.timeframe = restoreTimeframe(readSaved(TIMEFRAME_KEY));
    this.candleSubscription = null; // {symbol, interval} the server sends candles of
    this.chart = new CandleChart(byId("chart"), {
      title: byId("chart-symbol"),
      meta: byId("chart-meta"),
      locale,
      fetchCandles: (symbol, interval) => this.fetchCandles(symbol, interval),
    });
    this.timeframeButtons = [...byId("timeframes").querySelectorAll("button[data-interval]")];
    for (const button of this.timeframeButtons) {
      button.addEventListener("click", () => this.setTimeframe(button.dataset.interval));
    }
    if (window.location.hash.includes("token=")) {
      const { pathname, search, hash } = window.location;
      window.history.replaceState(null, "", pathname + search + hashWithoutToken(hash));
    }
    this.connection = new TickerConnection(
      {
        onOpen: () => this.connected(),
        onMessages: (messages) => messages.forEach((message) => this.handle(message)),
        onState: (state) => this.status.showConnection(state),
        onFrameError: (error) => this.status.showNotice(`Ignored a bad message from the server: ${error}`),
      },
      { protocols: socketProtocols(this.token) },
    );
    this.addInput = byId("add-symbol");
    this.search = new SymbolSearch(
      { form: byId("add-form"), input: this.addInput, listbox: byId("add-suggestions"), hint: byId("add-hint") },
      {
        search: (query) => this.fetchListings(query),
        alwaysOn: () => this.listings,
        onBoard: () => this.chosen,
        onChoose: (symbol) => this.add(symbol),
      },
    );
    byId("retry").addEventListener("click", () => this.connection.retryNow());
  }

  async start() {
    this.status.showConnection({ state: "connecting" });
    const list = await this.fetchSymbols();
    if (list === null) {
      this.status.showConnection({ state: "unauthorized" });
      return;
    }
    const { default: fallback } = list;
    this.listings = list.symbols; // each a listing: symbol, name, source, precision, base, quote
    const symbols = list.symbols.map((listing) => listing.symbol);
    const choice = restoreChoice(readSaved(), symbols, fallback);
    this.chosen = choice.symbols;
    this.board.setSymbols(this.chosen);
    this.chosen.forEach((symbol) => this.unseeded.add(symbol));
    this.select(choice.selected);
    this.connection.start();
  }

  /** GET /symbols, retried with backoff: the board cannot start without the list. Null: no valid token (401). */
  async fetchSymbols() {
    const backoff = new Backoff();
    for (;;) {
      try {
        const response = await fetch("/symbols", { cache: "no-store", headers: authHeaders(this.token) });
        if (response.ok) return await response.json();
        if (response.status === 401) return null;
        this.status.showNotice(`Could not load the symbol list (HTTP ${response.status}); retrying.`);
      } catch {
        this.status.showNotice("Could not reach the server for the symbol list; retrying.");
      }
      await new Promise((resolve) => setTimeout(resolve, backoff.nextDelay()));
    }
  }

  connected() {
    this.connections += 1;
    this.status.showNotice("");
    this.awaitingSnapshot = new Set(this.chosen);
    if (this.chosen.length) this.connection.send(this.resume.subscribe(this.chosen, this.seq.last));
    this.candleSubscription = null; // a new connection has none
    this.followCandles();
    if (this.connections > 1) this.chart.refresh(); // candles closed while we were away
    this.refreshHealth();
  }

  /** GET /symbols?q= for the search box: the catalogue's listings, best first. */
  async fetchListings(query) {
    const response = await fetch(searchPath(query), { cache: "no-store", headers: authHeaders(this.token) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return (await response.json()).symbols;
  }

  /**
   * A row's sparkline starts with the last 24 h of candles, asked for on its first tick; without history (a
   * symbol just subscribed on demand has only the candle its first tick opened) it draws from the ticks alone.
   */
  async seedSpark(symbol) {
    try {
      const candles = await this.fetchCandles(symbol, SPARK_INTERVAL, SPARK_POINTS);
      if (candles && candles.length > 1) this.board.seedSpark(symbol, candles);
    } catch {
      // Not listed (yet) or unreachable: the ticks still draw it.
    }
  }

  /** GET /candles for the chart; null when the server keeps no candles. */
  async fetchCandles(symbol, interval, limit = undefined) {
    const path = candlesPath(symbol, interval, limit);
    const response = await fetch(path, { cache: "no-store", headers: authHeaders(this.token) });
    if (response.status === 404 && (await response.json()).code === "candles_unavailable") return null;
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return (await response.json()).candles;
  }

  /** Keep the server's candle subscription on the charted symbol and timeframe (one at a time). */
  followCandles() {
    const current = this.candleSubscription;
    const wanted = this.selected && !this.chart.unavailable ? { symbol: this.selected, interval: this.timeframe } : null;
    if (current && wanted && current.symbol === wanted.symbol && current.interval === wanted.interval) return;
    if (current) this.connection.send({ action: "unsubscribe", symbols: [current.symbol], candles: current.interval });
    const sent = wanted && this.connection.send({ action: "subscribe", symbols: [wanted.symbol], candles: wanted.interval });
    this.candleSubscription = sent ? wanted : null;
  }

  setTimeframe(interval) {
    if (interval === this.timeframe) return;
    this.timeframe = interval;
    this.showTimeframe();
    this.chart.show(this.selected, interval);
    this.followCandles();
    writeSaved(TIMEFRAME_KEY, interval);
  }

  showTimeframe() {
    for (const button of this.timeframeButtons) {
      button.setAttribute("aria-pressed", String(button.dataset.interval === this.timeframe));
    }
  }

  /** Source states and mode as of now: status messages only report changes after we connected. */
  async refreshHealth() {
    try {
      const response = await fetch("/healthz", { cache: "no-store" });
      if (!response.ok) return;
      const health = await response.json();
      this.status.showMode(health.mode);
      for (const [source, info] of Object.entries(health.sources ?? {})) this.status.showSource(source, info.state);
    } catch {
      // The socket's own state already says the server is unreachable.
    }
  }

  handle(message) {
    switch (message.type) {
      case "welcome":
        return this.welcomed(message);
      case "tick":
        return this.tick(message);
      case "candle":
        return this.chart.live(message);
      case "status":
        if (message.source) this.status.showSource(message.source, message.state);
        else if (message.ticker && this.chosen.includes(message.ticker)) this.staleChanged(message);
        return undefined;
      case "error":
        return this.serverError(message);
      default:
        return undefined; // subscribed, unsubscribed, symbols, pong: nothing to show
    }
  }

  tick(tick) {
    if (!this.chosen.includes(tick.ticker)) return; // in flight when the user removed it
    const afterReconnect = this.awaitingSnapshot.delete(tick.ticker) && this.connections > 1;
    const { kind } = this.seq.observe(tick.ticker, tick.seq, { afterReconnect });
    if (kind === "repeat") {
      this.board.setStale(tick.ticker, Boolean(tick.stale)); // same tick, but staleness may have changed
      return;
    }
    if (kind === "reset") this.status.showNotice("The server restarted: prices go on from its new run.");
    this.board.update(tick);
    if (this.unseeded.delete(tick.ticker)) this.seedSpark(tick.ticker);
    this.status.showMode(tick.mode);
    if (kind === "gap") this.showSkipped();
  }

  /** A new epoch is a server that started its numbering over: the next tick starts afresh, not after a gap. */
  welcomed({ epoch }) {
    if (this.resume.welcome(epoch) !== "restarted") return;
    for (const symbol of [...this.seq.last.keys()]) this.seq.forget(symbol);
    this.status.showNotice("The server restarted: prices go on from its new run.");
  }

  staleChanged({ ticker, stale }) {
    this.board.setStale(ticker, stale);
    this.status.announce(stale ? `${ticker} is stale: no update for a while.` : `${ticker} is updating again.`);
  }

  showSkipped() {
    byId("skipped").textContent = `${this.seq.missed.toLocaleString(locale)} ticks skipped since this page opened (merged by the server when busy, or missed while disconnected).`;
  }

  serverError(message) {
    if (message.code === "candles_unavailable") return; // the chart already says so (from /candles)
    if (message.code === "unknown_symbol" && Array.isArray(message.symbols)) {
      // The server no longer serves these (its configuration changed): drop them from the choice.
      // Not a symbol the server serves (a typo, or its catalogue changed): drop them from the choice.
      const refused = message.symbols.filter((symbol) => this.chosen.includes(symbol));
      this.chosen = this.chosen.filter((symbol) => !message.symbols.includes(symbol));
      this.chosenChanged();
      if (!this.chosen.includes(this.selected)) this.select(this.chosen[0] ?? null);
      if (this.chosen.length) this.connection.send({ action: "subscribe", symbols: this.chosen });
      const names = (refused.length ? refused : message.symbols).join(", ");
      this.search.showHint(`${names}: not a symbol this server knows (unknown_symbol).`);
    }
    this.status.showNotice(`Server: ${message.message ?? message.code}`);
  }

  add(symbol) {
    this.addInput.focus();
    if (this.chosen.includes(symbol)) {
      this.select(symbol);
      this.status.announce(`${symbol} is on the board already; charting it.`);
      return;
    }
    this.chosen = [...this.chosen, symbol];
    this.chosenChanged();
    this.connection.send({ action: "subscribe", symbols: [symbol] });
    this.unseeded.add(symbol);
    if (!this.selected) this.select(symbol);
    this.status.announce(`Added ${symbol}.`);
  }

  remove(symbol) {
    const index = this.chosen.indexOf(symbol);
    if (index < 0) return;
    const shownIndex = this.board.shownOrder().indexOf(symbol);
    this.chosen = this.chosen.filter((name) => name !== symbol);
    this.connection.send({ action: "unsubscribe", symbols: [symbol] });
    this.seq.forget(symbol);
    this.unseeded.delete(symbol);
    this.chart.forget(symbol);
    this.chosenChanged();
    if (this.selected === symbol) this.select(this.chosen[Math.min(index, this.chosen.length - 1)] ?? null);
    // Keep keyboard focus in the table: on the next row's remove button, else on the add control.
    const next = byId("rows").rows[Math.min(shownIndex, this.chosen.length - 1)];
    (next?.querySelector(".remove") ?? this.addInput).focus();
    this.status.announce(`Removed ${symbol}.`);
  }

  sortBy(column) {
    const sort = nextSort(this.board.sort, column);
    this.board.setSort(sort);
    writeSaved(SORT_KEY, JSON.stringify(sort));
  }

  select(symbol) {
    this.selected = symbol;
    this.board.select(symbol);
    this.showTimeframe();
    this.chart.show(symbol, this.timeframe);
    this.followCandles();
    this.save();
  }

  chosenChanged() {
    this.board.setSymbols(this.chosen);
    this.board.select(this.selected);
    this.save();
  }

  save() {
    writeSaved(STORAGE_KEY, saveChoice(this.chosen, this.selected));
  }
}

function readSaved(key = STORAGE_KEY) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeSaved(key, text) {
  try {
    localStorage.setItem(key, text);
  } catch {
    // Private mode or a full quota: the board still works, the choice just is not kept.
  }
}

// The theme first, before anything waits: the page should not show the other theme for a moment.
let app = null;
new ThemeToggle(byId("theme"), {
  saved: readSaved(THEME_KEY),
  save: (theme) => writeSaved(THEME_KEY, theme),
  onChange: () => app?.chart.applyTheme(),
});
await useTrueDevicePixels();
app = new TickerApp();
app.start();
