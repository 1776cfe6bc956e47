// The price table: one row per chosen symbol, updated at most once per animation frame.

import { direction, formatChange, formatClock, formatPercent, formatPrice, signOf } from "./lib/format.js";

export class Board {
  /** `onSelect(symbol)` / `onRemove(symbol)` run when the user picks or removes a row. */
  constructor(tbody, empty, { onSelect, onRemove, locale }) {
    this.tbody = tbody;
    this.empty = empty;
    this.locale = locale;
    this.rows = new Map();
    this.pending = new Map(); // latest tick per symbol not yet drawn: bounded by the symbol count
    this.frame = null;
    this.reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
    tbody.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      const symbol = button?.closest("tr")?.dataset.symbol;
      if (!symbol) return;
      if (button.classList.contains("remove")) onRemove(symbol);
      else if (button.classList.contains("symbol")) onSelect(symbol);
    });
  }

  /** Show exactly `symbols`, in order, keeping the rows (and prices) that stay. */
  setSymbols(symbols) {
    for (const symbol of [...this.rows.keys()]) if (!symbols.includes(symbol)) this.remove(symbol);
    for (const symbol of symbols) this.tbody.append(this.rows.get(symbol)?.tr ?? this.add(symbol));
    this.empty.hidden = symbols.length > 0;
  }

  add(symbol) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = symbol;
    tr.innerHTML = `
      <th scope="row"><button type="button" class="symbol" aria-pressed="false"></button>
        <span class="stale-badge" hidden>stale</span></th>
      <td class="price">—</td><td class="change">—</td><td class="percent">—</td>
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
      time: tr.querySelector("time"),
      badge: tr.querySelector(".stale-badge"),
      lastPrice: undefined,
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
  }

  draw(row, tick) {
    if (!row) return;
    const moved = direction(row.lastPrice, tick.price);
    row.lastPrice = tick.price;
    row.price.textContent = formatPrice(tick.price, this.locale);
    row.change.textContent = formatChange(tick.change, tick.price, this.locale);
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
