// The selected symbol's candlestick chart with its volume below (TradingView lightweight-charts, vendored).
// History comes from /candles when a symbol or timeframe is shown, live candles from the WebSocket.

import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  TickMarkType,
  createChart,
} from "./vendor/lightweight-charts.standalone.production.mjs";
import { SeriesCache, toPoints } from "./lib/candles.js";
import { formatDecimals, formatPrice, priceDecimals } from "./lib/format.js";

const VOLUME_SHARE = 0.22; // of the chart's height, at the bottom
const VOLUME_ALPHA = 0.5;
const EDGE_PX = 24; // room left of the first bar, so the first time label is not cut in half

export class CandleChart {
  /** `fetchCandles(symbol, interval)` resolves to the server's candles, or null when it keeps none. */
  constructor(container, { title, meta, locale, fetchCandles }) {
    this.container = container;
    this.title = title;
    this.meta = meta;
    this.locale = locale;
    this.fetchCandles = fetchCandles;
    this.cache = new SeriesCache();
    this.symbol = null;
    this.interval = null;
    this.unavailable = false;
    this.decimals = 2;
    this.chart = createChart(container, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, fontFamily: getComputedStyle(document.body).fontFamily },
      rightPriceScale: { borderVisible: false, scaleMargins: { top: 0.08, bottom: VOLUME_SHARE + 0.04 } },
      timeScale: {
        borderVisible: false,
        timeVisible: true,
        secondsVisible: false,
        tickMarkFormatter: (time, kind) => this.tickMark(time, kind),
      },
      localization: {
        locale,
        timeFormatter: (time) => this.longTime(time),
        priceFormatter: (price) => formatDecimals(price, this.decimals, locale), // as the table shows prices
      },
    });
    this.bars = this.chart.addSeries(CandlestickSeries, { borderVisible: false });
    this.volumes = this.chart.addSeries(HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "", // an overlay at the bottom, off the price axis
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.volumes.priceScale().applyOptions({ scaleMargins: { top: 1 - VOLUME_SHARE, bottom: 0 } });
    this.applyTheme();
  }

  /** Take the colours of the page's theme (after it changed, too). */
  applyTheme() {
    const color = themeColors(["--up", "--down", "--muted", "--grid"]);
    this.colors = {
      up: color["--up"],
      down: color["--down"],
      upVolume: withAlpha(color["--up"], VOLUME_ALPHA),
      downVolume: withAlpha(color["--down"], VOLUME_ALPHA),
    };
    this.chart.applyOptions({
      layout: { textColor: color["--muted"] },
      grid: { vertLines: { color: color["--grid"] }, horzLines: { color: color["--grid"] } },
    });
    const { up, down } = this.colors;
    this.bars.applyOptions({ upColor: up, downColor: down, wickUpColor: up, wickDownColor: down });
    if (this.symbol) this.draw(false);
  }

  /** Show a series at once from what this page has, then from the server's history. */
  show(symbol, interval) {
    this.symbol = symbol;
    this.interval = interval;
    this.title.textContent = symbol ?? "No symbol selected";
    this.container.setAttribute("aria-label", symbol ? `Candlestick chart of ${symbol}, ${interval} candles` : "Empty chart");
    this.container.dataset.interval = interval;
    this.draw(true);
    if (symbol) this.load(symbol, interval);
  }

  /** Fetch the shown series' history again (after a reconnect: candles may have closed meanwhile). */
  refresh() {
    if (this.symbol) this.load(this.symbol, this.interval);
  }

  async load(symbol, interval) {
    let candles;
    try {
      candles = await this.fetchCandles(symbol, interval);
    } catch {
      if (this.isShown(symbol, interval)) this.describe("Could not load the history; live candles still arrive.");
      return;
    }
    if (candles === null) {
      this.unavailable = true;
      this.describe();
      return;
    }
    this.cache.get(symbol, interval).load(candles);
    if (this.isShown(symbol, interval)) this.draw(true);
  }

  /** A `candle` message from the server. */
  live(candle) {
    const series = this.cache.peek(candle.ticker, candle.interval);
    if (!series) return;
    const action = series.apply(candle);
    if (!this.isShown(candle.ticker, candle.interval) || action === "wait" || action === "ignore") return;
    if (action === "trim") {
      this.draw(false);
      return;
    }
    const { bar, volume } = toPoints(candle, this.colors);
    this.bars.update(bar);
    this.volumes.update(volume);
    this.describe();
  }

  draw(fit) {
    const series = this.symbol ? this.cache.get(this.symbol, this.interval) : null;
    const points = (series?.items ?? []).map((candle) => toPoints(candle, this.colors));
    const decimals = priceDecimals(Number(series?.last?.close ?? 1));
    this.decimals = decimals;
    this.bars.applyOptions({ priceFormat: { type: "price", precision: decimals, minMove: 10 ** -decimals } });
    this.bars.setData(points.map((point) => point.bar));
    this.volumes.setData(points.map((point) => point.volume));
    if (fit) this.fitAll(points.length);
    this.describe();
  }

  /** Every candle in view, with the first one `EDGE_PX` in from the left edge. */
  fitAll(count) {
    const timeScale = this.chart.timeScale();
    const width = timeScale.width();
    if (!count || !width) {
      timeScale.fitContent();
      return;
    }
    const edge = (EDGE_PX * count) / width; // in bars, at about the spacing the range will give
    timeScale.setVisibleLogicalRange({ from: -0.5 - edge, to: count - 0.5 });
  }

  describe(problem = "") {
    const series = this.symbol ? this.cache.peek(this.symbol, this.interval) : undefined;
    this.container.dataset.candles = String(series?.length ?? 0);
    this.container.dataset.loaded = String(Boolean(series?.loaded));
    const last = series?.last;
    if (problem) this.meta.textContent = problem;
    else if (this.unavailable) this.meta.textContent = "This server keeps no candles.";
    else if (!this.symbol) this.meta.textContent = "Add a symbol to see its chart.";
    else if (!last) this.meta.textContent = series?.loaded ? "No candles yet; waiting for the first trade…" : "Loading the history…";
    else {
      const count = series.length.toLocaleString(this.locale);
      this.meta.textContent = `${formatPrice(Number(last.close), this.locale)} · ${count} ${this.interval} candles`;
    }
  }

  isShown(symbol, interval) {
    return symbol === this.symbol && interval === this.interval;
  }

  forget(symbol) {
    this.cache.forget(symbol);
  }

  tickMark(time, kind) {
    const date = new Date(time * 1000);
    if (kind === TickMarkType.Year) return String(date.getFullYear());
    if (kind === TickMarkType.Month) return date.toLocaleDateString(this.locale, { month: "short" });
    if (kind === TickMarkType.DayOfMonth) return date.toLocaleDateString(this.locale, { day: "numeric", month: "short" });
    return date.toLocaleTimeString(this.locale, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  longTime(time) {
    return new Date(time * 1000).toLocaleString(this.locale, {
      day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
  }
}

/** The used colours of custom properties as rgb() (a property may hold light-dark(), which canvas cannot read). */
function themeColors(names) {
  const probe = document.createElement("span");
  probe.hidden = true;
  document.body.append(probe);
  const colors = {};
  for (const name of names) {
    probe.style.color = `var(${name})`;
    colors[name] = getComputedStyle(probe).color;
  }
  probe.remove();
  return colors;
}

/** `rgb(r, g, b)` as `rgba(r, g, b, alpha)`. */
function withAlpha(rgb, alpha) {
  const [r, g, b] = rgb.match(/[\d.]+/g) ?? [0, 0, 0];
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}
