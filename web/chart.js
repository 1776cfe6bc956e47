// The selected symbol's chart (TradingView lightweight-charts, vendored) over bounded per-symbol histories.

import { AreaSeries, ColorType, createChart, createSeriesMarkers } from "./vendor/lightweight-charts.standalone.production.mjs";
import { formatClock, formatPrice, priceDecimals } from "./lib/format.js";
import { BoundedSeries } from "./lib/series.js";

const POINTS_KEPT = 1800; // 30 minutes at one point per second, per symbol
const MARKERS_KEPT = 20;
const FIT_WHILE_FEWER_THAN = 300; // a young chart spans the whole width; an older one scrolls

export class PriceChart {
  constructor(container, { title, meta, locale }) {
    this.container = container;
    this.title = title;
    this.meta = meta;
    this.locale = locale;
    this.histories = new Map(); // symbol -> {series: BoundedSeries, markers: [...]}
    this.selected = null;
    const style = getComputedStyle(document.documentElement);
    const color = (name) => style.getPropertyValue(name).trim();
    this.chart = createChart(container, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "transparent" },
        textColor: color("--muted"),
        fontFamily: getComputedStyle(document.body).fontFamily,
      },
      grid: { vertLines: { color: color("--grid") }, horzLines: { color: color("--grid") } },
      rightPriceScale: { borderVisible: false },
      timeScale: {
        borderVisible: false,
        timeVisible: true,
        secondsVisible: true,
        tickMarkFormatter: (time) => formatClock(time * 1000, locale),
      },
      localization: { locale, timeFormatter: (time) => formatClock(time * 1000, locale) },
    });
    this.series = this.chart.addSeries(AreaSeries, {
      lineColor: color("--accent"),
      topColor: color("--accent-fill"),
      bottomColor: color("--accent-clear"),
      lineWidth: 2,
    });
    this.markers = createSeriesMarkers(this.series, []);
  }

  history(symbol) {
    let history = this.histories.get(symbol);
    if (!history) {
      history = { series: new BoundedSeries(POINTS_KEPT), markers: [] };
      this.histories.set(symbol, history);
    }
    return history;
  }

  /** Record a tick; `gap` marks where ticks were lost (reconnect) or the server started over. */
  add(tick, gap = null) {
    const history = this.history(tick.ticker);
    const { action, point } = history.series.add(tick.ts, tick.price);
    if (action === "ignore") return;
    if (gap) {
      history.markers.push({ time: point.time, position: "aboveBar", shape: "circle", color: "#f5a524", text: gap });
      history.markers.splice(0, history.markers.length - MARKERS_KEPT);
    }
    if (action === "trim") {
      const oldest = history.series.oldestTime;
      history.markers = history.markers.filter((marker) => marker.time >= oldest);
    }
    if (tick.ticker !== this.selected) return;
    if (action === "trim") this.series.setData(history.series.points());
    else this.series.update(point);
    if (action === "append" && history.series.length <= FIT_WHILE_FEWER_THAN) this.chart.timeScale().fitContent();
    if (gap || action === "trim") this.markers.setMarkers(history.markers);
    this.describe(tick.ticker);
  }

  select(symbol) {
    this.selected = symbol;
    const history = symbol ? this.history(symbol) : { series: new BoundedSeries(1), markers: [] };
    const points = history.series.points();
    const last = points.at(-1);
    const decimals = priceDecimals(last?.value ?? 1);
    this.series.applyOptions({ priceFormat: { type: "price", precision: decimals, minMove: 10 ** -decimals } });
    this.series.setData(points);
    this.markers.setMarkers(history.markers);
    this.chart.timeScale().fitContent();
    this.title.textContent = symbol ?? "No symbol selected";
    this.container.setAttribute("aria-label", symbol ? `Price chart of ${symbol}` : "Empty price chart");
    this.describe(symbol);
  }

  describe(symbol) {
    const history = symbol && this.histories.get(symbol);
    const last = history?.series.items.at(-1);
    this.meta.textContent = last
      ? `${formatPrice(last.value, this.locale)} · ${history.series.length} ${history.series.length === 1 ? "point" : "points"} since this page opened`
      : symbol
        ? "Waiting for the first price…"
        : "Add a symbol to see its chart.";
  }

  forget(symbol) {
    this.histories.delete(symbol);
  }
}
