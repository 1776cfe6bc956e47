// The rows' sparklines: the last 24 h of a symbol's price as a few points (seeded from /candles, then following
// the ticks), and those points scaled to an SVG path. Pure: no DOM.

export const SPARK_INTERVAL = "15m";
export const SPARK_STEP_MS = 15 * 60 * 1000;
export const SPARK_POINTS = 96; // 24 h of 15-minute closes
export const TICK_STEP_MS = 5 * 1000; // without history: the ticks since the row was added, 5 s apart (8 minutes)

/**
 * A bounded series of closes, one per step-long bucket (epoch ms aligned), oldest first: 5 s buckets of ticks
 * until candles are loaded, then the candles' step (the ticks seen so far folded into it).
 */
export class SparkSeries {
  constructor(step = TICK_STEP_MS, cap = SPARK_POINTS) {
    this.step = step;
    this.cap = cap;
    this.buckets = []; // [{start, close}]
    this.seeded = false; // holds candles (the last 24 h), not only ticks
  }

  /** The history from GET /candles (candles `step` long), merged under any ticks already seen. */
  load(candles, step = SPARK_STEP_MS) {
    const live = this.buckets;
    this.step = step;
    this.seeded = true;
    this.buckets = [];
    for (const candle of [...candles].sort((a, b) => a.open_time - b.open_time)) {
      this.add(candle.open_time, Number(candle.close));
    }
    for (const bucket of live) this.add(bucket.start, bucket.close);
  }

  /** A live price at epoch ms `ts`: updates the current bucket's close or starts the next one. */
  tick(ts, price) {
    this.add(ts, price);
  }

  add(ts, price) {
    if (!Number.isFinite(ts) || !Number.isFinite(price)) return;
    const start = ts - (ts % this.step);
    const last = this.buckets.at(-1);
    if (last && start < last.start) {
      const index = this.buckets.findIndex((bucket) => bucket.start >= start);
      if (this.buckets[index].start === start) this.buckets[index].close = price;
      else this.buckets.splice(index, 0, { start, close: price });
    } else if (last && start === last.start) {
      last.close = price;
    } else {
      this.buckets.push({ start, close: price });
    }
    const oldest = this.buckets.at(-1).start - (this.cap - 1) * this.step;
    while (this.buckets[0].start < oldest) this.buckets.shift();
  }

  values() {
    return this.buckets.map((bucket) => bucket.close);
  }
}

/**
 * `values` as an SVG path in a `width` x `height` box with `pad` units free at the top and bottom: the first
 * value at the left edge, the last at the right, the lowest at the bottom. A flat series is a line in the
 * middle; one value is a dot-long line; none is "".
 */
export function sparkPath(values, width, height, pad = 1) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return "";
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const span = high - low;
  const usable = height - 2 * pad;
  const y = (value) => (span === 0 ? height / 2 : pad + (1 - (value - low) / span) * usable);
  if (finite.length === 1) return `M0 ${round(y(finite[0]))}H${width}`;
  const dx = width / (finite.length - 1);
  return finite.map((value, index) => `${index ? "L" : "M"}${round(index * dx)} ${round(y(value))}`).join("");
}

/** "up", "down" or "flat": last against first. */
export function trendOf(values) {
  const finite = values.filter(Number.isFinite);
  if (finite.length < 2 || finite.at(-1) === finite[0]) return "flat";
  return finite.at(-1) > finite[0] ? "up" : "down";
}

function round(number) {
  return Math.round(number * 100) / 100;
}
