// The price table: one row per chosen symbol (prices at the symbol's precision, 24 h high, low and volume, a
// 24 h sparkline), updated at most once per animation frame, in the user's order or sorted by a column.

import { direction, formatChange, formatClock, formatPercent, formatPrice, formatVolume, signOf } from "./lib/format.js";
import { SparkSeries, sparkPath, trendOf } from "./lib/sparkline.js";
import { sortSymbols } from "./lib/sort.js";

const SVG = "http://www.w3.org/2000/svg";
const SPARK_WIDTH = 64;
const SPARK_HEIGHT = 20;

export class Board {
  /** `onSelect(symbol)` / `onRemove(symbol)` run when the user picks or removes a row, `onSort(column)` on a header. */
  constructor(table, empty, { onSelect, onRemove, onSort, locale }) {
    this.tbody = table.tBodies[0];
    this.headers = [...table.tHead.querySelectorAll("th[data-sort]")];
    this.empty = empty;
    this.locale = locale;
    this.order = []; // the user's order
    this.sort = null; // {column, direction} or null: the user's order
    this.rows = new Map();
    this.pending = new Map(); // latest tick per symbol not yet drawn: bounded by the symbol count
    this.frame = null;
    this.reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
    for (const th of this.headers) th.querySelector("button").addEventListener("click", () => onSort(th.dataset.sort));
    this.tbody.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      const symbol = button?.closest("tr")?.dataset.symbol;
      if (!symbol) return;
      if (button.classList.contains("remove")) onRemove(symbol);
      else if (button.classList.contains("symbol")) onSelect(symbol);
    });
  }

  /** Show exactly `symbols` (the user's order), keeping the rows (and prices) that stay. */
  setSymbols(symbols) {
    this.order = [...symbols];
    for (const symbol of [...this.rows.keys()]) if (!symbols.includes(symbol)) this.remove(symbol);
    for (const symbol of symbols) if (!this.rows.has(symbol)) this.tbody.append(this.add(symbol));
    this.arrange();
    this.empty.hidden = symbols.length > 0;
  }

  /** Sort by a column ({column, direction}), or null for the user's order. */
  setSort(sort) {
    this.sort = sort;
    for (const th of this.headers) {
      const sorted = sort?.column === th.dataset.sort;
      if (sorted) th.setAttribute("aria-sort", sort.direction);
      else th.removeAttribute("aria-sort");
    }
    this.arrange();
  }

  /** The symbols as the table shows them, top to bottom. */
  shownOrder() {
    return [...this.tbody.rows].map((tr) => tr.dataset.symbol);
  }

  /** Put the rows in the shown order, moving only what must move (a moved row keeps keyboard focus). */
  arrange() {
    const wanted = sortSymbols(this.order, this.sort, (symbol, column) => this.rows.get(symbol)?.values[column]);
    if (wanted.join("\n") === this.shownOrder().join("\n")) return;
    const move = this.tbody.moveBefore ? "moveBefore" : "insertBefore";
    wanted.forEach((symbol, index) => {
      const tr = this.rows.get(symbol).tr;
      if (this.tbody.rows[index] !== tr) this.tbody[move](tr, this.tbody.rows[index] ?? null);
    });
  }

  add(symbol) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = symbol;
    tr.innerHTML = `
      <th scope="row"><button type="button" class="symbol" aria-pressed="false"></button>
        <span class="stale-badge" hidden>stale</span></th>
      <td class="price">—</td><td class="change">—</td><td class="percent">—</td>
      <td class="high">—</td><td class="low">—</td><td class="volume">—</td>
      <td class="trend"><svg class="spark" viewBox="0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}" preserveAspectRatio="none"
        role="img"><path vector-effect="non-scaling-stroke"></path></svg></td>
      <td class="updated"><time>—</time></td>
      <td class="actions"><button type="button" class="remove">×</button></td>`;
    tr.querySelector(".symbol").textContent = symbol;
    tr.querySelector(".remove").setAttribute("aria-label", `Remove ${symbol}`);
    tr.querySelector(".remove").title = `Remove ${symbol}`;
    const row = {
      tr,
      price: tr.querySelector(".price"),
      change: tr.querySelector(".change"),
      percent: tr.querySelector(".percent"),
      high: tr.querySelector("td.high"),
      low: tr.querySelector("td.low"),
      volume: tr.querySelector("td.volume"),
      spark: tr.querySelector("svg.spark"),
      series: new SparkSeries(),
      time: tr.querySelector("time"),
      badge: tr.querySelector(".stale-badge"),
      lastPrice: undefined,
      values: { symbol }, // what the columns sort by
    };
    this.rows.set(symbol, row);
    return tr;
  }

  remove(symbol) {
    this.rows.get(symbol)?.tr.remove();
    this.rows.delete(symbol);
    this.pending.delete(symbol);
    this.empty.hidden = this.rows.size > 0;
  }

  select(symbol) {
    for (const [name, row] of this.rows) {
      const selected = name === symbol;
      row.tr.classList.toggle("selected", selected);
      row.tr.querySelector(".symbol").setAttribute("aria-pressed", String(selected));
    }
  }

  /** The last 24 h of candles for a row's sparkline (its live ticks keep it current). */
  seedSpark(symbol, candles) {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.series.load(candles);
    this.drawSpark(row);
  }

  drawSpark(row) {
    const values = row.series.values();
    row.spark.querySelector("path").setAttribute("d", sparkPath(values, SPARK_WIDTH, SPARK_HEIGHT, 2));
    const trend = trendOf(values);
    row.spark.dataset.trend = trend;
    row.spark.dataset.points = values.length;
    const [first, last] = [values[0], values.at(-1)];
    const precision = row.values.precision ?? null;
    const span = row.series.seeded ? "Last 24 h" : "Since added";
    row.spark.setAttribute(
      "aria-label",
      values.length > 1
        ? `${span}: ${trend} from ${formatPrice(first, this.locale, precision)} to ${formatPrice(last, this.locale, precision)}`
        : `${span}: no history yet`,
    );
    row.spark.dataset.seeded = row.series.seeded;
  }

  update(tick) {
    if (!this.rows.has(tick.ticker)) return;
    this.pending.set(tick.ticker, tick);
    this.frame ??= requestAnimationFrame(() => this.flush());
  }

  setStale(symbol, stale) {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.tr.classList.toggle("stale", stale);
    row.badge.hidden = !stale;
  }

  flush() {
    this.frame = null;
    for (const [symbol, tick] of this.pending) this.draw(this.rows.get(symbol), tick);
    this.pending.clear();
    if (this.sort) this.arrange();
  }

  draw(row, tick) {
    if (!row) return;
    const moved = direction(row.lastPrice, tick.price);
    row.lastPrice = tick.price;
    const { price, change, change_percent, high, low, volume, precision } = tick;
    const known = (value) => value ?? undefined; // null (unknown) sorts last, as before the first price
    row.values = { symbol: row.values.symbol, price, change, change_percent, high: known(high), low: known(low), volume: known(volume), precision };
    row.price.textContent = formatPrice(price, this.locale, precision);
    row.change.textContent = formatChange(change, price, this.locale, precision);
    row.high.textContent = formatPrice(high, this.locale, precision);
    row.low.textContent = formatPrice(low, this.locale, precision);
    row.volume.textContent = formatVolume(volume, this.locale);
    row.tr.dataset.precision = precision ?? "";
    row.series.tick(tick.ts, price);
    this.drawSpark(row);
    row.percent.textContent = formatPercent(tick.change_percent, this.locale);
    const sign = signOf(tick.change);
    row.change.dataset.sign = row.percent.dataset.sign = sign;
    row.time.dateTime = new Date(tick.ts).toISOString();
    row.time.textContent = formatClock(tick.ts, this.locale);
    row.tr.dataset.mode = tick.mode;
    row.tr.dataset.seq = tick.seq;
    this.setStale(row.tr.dataset.symbol, Boolean(tick.stale));
    if (moved !== "flat") this.flash(row.price, moved);
  }

  flash(cell, moved) {
    cell.dataset.moved = moved; // keeps the colour until the next move
    if (this.reducedMotion.matches) return;
    cell.classList.remove("flash-up", "flash-down");
    void cell.offsetWidth; // restart the animation when the same direction repeats
    cell.classList.add(`flash-${moved}`);
  }
}
