// Candles for the chart: the server's candle fields to chart points, one bounded series per symbol and timeframe.

export const TIMEFRAMES = ["1m", "5m", "15m", "1h", "1d"];
export const DEFAULT_TIMEFRAME = "1m";
export const TIMEFRAME_KEY = "trio_ticker.timeframe.v1";
export const CANDLES_KEPT = 2000; // per series: a day and more of 1 m candles
export const SERIES_CACHED = 12; // series kept for instant switching, least recently shown dropped first

/** The saved timeframe if it is one of ours, else the default. */
export function restoreTimeframe(saved) {
  return TIMEFRAMES.includes(saved) ? saved : DEFAULT_TIMEFRAME;
}

export function candlesPath(symbol, interval, limit = CANDLES_KEPT) {
  const query = new URLSearchParams({ symbol, interval, limit: String(Math.min(limit, 1500)) });
  return `/candles?${query}`;
}

/**
 * A server candle (decimal strings, epoch ms) as a bar and a volume column (chart time in seconds), coloured
 * by direction: `colors` holds `up`, `down` for bars and `upVolume`, `downVolume` for the columns.
 */
export function toPoints(candle, colors) {
  const time = Math.floor(candle.open_time / 1000);
  const [open, high, low, close] = [candle.open, candle.high, candle.low, candle.close].map(Number);
  const rising = close >= open;
  return {
    bar: { time, open, high, low, close },
    volume: { time, value: Number(candle.volume), color: rising ? colors.upVolume : colors.downVolume },
  };
}

/**
 * One symbol's candles of one timeframe, oldest first, at most `cap` (`cap + slack` briefly, so the chart
 * redraws whole once per `slack` new candles instead of on each). Live candles that arrive before the
 * history has loaded wait and are laid over it.
 */
export class CandleSeries {
  constructor(cap = CANDLES_KEPT, slack = Math.max(1, Math.floor(cap / 10))) {
    if (!(cap >= 1) || !(slack >= 1)) throw new RangeError("cap and slack must be at least 1");
    this.cap = cap;
    this.slack = slack;
    this.items = [];
    this.loaded = false;
    this.waiting = [];
  }

  /** The history from `/candles`, then what came live meanwhile. */
  load(candles) {
    this.items = [...candles].sort((a, b) => a.open_time - b.open_time).slice(-this.cap);
    this.loaded = true;
    const waiting = this.waiting;
    this.waiting = [];
    for (const candle of waiting) this.apply(candle);
  }

  /**
   * A live candle: "append" (a new interval), "replace" (the open one changed), "trim" (appended, and the
   * oldest went: redraw all), "ignore" (older than the last one), or "wait" (the history is not loaded yet).
   */
  apply(candle) {
    if (!this.loaded) {
      this.waiting.push(candle);
      this.waiting.splice(0, this.waiting.length - this.cap);
      return "wait";
    }
    const last = this.items.at(-1);
    if (last !== undefined && candle.open_time < last.open_time) {
      const index = this.items.findIndex((item) => item.open_time === candle.open_time);
      if (index >= 0 && candle.closed) this.items[index] = candle; // a late close of an older one: keep it
      return "ignore";
    }
    if (last !== undefined && candle.open_time === last.open_time) {
      this.items[this.items.length - 1] = candle;
      return "replace";
    }
    this.items.push(candle);
    if (this.items.length > this.cap + this.slack) {
      this.items.splice(0, this.items.length - this.cap);
      return "trim";
    }
    return "append";
  }

  get length() {
    return this.items.length;
  }

  get last() {
    return this.items.at(-1);
  }
}

/** Series by "SYMBOL interval", the least recently used dropped past `limit`. */
export class SeriesCache {
  constructor(limit = SERIES_CACHED) {
    this.limit = limit;
    this.entries = new Map();
  }

  get(symbol, interval) {
    const key = `${symbol} ${interval}`;
    let series = this.entries.get(key);
    if (series) {
      this.entries.delete(key); // re-inserted: most recently used
    } else {
      series = new CandleSeries();
    }
    this.entries.set(key, series);
    while (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value);
    return series;
  }

  peek(symbol, interval) {
    return this.entries.get(`${symbol} ${interval}`);
  }

  forget(symbol) {
    for (const key of [...this.entries.keys()]) if (key.startsWith(`${symbol} `)) this.entries.delete(key);
  }

  get size() {
    return this.entries.size;
  }
}
